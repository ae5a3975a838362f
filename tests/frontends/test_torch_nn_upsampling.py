"""R2Upsampling / R3Upsampling: equal to e2cnn's R2Upsampling and escnn's R3Upsampling
(tests/data/restriction, made by scripts/make_restriction_fixtures.py and
make_upsampling3d_fixture.py), exactly equivariant (float64, 1e-10) for every
grid-preserving element in the cases the module docstring names, measurably not in the ones
it warns of, exported to torch.nn.Upsample, copies/pickles/compile, clear errors."""
import copy
import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.torch import nn as cnn  # noqa: E402

from _paths import DATA  # noqa: E402

FIX = DATA / "restriction"


def _d4():
    G = cs.DihedralGroup(4)
    return cs.FieldType(G, [G.regular_representation, G.irrep(1, 1).representation])


def _octa():
    O = r3.Octahedral()
    return cs.FieldType(O, [O.standard_representation, O.trivial_representation])


def test_equals_e2cnn(float64):
    meta = json.loads((FIX / "cases.json").read_text())["upsampling"]
    arrays = np.load(FIX / "arrays.npz")
    t = _d4()
    x = torch.as_tensor(arrays["upsampling.input"])
    assert len(meta["cases"]) == 5
    for case in meta["cases"]:
        y = cnn.R2Upsampling(t, **case["kwargs"])(x)
        np.testing.assert_allclose(y.numpy(), arrays[case["key"]], rtol=0, atol=1e-12)


def test_r3_equals_escnn(float64):
    """escnn's R3Upsampling (tests/data/restriction/escnn_upsampling3d.npz, made by
    scripts/make_upsampling3d_fixture.py) on an octahedral [standard, trivial] field type."""
    d = np.load(FIX / "escnn_upsampling3d.npz")
    settings = json.loads(str(d["meta"]))["settings"]
    x = torch.as_tensor(d["input"])
    assert len(settings) == 4
    for i, kw in enumerate(settings):
        y = cnn.R3Upsampling(_octa(), **kw)(x)
        np.testing.assert_allclose(y.numpy(), d[f"out_{i}"], rtol=0, atol=1e-12)


EXACT_2D = [(5, dict(scale_factor=2)), (4, dict(scale_factor=3)),
            (5, dict(scale_factor=2, align_corners=True)), (5, dict(size=8)),
            (5, dict(size=7, align_corners=True)), (5, dict(scale_factor=1.5, align_corners=True)),
            (5, dict(scale_factor=2, mode="nearest")), (4, dict(size=12, mode="nearest"))]


@pytest.mark.parametrize("n,kw", EXACT_2D)
def test_exactly_equivariant_2d(float64, n, kw):
    t = _d4()
    m = cnn.R2Upsampling(t, **kw)
    errors = cnn.check_equivariance(m, t, t, size=n, atol=1e-10, rtol=0)
    assert len(errors) == 8


@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(size=6, align_corners=True),
                                dict(scale_factor=2, mode="nearest")])
def test_exactly_equivariant_3d(float64, kw):
    t = _octa()
    errors = cnn.check_equivariance(cnn.R3Upsampling(t, **kw), t, t, size=3, atol=1e-10, rtol=0)
    assert len(errors) == 24


@pytest.mark.parametrize("kw", [dict(size=7, mode="nearest"), dict(scale_factor=1.5)])
def test_documented_non_exact_cases_break_equivariance(float64, kw):
    """'nearest' to a size that is no multiple of the input and bilinear with a non-integer
    scale_factor (align_corners=False) sample asymmetrically: even a trivial field is not
    equivariant (the module docstring warns of it; e2cnn accepts them too)."""
    G = cs.DihedralGroup(4)
    t = cs.FieldType(G, [G.trivial_representation])
    errors = cnn.check_equivariance(cnn.R2Upsampling(t, **kw), t, t, size=5, atol=None)
    assert max(err for _, err in errors) > 1e-2


def test_export_copies_pickles_and_compile(float64):
    t = _d4()
    x = torch.randn(2, t.size, 5, 5)
    for kw in (dict(scale_factor=2), dict(size=7, mode="nearest"),
               dict(scale_factor=2, align_corners=True)):
        m = cnn.R2Upsampling(t, **kw)
        y = m(x)
        plain = m.export()
        assert type(plain) is torch.nn.Upsample
        torch.testing.assert_close(plain(x), y, rtol=0, atol=0)
        for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
            torch.testing.assert_close(other(x), y, rtol=0, atol=0)
        assert m.state_dict() == {}
    m3 = cnn.R3Upsampling(_octa(), scale_factor=2)
    x3 = torch.randn(1, 4, 3, 3, 3)
    torch.testing.assert_close(m3.export()(x3), m3(x3), rtol=0, atol=0)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), m(x), rtol=0, atol=1e-12)


def test_gradients_flow(float64):
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    m = cnn.R2Upsampling(t, scale_factor=2)
    x = torch.randn(1, 4, 3, 3, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,))


def test_clear_errors():
    t, o = _d4(), _octa()
    with pytest.raises(ValueError, match="exactly one of scale_factor and size"):
        cnn.R2Upsampling(t)
    with pytest.raises(ValueError, match="exactly one of scale_factor and size"):
        cnn.R2Upsampling(t, scale_factor=2, size=8)
    with pytest.raises(ValueError, match="mode must be one of 'nearest', 'bilinear'"):
        cnn.R2Upsampling(t, scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match="mode must be one of 'nearest', 'trilinear'"):
        cnn.R3Upsampling(o, scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="use R3Upsampling"):
        cnn.R2Upsampling(o, scale_factor=2)
    with pytest.raises(ValueError, match="use R2Upsampling"):
        cnn.R3Upsampling(t, scale_factor=2)
    with pytest.raises(ValueError, match="size must be an int >= 1 or a tuple of 2"):
        cnn.R2Upsampling(t, size=(4, 4, 4))
    with pytest.raises(ValueError, match="scale_factor must be a number > 0"):
        cnn.R2Upsampling(t, scale_factor=0)
    with pytest.raises(ValueError, match="align_corners must be a bool"):
        cnn.R2Upsampling(t, scale_factor=2, align_corners="yes")
    with pytest.raises(ValueError, match=r"input must have shape \[N, 10"):
        cnn.R2Upsampling(t, scale_factor=2)(torch.zeros(1, 3, 4, 4))
    assert cnn.R2Upsampling(t, scale_factor=2, mode="nearest").align_corners is None
