"""MaskModule (cupysteer.torch.nn.mask): e2cnn's / escnn's outputs on their fixtures, the mask
formula, exact equivariance (float64, 2D and 3D), gradcheck, state, copies, pickles,
torch.compile, errors."""
import copy
import json
import math
import pickle

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import r3

torch = pytest.importorskip("torch")

from cupysteer.torch import nn as snn  # noqa: E402
from cupysteer.torch.nn.mask import radial_mask  # noqa: E402

from _paths import DATA  # noqa: E402


def _cases(data):
    meta = json.loads((DATA / data / "meta.json").read_text())["module_cases"]["cases"]
    z = np.load(DATA / data / "modules.npz")
    return [(kw, z[f"case{i}.input"], z[f"case{i}.output"])
            for i, (name, kw, _) in enumerate(meta) if name == "MaskModule"]


def test_outputs_equal_e2cnn_and_escnn():
    C4, O = cs.CyclicGroup(4), r3.Octahedral()
    n = 0
    for data, t in (("e2cnn_c8mnist", cs.FieldType(C4, [C4.regular_representation] * 2)),
                    ("escnn_3d_model", cs.FieldType(O, [O.regular_representation]))):
        for kw, x, y in _cases(data):
            out = snn.MaskModule(t, **kw)(torch.from_numpy(x)).numpy()
            assert out.shape == y.shape
            assert np.abs(out - y).max() <= 1e-6 * np.abs(y).max(), kw
            n += 1
    assert n == 5


def test_mask_formula():
    """e2cnn's loop: 1 inside radius c(1 − margin/100), exp((t − r)/σ²) outside."""
    S, margin = 29, 1
    m = radial_mask(S, 2, margin)
    c = (S - 1) / 2
    t = (c - margin / 100 * c) ** 2
    for x, y in ((0, 0), (14, 14), (0, 14), (3, 5), (27, 1)):
        r = (x - c) ** 2 + (y - c) ** 2
        assert m[x, y] == (math.exp((t - r) / 4.0) if r > t else 1.0)
    assert m[14, 0] < 1 and m[14, 1] == 1.0  # the margin shaves the edge's midpoint


def _types():
    D4, Oh = cs.DihedralGroup(4), r3.FullOctahedral()
    return {"D4": cs.FieldType(D4, [D4.regular_representation, D4.irrep(1, 1).representation]),
            "Oh": cs.FieldType(Oh, [Oh.standard_representation, Oh.trivial_representation])}


@pytest.mark.parametrize("name,S,margin", [("D4", 9, 1), ("D4", 8, 20), ("Oh", 5, 0),
                                           ("Oh", 6, 10)])
def test_equivariant_on_grid_elements(float64, name, S, margin):
    t = _types()[name]
    errors = snn.check_equivariance(snn.MaskModule(t, S, margin=margin), t, t, size=S,
                                    atol=1e-12, rtol=0)
    assert len(errors) == (8 if name == "D4" else 48)


def test_gradcheck(float64):
    t = _types()["D4"]
    x = torch.randn(1, t.size, 5, 5, requires_grad=True)
    assert torch.autograd.gradcheck(snn.MaskModule(t, 5, margin=1), (x,), fast_mode=True)


def test_state_copies_pickles_dtypes_and_e2cnn_checkpoints():
    t = _types()["D4"]
    m = snn.MaskModule(t, 9, margin=1)
    assert m.state_dict() == {} and list(m.parameters()) == []
    x = torch.randn(2, t.size, 9, 9)
    for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        torch.testing.assert_close(other(x), m(x), rtol=0, atol=0)
    d = copy.deepcopy(m).double()
    np.testing.assert_array_equal(d.mask[0, 0].numpy(), radial_mask(9, 2, 1.0))
    # e2cnn stores the mask as a parameter without gradient: checked, then dropped
    m.load_state_dict({"mask": torch.tensor(radial_mask(9, 2, 1.0)[None, None],
                                            dtype=torch.float32)})
    with pytest.raises(RuntimeError, match="mask.*margin=1.0.*checkpoint's S and margin"):
        m.load_state_dict({"mask": torch.ones(1, 1, 9, 9)})


def test_torch_compile(float64):
    t = _types()["Oh"]
    m = snn.MaskModule(t, 5, margin=1)
    x = torch.randn(2, t.size, 5, 5, 5)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), m(x), rtol=0, atol=0)


def test_clear_errors():
    t = _types()["D4"]
    with pytest.raises(ValueError, match="S must be a positive int"):
        snn.MaskModule(t, 0)
    with pytest.raises(ValueError, match="margin must be a finite number"):
        snn.MaskModule(t, 9, margin="1")
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        snn.MaskModule(t, 9, sigma=0.0)
    with pytest.raises(ValueError, match=r"S=9.*build the module with the input's size"):
        snn.MaskModule(t, 9)(torch.randn(1, t.size, 8, 8))
    with pytest.raises(ValueError, match="input must have shape"):
        snn.MaskModule(t, 9)(torch.randn(1, 3, 9, 9))


def test_export_multiplies_by_the_mask():
    t = _types()["D4"]
    m = snn.MaskModule(t, 9, margin=1)
    plain = m.export()
    assert type(plain).__name__ == "Multiply" and plain.state_dict()["factor"].shape == (
        1, 1, 9, 9)
    x = torch.randn(2, t.size, 9, 9)
    torch.testing.assert_close(plain(x), m(x), rtol=0, atol=0)
