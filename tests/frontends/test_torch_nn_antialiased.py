"""Antialiased pools (cupysteer.torch.nn.antialiased): e2cnn's / escnn's outputs on their
fixtures (tests/data/e2cnn_c8mnist/modules.npz, tests/data/escnn_3d_model/modules.npz, made by
the fixture scripts in the anchors' environments), exact equivariance on grid-preserving
elements (float64, 2D and 3D), gradcheck, state, copies, pickles, torch.compile, errors."""
import copy
import io
import json
import pickle

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import r3

torch = pytest.importorskip("torch")

from cupysteer.torch import nn as snn  # noqa: E402
from cupysteer.torch.nn.antialiased import gaussian_filter  # noqa: E402

from _paths import DATA  # noqa: E402

CASES_2D = json.loads((DATA / "e2cnn_c8mnist" / "meta.json").read_text())["module_cases"]
CASES_3D = json.loads((DATA / "escnn_3d_model" / "meta.json").read_text())["module_cases"]
NAMES = {"PointwiseAvgPoolAntialiased": snn.PointwiseAvgPoolAntialiased,
         "PointwiseMaxPoolAntialiased": snn.PointwiseMaxPoolAntialiased,
         "PointwiseAvgPoolAntialiased3D": snn.PointwiseAvgPoolAntialiased3d,
         "PointwiseMaxPoolAntialiased3D": snn.PointwiseMaxPoolAntialiased3d}


def _anchor_cases(cases, data, field_type):
    z = np.load(DATA / data / "modules.npz")
    for i, (name, kw, _) in enumerate(cases["cases"]):
        if name in NAMES:
            yield NAMES[name](field_type, **kw), z[f"case{i}.input"], z[f"case{i}.output"]


def test_outputs_equal_e2cnn_and_escnn():
    G2, G3 = cs.CyclicGroup(4), r3.Octahedral()
    t2 = cs.FieldType(G2, [G2.regular_representation] * 2)
    t3 = cs.FieldType(G3, [G3.regular_representation])
    n = 0
    for cases, data, t in ((CASES_2D, "e2cnn_c8mnist", t2), (CASES_3D, "escnn_3d_model", t3)):
        for m, x, y in _anchor_cases(cases, data, t):
            out = m(torch.from_numpy(x)).numpy()
            assert out.shape == y.shape, m
            assert np.abs(out - y).max() <= 1e-6 * np.abs(y).max(), m
            n += 1
    assert n == 9


def test_filter_is_e2cnns_gaussian():
    """s = 2·round(3σ) + 1 (avg) / 2·round(4σ) + 1 (max), Python's round; normalised."""
    G = cs.CyclicGroup(8)
    t = cs.FieldType(G, [G.regular_representation])
    assert snn.PointwiseAvgPoolAntialiased(t, 0.66, 2).filter_size == 5
    assert snn.PointwiseAvgPoolAntialiased(t, 0.66, 2).padding == (2, 2)
    assert snn.PointwiseAvgPoolAntialiased(t, 0.5, 1).filter_size == 5  # round(1.5) = 2
    assert snn.PointwiseMaxPoolAntialiased(t, 2).filter_size == 5  # sigma 0.6: round(2.4)
    g = gaussian_filter(0.66, 5, 2)
    assert abs(g.sum() - 1) < 1e-15 and np.allclose(g, g.T) and np.allclose(g, g[::-1])
    assert np.isclose(g[2, 2] / g[2, 3], np.exp(1 / (2 * 0.66 ** 2)))


def _types():
    D4, O = cs.DihedralGroup(4), r3.FullOctahedral()
    return {
        "D4 regular": cs.FieldType(D4, [D4.regular_representation] * 2),
        "D4 irreps": cs.FieldType(D4, [D4.irrep(1, 1).representation,
                                       D4.trivial_representation]),
        "Oh regular": cs.FieldType(O, [O.regular_representation]),
        "Oh std": cs.FieldType(O, [O.standard_representation]),
    }


EQUIVARIANT = [  # (type, module factory, input size): grids symmetric before and after
    ("D4 regular", lambda t: snn.PointwiseAvgPoolAntialiased(t, 0.66, 2), 13),
    ("D4 irreps", lambda t: snn.PointwiseAvgPoolAntialiased(t, 0.66, 2), 13),
    ("D4 irreps", lambda t: snn.PointwiseAvgPoolAntialiased(t, 1.0, 1, padding=0), 9),
    ("D4 regular", lambda t: snn.PointwiseMaxPoolAntialiased(t, 3, stride=2, padding=1), 13),
    ("D4 regular", lambda t: snn.PointwiseMaxPoolAntialiased(t, 3, stride=1, padding=1,
                                                             sigma=0.4), 8),
    ("Oh regular", lambda t: snn.PointwiseAvgPoolAntialiased3d(t, 0.6, 2), 5),
    ("Oh std", lambda t: snn.PointwiseAvgPoolAntialiased3d(t, 0.4, 1), 5),
    ("Oh regular", lambda t: snn.PointwiseMaxPoolAntialiased3d(t, 3, stride=2, padding=1,
                                                               sigma=0.4), 5),
]


