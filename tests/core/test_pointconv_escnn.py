"""Point convolutions vs escnn 1.0.11's R2PointConv / R3PointConv (tests/data/escnn_point/,
made by scripts/make_escnn_point_fixtures.py in escnn's own environment).

* every case: the same number of weights and biases, escnn's filters (three random weight
  vectors) lie in cupysteer's span on the fixture's edges, cupysteer's per-edge basis has full
  rank, and with the weights that reproduce escnn's filter the whole convolution (message
  K(x_j − x_i) f_j, mean aggregation, bias on trivial irreps) gives escnn's output;
* SO(3) and O(3) (escnn's elements are analytic): the same weights give the same filters and
  the same output directly — same weight layout, same elements.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from cupysteer.fields_spec import parse_field_type, parse_group
from cupysteer.pointconv import PointConvBasis

from _paths import DATA  # noqa: E402

ROOT = DATA / "escnn_point"
INDEX = json.loads((ROOT / "index.json").read_text())
CASES = sorted(k for k in INDEX if not k.startswith("_"))
EXACT = {"so3_irreps", "o3_irreps"}


def _load(name):
    meta = INDEX[name]
    G = parse_group(meta["group"])
    kw = {k: meta[k] for k in ("width", "n_rings", "frequencies_cutoff") if k in meta}
    b = PointConvBasis(parse_field_type(G, meta["in_fields"]),
                       parse_field_type(G, meta["out_fields"]), **kw)
    return b, meta, dict(np.load(ROOT / f"{name}.npz"))


@pytest.mark.parametrize("name", CASES)
def test_same_counts_and_settings(name):
    b, meta, a = _load(name)
    assert b.dim == meta["dim"] == len(a["weights"])
    assert b.n_bias == meta["n_bias"]
    np.testing.assert_allclose(b.settings.rings, meta["rings"], rtol=1e-6)
    np.testing.assert_allclose(b.settings.sigma, meta["sigma"], rtol=1e-6)
    assert b.settings.maximum_frequency == meta["maximum_frequency"]


@pytest.mark.parametrize("name", CASES)
def test_escnn_filters_in_span_and_outputs(name):
    b, meta, a = _load(name)
    M = b.filters(np.eye(b.dim), a["delta"]).reshape(b.dim, -1).T  # (E·Co·Ci, dim)
    Ks = np.stack([K.ravel() for K in list(a["filters_random"]) + [a["filters"]]], axis=1)
    V, _, rank, _ = np.linalg.lstsq(M, Ks, rcond=1e-10)  # one SVD: rank and all fits
    assert rank == b.dim
    assert np.abs(M @ V - Ks).max() <= 1e-6 * np.abs(Ks).max()
    v = V[:, -1]
    out = b.apply(v, a["features"], a["positions"], a["edge_index"],
                  bias=a["bias"] if b.n_bias else None)
    np.testing.assert_allclose(out, a["output"], atol=1e-6 * np.abs(a["output"]).max())


@pytest.mark.parametrize("name", sorted(EXACT))
def test_same_weights_same_result(name):
    b, meta, a = _load(name)
    K = b.filters(a["weights"], a["delta"])
    np.testing.assert_allclose(K, a["filters"], atol=1e-5 * np.abs(a["filters"]).max())
    out = b.apply(a["weights"], a["features"], a["positions"], a["edge_index"], bias=a["bias"])
    np.testing.assert_allclose(out, a["output"], atol=1e-5 * np.abs(a["output"]).max())
