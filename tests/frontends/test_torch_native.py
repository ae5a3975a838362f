"""The torch-native expansion (cupysteer.torch.native): the JAX path's gather/einsum schedule in
torch ops, equal to the NumPy backend; the layers and functions use it on devices without a
cupysteer kernel. Tested on CPU by routing CPU tensors to it (the path does not depend on the
device type)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
import cupysteer.torch as cst  # noqa: E402
from cupysteer.r3 import groups as g3  # noqa: E402
from cupysteer.torch import SteerableConv2d, SteerableConv3d, native  # noqa: E402


def _bases():
    C4, D4, S = cs.CyclicGroup(4), cs.DihedralGroup(4), cs.SO2(3)
    O = g3.Octahedral()
    return {
        "C4-mixed": cs.LayerBasis(
            cs.FieldType(C4, [C4.regular_representation, C4.trivial_representation]),
            cs.FieldType(C4, [C4.irrep(1).representation, C4.regular_representation]), 5),
        "D4-mixed": cs.LayerBasis(
            cs.FieldType(D4, [D4.regular_representation, D4.irrep(1, 1).representation,
                              D4.regular_representation]),
            cs.FieldType(D4, [D4.trivial_representation, D4.regular_representation,
                              D4.irrep(1, 0).representation]), 3),
        "SO2-irreps": cs.LayerBasis(
            cs.FieldType(S, [S.irrep(0).representation, S.irrep(2).representation]),
            cs.FieldType(S, [S.irrep(1).representation, S.irrep(3).representation]), 5),
        "O-regular": cs.LayerBasis(cs.FieldType(O, [O.trivial_representation]),
                                   cs.FieldType(O, [O.regular_representation]), 3),
    }


BASES = _bases()


@pytest.mark.parametrize("name", sorted(BASES))
def test_forward_and_adjoint_equal_numpy(name):
    b = BASES[name]
    m = native.Expansion(b, torch.float64)
    w = np.random.default_rng(0).standard_normal((3, b.dim))
    np.testing.assert_allclose(m(torch.from_numpy(w)).numpy(), b.expand(w), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(m(torch.from_numpy(w[0])).numpy(), b.expand(w[0]), atol=1e-12)
    G = np.random.default_rng(1).standard_normal((2,) + b.shape)
    np.testing.assert_allclose(m.adjoint(torch.from_numpy(G)).numpy(), b.adjoint(G),
                               rtol=1e-12, atol=1e-12)


def test_float32_half_and_retable_after_double():
    b = BASES["D4-mixed"]
    layer = SteerableConv2d(b.in_type, b.out_type, 3)
    w = layer.weights.detach()
    ref = b.expand(w.double().numpy())
    np.testing.assert_allclose(layer._expansion(w).numpy(), ref, rtol=1e-5, atol=1e-6)
    layer.double()  # tables rebuilt from float64, not cast from float32
    assert layer._expansion.pair0.dtype == torch.float64
    np.testing.assert_allclose(layer._expansion(layer.weights.detach()).numpy(), ref,
                               rtol=1e-13, atol=1e-13)
    layer.half()    # half weights: float32 tables, a half filter
    assert layer._expansion.pair0.dtype == torch.float32
    f = layer._expansion(layer.weights.detach())
    assert f.dtype == torch.float16
    np.testing.assert_allclose(f.float().numpy(), ref, rtol=1e-2, atol=1e-2)


def test_tables_are_buffers_outside_the_state_dict():
    b = BASES["C4-mixed"]
    layer = SteerableConv2d(b.in_type, b.out_type, 5)
    names = dict(layer.named_buffers())
    assert "_expansion.gidx" in names and "_expansion.pair0" in names
    assert list(layer.state_dict()) == ["weights", "bias"]


@pytest.fixture
def no_kernel(monkeypatch):
    """Every device lacks a cupysteer kernel (as mps/xpu do): CPU tensors take the native
    path, and the NumPy/CuPy operator must not run."""
    monkeypatch.setattr(native, "has_kernel", lambda device: False)

    def forbidden(*args):
        raise AssertionError("the operator ran on a device without a kernel")

    monkeypatch.setattr(cst.ops, "_run", forbidden)


@pytest.mark.parametrize("cls,name", [(SteerableConv2d, "D4-mixed"),
                                      (SteerableConv3d, "O-regular")])
def test_layer_without_a_kernel_equals_the_numpy_path(cls, name, monkeypatch, request):
    b = BASES[name]
    torch.manual_seed(0)
    layer = cls(b.in_type, b.out_type, 3, padding=1)
    x = torch.randn((2, b.in_type.size) + (5,) * (len(b.shape) - 2))
    y = layer(x)
    y.square().sum().backward()
    g = layer.weights.grad.clone()
    request.getfixturevalue("no_kernel")
    layer.zero_grad()
    y2 = layer(x)
    y2.square().sum().backward()
    torch.testing.assert_close(y2, y)
    torch.testing.assert_close(layer.weights.grad, g)
    layer.eval()
    with torch.no_grad():
        torch.testing.assert_close(layer(x), y)


def test_functions_without_a_kernel(no_kernel):
    b = BASES["SO2-irreps"]
    w = torch.randn(2, b.dim, dtype=torch.float64, requires_grad=True)
    f = cst.expand(b, w)
    np.testing.assert_allclose(f.detach().numpy(), b.expand(w.detach().numpy()), atol=1e-12)
    G = torch.randn(b.shape, dtype=torch.float64)
    (f * G).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.stack([b.adjoint(G.numpy())] * 2), atol=1e-12)
    np.testing.assert_allclose(cst.adjoint(b, G).numpy(), b.adjoint(G.numpy()), atol=1e-12)


def test_operator_vmap_rule():
    """torch.func.vmap of the operators themselves (not just of the layers): batched over
    leading axes, any position of the mapped axis."""
    b = BASES["C4-mixed"]
    key = cst.register_basis(b)
    w = torch.randn(4, 3, b.dim, dtype=torch.float64)
    out = torch.func.vmap(lambda v: torch.ops.cupysteer.expand(v, key), in_dims=1)(w)
    np.testing.assert_allclose(out.numpy(), b.expand(w.transpose(0, 1).reshape(-1, b.dim)
                                                     .numpy()).reshape((3, 4) + b.shape),
                               atol=1e-12)
    G = torch.randn((2,) + b.shape, dtype=torch.float64)
    out = torch.func.vmap(lambda g: torch.ops.cupysteer.adjoint(g, key))(G)
    np.testing.assert_allclose(out.numpy(), b.adjoint(G.numpy()), atol=1e-12)
