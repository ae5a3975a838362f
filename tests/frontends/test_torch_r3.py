"""cupysteer.torch.SteerableConv3d: shapes, F.conv3d with the basis' filter, export to
nn.Conv3d, gradcheck, and exact equivariance under the grid-preserving elements using the
array operations of escnn's (−z, −y, x) convention (reference §1)."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import cupysteer as cs  # noqa: E402
from cupysteer.r3 import groups as g3  # noqa: E402
from cupysteer.torch import SteerableConv3d  # noqa: E402

# element (matrix acting on (x, y, z)) -> operation on the last three axes (−z, −y, x)
_RZ = np.array([[0., -1, 0], [1, 0, 0], [0, 0, 1]])
_RX = np.array([[1., 0, 0], [0, 0, -1], [0, 1, 0]])
_RY = np.array([[0., 0, 1], [0, 1, 0], [-1, 0, 0]])
OPS = {
    "rz90": (_RZ, lambda x: torch.rot90(x, 1, dims=(-2, -1))),
    "rx90": (_RX, lambda x: torch.rot90(x, 3, dims=(-3, -2))),
    "ry90": (_RY, lambda x: torch.rot90(x, 3, dims=(-3, -1))),
    "rz180": (_RZ @ _RZ, lambda x: torch.rot90(x, 2, dims=(-2, -1))),
    "rx180": (_RX @ _RX, lambda x: torch.rot90(x, 2, dims=(-3, -2))),
    "ry180": (_RY @ _RY, lambda x: torch.rot90(x, 2, dims=(-3, -1))),
    "rz270": (_RZ.T, lambda x: torch.rot90(x, 3, dims=(-2, -1))),
    "inversion": (-np.eye(3), lambda x: torch.flip(x, dims=(-3, -2, -1))),
    "mirror_x": (np.diag([-1., 1, 1]), lambda x: torch.flip(x, dims=(-1,))),
    "mirror_y": (np.diag([1., -1, 1]), lambda x: torch.flip(x, dims=(-2,))),
    "mirror_z": (np.diag([1., 1, -1]), lambda x: torch.flip(x, dims=(-3,))),
}


def so3_type():
    G = g3.SO3(2)
    irr = [p.representation for p in G.irreps()]
    return (cs.FieldType(G, [irr[0], irr[1], irr[2], irr[1]]),
            cs.FieldType(G, [irr[1], irr[2], irr[0]]))


def o3_type():
    G = g3.O3(2)
    i = lambda j, l: G.irrep(j, l).representation  # noqa: E731
    return (cs.FieldType(G, [i(1, 0), i(0, 1), i(1, 1), i(0, 0)]),
            cs.FieldType(G, [i(0, 0), i(1, 1), i(1, 2), i(0, 1), i(1, 0)]))


def octa_type():
    G = g3.Octahedral()
    return (cs.FieldType(G, [G.regular_representation, G.trivial_representation]),
            cs.FieldType(G, [G.regular_representation]))


LAYERS = {"SO3": (so3_type, 5), "O3": (o3_type, 3), "O-regular": (octa_type, 3)}


@pytest.fixture(scope="module", params=list(LAYERS))
def layer(request):
    make, k = LAYERS[request.param]
    torch.manual_seed(0)
    # built in float64 (not .double() afterwards: the bias_expansion buffer would keep the
    # float32 rounding of the regular representation's change of basis)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        m = SteerableConv3d(*make(), k, padding=k // 2)
    finally:
        torch.set_default_dtype(old)
    with torch.no_grad():
        if m.bias is not None:
            m.bias.normal_()
    return m.eval()


def test_op_table_matches_the_matrices():
    """op(coords) = R⁻¹·coords on the (−z, −y, x) grid: the table is (g·f)(p) = f(R⁻¹p)."""
    from cupysteer.r3.settings import grid_points
    pts = torch.from_numpy(grid_points(5).T.reshape(3, 5, 5, 5).copy())
    for name, (R, op) in OPS.items():
        want = torch.einsum("ab,b...->a...", torch.from_numpy(R.T), pts)
        assert torch.equal(op(pts), want), name


def test_output_shape_and_dtype():
    tin, tout = so3_type()
    m = SteerableConv3d(tin, tout, 3, stride=(1, 2, 1), padding=(1, 0, 2))
    x = torch.randn(2, tin.size, 7, 8, 6)
    y = m(x)
    assert y.shape == (2, tout.size, 7, 3, 8) and y.dtype == torch.float32
    filt, bias = m.expand_parameters()
    assert filt.shape == (tout.size, tin.size, 3, 3, 3) and bias.shape == (tout.size,)
    with pytest.raises(ValueError, match="3 spatial axes"):
        m(torch.randn(2, tin.size, 7, 7))
    with pytest.raises(ValueError, match="SteerableConv3d"):
        cs.torch.SteerableConv2d(tin, tout, 3)


def test_equals_conv3d_with_the_basis_filter(layer):
    x = torch.randn(2, layer.in_type.size, 6, 7, 5, dtype=torch.float64)
    w = layer.weights.detach().numpy()
    filt = torch.from_numpy(layer.basis.expand(w))
    b = None if layer.bias is None else torch.from_numpy(layer.basis.expand_bias(
        layer.bias.detach().numpy()))
    ref = F.conv3d(x, filt, b, padding=layer.padding)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), ref, rtol=0, atol=1e-12)
        conv = layer.export()
        assert isinstance(conv, torch.nn.Conv3d) and conv.weight.shape == filt.shape
        torch.testing.assert_close(conv(x), ref, rtol=0, atol=1e-12)


def test_gradcheck_weights_float64():
    G = g3.SO3(1)
    irr = [p.representation for p in G.irreps()]
    tin, tout = cs.FieldType(G, [irr[1]]), cs.FieldType(G, [irr[0], irr[1]])
    m = SteerableConv3d(tin, tout, 3, padding=1).double()
    x = torch.randn(1, tin.size, 4, 4, 4, dtype=torch.float64)
    w = m.weights.detach().clone().requires_grad_(True)
    b = torch.randn(m.basis.num_bias, dtype=torch.float64, requires_grad=True)
    f = lambda w, b: torch.func.functional_call(m, {"weights": w, "bias": b}, (x,))  # noqa: E731
    assert torch.autograd.gradcheck(f, (w, b))
    # the weight gradient is the basis adjoint of the filter gradient
    y = m(x)
    g = torch.randn_like(y)
    (gw,) = torch.autograd.grad(y, m.weights, g)
    filt = torch.from_numpy(m.basis.expand(m.weights.detach().numpy())).requires_grad_(True)
    (gf,) = torch.autograd.grad(F.conv3d(x, filt, padding=1), filt, g)
    torch.testing.assert_close(gw, torch.from_numpy(m.basis.adjoint(gf.numpy())), rtol=1e-10,
                               atol=1e-12)


def _act(rep, R, op, x):
    """(g·f)(p) = ρ(g) f(R⁻¹p)."""
    return torch.einsum("ab,nb...->na...", torch.as_tensor(rep(R), dtype=x.dtype), op(x))


def _errors(m, x):
    G = m.in_type.group
    rin, rout = m.in_type.representation, m.out_type.representation
    errs = {}
    with torch.no_grad():
        y = m(x)
        scale = y.abs().max()
        for name, (R, op) in OPS.items():
            if not G.contains(R[None])[0]:
                continue
            errs[name] = float((m(_act(rin, R, op, x)) - _act(rout, R, op, y)).abs().max() / scale)
    return errs


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_layer_is_equivariant(layer, dtype, tol):
    m = copy.deepcopy(layer).to(dtype)
    torch.manual_seed(1)
    x = torch.randn(1, m.in_type.size, 9, 9, 9, dtype=dtype)
    errs = _errors(m, x)
    G = m.in_type.group
    want = {"rz90", "rx90", "ry90", "rz180", "rx180", "ry180", "rz270"}
    if isinstance(G, g3.O3):
        want |= {"inversion", "mirror_x", "mirror_y", "mirror_z"}
    assert set(errs) == want
    assert max(errs.values()) <= tol, errs


def test_not_equivariant_under_elements_outside_the_group():
    """Sanity check of the equivariance test itself: a C4-about-z layer (not SO(3)) is exactly
    equivariant to Rz(90°) but not to Rx(90°), which is not in the group."""
    G = g3.RotationsZ(4)
    t = cs.FieldType(G, [G.regular_representation])
    m = SteerableConv3d(t, t, 3, padding=1).double()
    x = torch.randn(1, 4, 9, 9, 9, dtype=torch.float64)
    rho = t.representation
    errs = {}
    for name in ("rz90", "rx90"):
        R, op = OPS[name]
        Rz = OPS["rz90"][0]  # ρ is only defined on the group: act with ρ(Rz(90°)) for both
        with torch.no_grad():
            y = m(x)
            errs[name] = float((m(_act(rho, Rz if name == "rx90" else R, op, x))
                                - _act(rho, Rz if name == "rx90" else R, op, y)).abs().max()
                               / y.abs().max())
    assert errs["rz90"] < 1e-12
    assert errs["rx90"] > 1e-3


def test_bias_expansion_exact_after_double():
    """.double() rebuilds the bias expansion from float64 (no float32 rounding carried over)."""
    import cupysteer as cs
    from cupysteer import r3
    from cupysteer.torch import SteerableConv3d
    G = r3.Octahedral()
    t = cs.FieldType(G, [G.regular_representation])
    conv = SteerableConv3d(t, t, 3).double()
    assert conv.bias_expansion.dtype == torch.float64
    np.testing.assert_array_equal(conv.bias_expansion.numpy(), conv.basis.bias_expansion())


def test_escnn_traps_raise_clear_errors():
    """Positional stride/padding (escnn and torch disagree on their order), escnn-only keywords
    and kernel-size tuples of the wrong length are refused with errors naming the argument
    (one size per axis is an anisotropic grid: tests/frontends/test_torch_anisotropic.py)."""
    G = g3.SO3(1)
    t = cs.FieldType(G, [G.irrep(1).representation])
    with pytest.raises(TypeError):
        SteerableConv3d(t, t, 3, 1)  # padding or stride? keyword-only
    with pytest.raises(TypeError, match="basis_filter"):
        SteerableConv3d(t, t, 3, basis_filter=lambda d: True)
    with pytest.raises(ValueError, match="kernel_size"):
        SteerableConv3d(t, t, (3, 3))
