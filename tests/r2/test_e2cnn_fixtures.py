"""cupysteer.compat.e2cnn against layers built by e2cnn 0.2.3 (tests/data/e2cnn)."""
import json
import pickle

import numpy as np
import pytest

from cupysteer.compat import e2cnn as e

from _helpers import e2cnn_field as field
from _helpers import e2cnn_gspace as gspace
from _paths import DATA  # noqa: E402

DATA = DATA / "e2cnn"
INDEX = json.loads((DATA / "index.json").read_text())
CONFIGS = {c["name"]: c for c in INDEX["configs"]}


def build(cfg):
    gs = gspace(cfg["gspace"])
    tin = e.FieldType(gs, [field(gs, s) for s in cfg["in_fields"]])
    tout = e.FieldType(gs, [field(gs, s) for s in cfg["out_fields"]])
    kw = {k: v for k, v in cfg["user_kwargs"].items() if k != "dilation"}
    return e.R2ConvBasis(tin, tout, cfg["kernel_size"], dilation=cfg["dilation"], **kw)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def case(request):
    cfg = CONFIGS[request.param]
    return cfg, np.load(DATA / cfg["file"]), build(cfg)


def test_every_fixture_is_covered():
    assert len(CONFIGS) == 22


def test_parameter_count(case):
    cfg, z, basis = case
    assert basis.dim == cfg["n_params"] == len(z["weights"])
    assert basis.shape == tuple(cfg["filter_shape"])


def test_representations(case):
    cfg, z, basis = case
    reps = {r.name: r for r in basis.in_type.representations + basis.out_type.representations}
    gens = [tuple(g) if isinstance(g, list) else g for g in cfg["generators"]]
    for rr in cfg["representations"]:
        rep = reps[rr["name"]]
        assert [p.name for p in rep.irreps] == rr["irreps"]
        np.testing.assert_allclose(rep.change_of_basis, z[f"rep{rr['id']}_Q"], atol=1e-14)
        for j, g in enumerate(gens):
            np.testing.assert_allclose(rep(g), z[f"rep{rr['id']}_gen{j}"], atol=1e-14)


def test_element_attributes(case):
    """Element order, frequencies, phases, variants, offsets and normalisation of block k."""
    cfg, z, basis = case
    att = basis.element_attributes
    for blk in cfg["blocks"]:
        b, lo = blk["block"], blk["weights_range"][0]
        first = slice(lo, lo + blk["dim"])  # out field 0, in field 0
        for key in ("frequency", "s", "offset"):
            np.testing.assert_array_equal(att[key][first], z[f"b{b}_{key}"])
        np.testing.assert_allclose(att["gamma"][first], z[f"b{b}_gamma"], atol=1e-15)
        np.testing.assert_allclose(att["radius"][first], z[f"b{b}_radius"], atol=1e-15)
        np.testing.assert_allclose(att["sigma"][first], z[f"b{b}_sigma"], atol=1e-15)


def test_filter_float64(case):
    cfg, z, basis = case
    f = basis.expand(z["weights"].astype(np.float64))
    assert f.dtype == np.float64
    np.testing.assert_allclose(f, z["filter"], atol=1e-6, rtol=0)


def test_filter_float32(case):
    cfg, z, basis = case
    f = basis.expand(z["weights"])
    assert f.dtype == np.float32
    scale = np.abs(z["filter"]).max()
    assert np.abs(f - z["filter"]).max() <= 1e-5 * scale


def test_dense_basis_matches_e2cnn_samples(case):
    """The padded basis of the first field pair of every block equals e2cnn's buffer."""
    cfg, z, basis = case
    D = basis.dense().reshape(basis.dim, basis.shape[0], basis.shape[1], -1)
    for blk in cfg["blocks"]:
        b, lo = blk["block"], blk["weights_range"][0]
        rows = z[f"b{b}_out_channels"][: len(z[f"b{b}_out_channels"]) // blk["out_count"]]
        cols = z[f"b{b}_in_channels"][: len(z[f"b{b}_in_channels"]) // blk["in_count"]]
        mine = D[lo:lo + blk["dim"]][:, rows][:, :, cols]
        np.testing.assert_allclose(mine, z[f"b{b}_sampled"], atol=1e-6)


def test_bias(case):
    cfg, z, basis = case
    assert basis.num_bias == cfg["n_bias"]
    if cfg["n_bias"] == 0:
        return
    np.testing.assert_allclose(basis.bias_expansion(), z["bias_expansion"], atol=1e-7)
    np.testing.assert_allclose(basis.expand_bias(z["bias"]), z["expanded_bias"], atol=1e-6)


def test_he_std(case):
    cfg, z, basis = case
    np.testing.assert_allclose(basis.he_std(), z["he_std"], atol=1e-7)


def test_grid(case):
    cfg, z, basis = case
    np.testing.assert_array_equal(basis.points.T, z["grid"])


def test_resolved_settings(case):
    cfg, z, basis = case
    res = cfg["resolved"]
    np.testing.assert_allclose(basis.settings.rings, res["rings"], atol=1e-12)
    np.testing.assert_allclose(basis.settings.sigma, res["sigma"], atol=1e-12)
    np.testing.assert_allclose(basis.settings.cutoff_per_ring, res["frequency_cutoff_per_ring"],
                               atol=1e-12)
    assert basis.settings.maximum_frequency == res["maximum_frequency"]


def test_pickle_round_trip(case):
    cfg, z, basis = case
    again = pickle.loads(pickle.dumps(basis))
    assert again.dim == basis.dim
    np.testing.assert_array_equal(again.expand(z["weights"]), basis.expand(z["weights"]))