@pytest.mark.parametrize("case", range(len(EQUIVARIANT)))
def test_equivariant_on_grid_elements(float64, case):
    name, make, size = EQUIVARIANT[case]
    t = _types()[name]
    m = make(t)
    errors = snn.check_equivariance(m, t, t, size=size, atol=1e-10, rtol=0)
    assert len(errors) == (8 if t.group.space.dimension == 2 else 48)
    assert max(err for _, err in errors) <= 1e-10


def test_gradcheck(float64):
    G = cs.DihedralGroup(2)
    t = cs.FieldType(G, [G.regular_representation])
    for m in (snn.PointwiseAvgPoolAntialiased(t, 0.66, 2),
              snn.PointwiseMaxPoolAntialiased(t, 2, sigma=0.4)):
        x = torch.randn(1, t.size, 6, 6, requires_grad=True)
        assert torch.autograd.gradcheck(m, (x,), atol=1e-8, fast_mode=True)


def test_state_copies_pickles_and_dtypes():
    t = _types()["D4 regular"]
    m = snn.PointwiseAvgPoolAntialiased(t, 0.66, 2)
    assert m.state_dict() == {}  # the blur is derived: no persistent state
    x = torch.randn(2, t.size, 13, 13)
    y = m(x)
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m)),
                  torch.load(buf, weights_only=False)):
        torch.testing.assert_close(other(x), y, rtol=0, atol=0)
    d = copy.deepcopy(m).double()  # rebuilt from float64, not cast from float32
    assert d.filter.dtype == torch.float64
    np.testing.assert_array_equal(d.filter[0, 0].numpy(), gaussian_filter(0.66, 5, 2))
    assert d.float().filter.dtype == torch.float32


def test_loads_e2cnn_state_with_its_filter_checked():
    t = _types()["D4 regular"]
    m = snn.PointwiseAvgPoolAntialiased(t, 0.66, 2)
    theirs = torch.tensor(gaussian_filter(0.66, 5, 2), dtype=torch.float32)
    m.load_state_dict({"filter": theirs.expand(t.size, 1, 5, 5)})  # e2cnn's repeated buffer
    with pytest.raises(RuntimeError, match="filter.*sigma=0.66.*checkpoint's sigma"):
        m.load_state_dict({"filter": torch.ones(t.size, 1, 5, 5) / 25})


def test_torch_compile(float64):
    t = _types()["D4 regular"]
    m = torch.nn.Sequential(snn.PointwiseMaxPoolAntialiased(t, 2),
                            snn.PointwiseAvgPoolAntialiased(t, 0.66, 2))
    x = torch.randn(2, t.size, 12, 12)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), m(x), rtol=1e-12, atol=1e-12)


def test_clear_errors():
    t, irr = _types()["D4 regular"], _types()["D4 irreps"]
    with pytest.raises(ValueError, match="PointwiseMaxPoolAntialiased2d.*PointwiseAvgPool"):
        snn.PointwiseMaxPoolAntialiased(irr, 2)
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        snn.PointwiseAvgPoolAntialiased(t, 0.0, 2)
    with pytest.raises(ValueError, match="stride must be"):
        snn.PointwiseAvgPoolAntialiased(t, 0.66, 0)
    with pytest.raises(TypeError):
        snn.PointwiseAvgPoolAntialiased(t, 0.66)  # stride has no default, as in e2cnn
    with pytest.raises(ValueError, match="dilation must be 1"):
        snn.PointwiseMaxPoolAntialiased(t, 2, dilation=2)
    with pytest.raises(ValueError, match="use PointwiseAvgPoolAntialiased3d"):
        snn.PointwiseAvgPoolAntialiased(_types()["Oh regular"], 0.6, 2)
    with pytest.raises(ValueError, match="input must have shape"):
        snn.PointwiseAvgPoolAntialiased(t, 0.66, 2)(torch.randn(1, 3, 9, 9))
    with pytest.raises(TypeError, match="in_type must be a cupysteer FieldType"):
        snn.PointwiseAvgPoolAntialiased("regular", 0.66, 2)


def test_export_is_plain_torch_with_the_same_outputs():
    t = _types()["D4 regular"]
    x = torch.randn(2, t.size, 13, 13)
    for m in (snn.PointwiseAvgPoolAntialiased(t, 0.66, 2),
              snn.PointwiseMaxPoolAntialiased(t, 3, stride=2, padding=1)):
        plain = m.export()
        assert not any(type(p).__module__.startswith("cupysteer") for p in plain.modules())
        torch.testing.assert_close(plain(x), m(x), rtol=1e-5, atol=1e-6)
    o = _types()["Oh regular"]
    m3 = snn.PointwiseAvgPoolAntialiased3d(o, 0.6, 2)
    x3 = torch.randn(1, o.size, 5, 5, 5)
    torch.testing.assert_close(m3.export()(x3), m3(x3), rtol=1e-5, atol=1e-6)
