"""PointConvBasis.refit: the weights whose filters at given offsets are given filters (escnn's
R2PointConv / R3PointConv filters in tests/data/escnn_point/, made by
scripts/make_escnn_point_fixtures.py in escnn's own environment).

* every case (planar, octahedral, SO(3), O(3)): refitted from escnn's per-edge filters, our
  filters equal escnn's and our layer gives escnn's output (mean aggregation + bias);
* SO(3) / O(3) (same weight layout and elements): the refit recovers escnn's weights;
* random weights: filters → refit → the same weights (float64 round-off);
* filters outside the span, too few offsets and bad shapes raise ValueErrors naming the argument.
"""
from __future__ import annotations

import numpy as np
import pytest
from test_pointconv_escnn import CASES, EXACT, _load

from cupysteer.fields_spec import parse_field_type, parse_group
from cupysteer.pointconv import PointConvBasis


@pytest.mark.parametrize("name", CASES)
def test_refit_from_escnn_filters_gives_escnn_output(name):
    b, meta, a = _load(name)
    w, residual = b.refit(a["delta"], a["filters"])
    assert w.shape == (b.dim,) and residual <= 1e-6
    K = b.filters(w, a["delta"])
    np.testing.assert_allclose(K, a["filters"], atol=1e-6 * np.abs(a["filters"]).max())
    out = b.apply(w, a["features"], a["positions"], a["edge_index"],
                  bias=a["bias"] if b.n_bias else None)
    np.testing.assert_allclose(out, a["output"], atol=1e-5 * np.abs(a["output"]).max())
    for Kr in a["filters_random"]:  # escnn's other weight vectors: in the span too
        assert b.refit(a["delta"], Kr)[1] <= 1e-6


@pytest.mark.parametrize("name", sorted(EXACT))
def test_refit_recovers_escnn_weights_where_layouts_agree(name):
    b, meta, a = _load(name)
    w, _ = b.refit(a["delta"], a["filters"])
    np.testing.assert_allclose(w, a["weights"], atol=1e-6 * np.abs(a["weights"]).max())


@pytest.mark.parametrize("name", CASES)
def test_random_weights_round_trip(name):
    b, meta, a = _load(name)
    w0 = np.random.default_rng(7).standard_normal(b.dim)
    w, residual = b.refit(a["delta"], b.filters(w0, a["delta"]))
    assert residual <= 1e-12
    np.testing.assert_allclose(w, w0, rtol=0, atol=1e-10)


def _small():
    G = parse_group("C4")
    return PointConvBasis(parse_field_type(G, "regular"), parse_field_type(G, "regular"),
                          width=1.0, n_rings=2)


def test_filters_outside_the_span_raise_naming_filters():
    b = _small()
    rng = np.random.default_rng(1)
    delta = np.vstack([np.zeros((1, 2)), rng.standard_normal((40, 2))])  # + a self loop
    K = rng.standard_normal((41, 4, 4))  # generic filters are not steerable
    with pytest.raises(ValueError, match="filters are not in the span"):
        b.refit(delta, K)


def test_too_few_offsets_raise_naming_delta():
    b = _small()
    delta = np.random.default_rng(3).standard_normal((40, 2))  # no self loop: the ring at
    # radius 0 (sigma 0.005) vanishes on all of them
    with pytest.raises(ValueError, match="delta: irreps pair"):
        b.refit(delta, b.filters(np.ones(b.dim), delta))


def test_bad_shapes_raise():
    b = _small()
    delta = np.random.default_rng(2).standard_normal((10, 2))
    with pytest.raises(ValueError, match="filters must be a finite"):
        b.refit(delta, np.zeros((10, 4, 3)))
    with pytest.raises(ValueError, match="delta"):
        b.refit(np.zeros((10, 3)), np.zeros((10, 4, 4)))
    with pytest.raises(ValueError, match="filters"):
        b.refit(delta, None)
