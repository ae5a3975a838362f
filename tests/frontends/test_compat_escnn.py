"""cupysteer.compat.escnn: escnn 1.0.11's 3D vocabulary. Every factory builds with escnn's
name; every fixture of tests/data/escnn3d rebuilt through the compat API has escnn's parameter
count, weight blocks, He stds and bias expansion, and for SO(3)/O(3) escnn's filter."""
import math
import pickle

import numpy as np
import pytest

import cupysteer as cs
from cupysteer.compat import e2cnn
from cupysteer.compat import escnn as e

import _r3_fixtures as fx

FACTORIES = {  # call -> (escnn gspace name, order, cupysteer group)
    "rot3dOnR3()": (lambda: e.rot3dOnR3(), "SO(3)_on_R3", -1),
    "flipRot3dOnR3(3)": (lambda: e.flipRot3dOnR3(3), "O(3)_on_R3", -1),
    "octaOnR3()": (e.octaOnR3, "Octahedral_on_R3", 24),
    "fullOctaOnR3()": (e.fullOctaOnR3, "FullOctahedral_on_R3", 48),
    "icoOnR3()": (e.icoOnR3, "Icosahedral_on_R3", 60),
    "fullIcoOnR3()": (e.fullIcoOnR3, "FullIcosahedral_on_R3", 120),
    "rot2dOnR3(8)": (lambda: e.rot2dOnR3(8), "C8_on_R3", 8),
    "rot2dOnR3(-1, 3)": (lambda: e.rot2dOnR3(-1, 3), "SO(2)_on_R3", -1),
    "dihedralOnR3(4)": (lambda: e.dihedralOnR3(4), "D4_on_R3", 8),
    "dihedralOnR3(-1)": (lambda: e.dihedralOnR3(-1), "O(2)_on_R3", -1),
    "conicalOnR3(3, 0.)": (lambda: e.conicalOnR3(3, 0.), "D3_on_R3", 6),
    "conicalOnR3(-1)": (lambda: e.conicalOnR3(-1), "O(2)_on_R3", -1),
    "cylindricalOnR3(2)": (lambda: e.cylindricalOnR3(2), "Klein4_on_R3", 4),
    "cylindricalOnR3(4)": (lambda: e.cylindricalOnR3(4), "CylindricalDiscrete_on_R3", 8),
    "cylindricalOnR3(-1)": (lambda: e.cylindricalOnR3(-1), "Cylindrical_on_R3", -1),
    "fullCylindricalOnR3(3)": (lambda: e.fullCylindricalOnR3(3), "FullCylindricalDiscrete_on_R3",
                               12),
    "fullCylindricalOnR3(-1)": (lambda: e.fullCylindricalOnR3(-1), "FullCylindrical_on_R3", -1),
    "invOnR3()": (e.invOnR3, "C2_on_R3", 2),
    "mirOnR3()": (e.mirOnR3, "C2_on_R3", 2),
    "trivialOnR3()": (e.trivialOnR3, "C1_on_R3", 1),
}


@pytest.mark.parametrize("call", list(FACTORIES))
def test_every_factory_builds_with_escnns_name(call):
    make, name, order = FACTORIES[call]
    gs = make()
    assert gs.name == name and repr(gs) == name and gs.dimensionality == 3
    G = gs.fibergroup
    assert G.order == order and G.space.dimension == 3
    assert gs == make() and hash(gs) == hash(make())
    assert gs.trivial_repr.size == 1
    g = G.testing_elements()[-1]
    assert gs.trivial_repr(g).shape == (1, 1)
    if G.is_finite:
        R = gs.regular_repr
        assert R.size == order
        M = R(g)
        np.testing.assert_allclose(M @ M.T, np.eye(order), atol=1e-12)
    t = gs.type(*[p.representation for p in G.irreps()][:3])
    assert isinstance(t, e.FieldType) and t.gspace is gs
    b = e.R3ConvBasis(t, t, 3)
    assert b.shape == (t.size, t.size, 3, 3, 3) and b.dim > 0


def test_factory_semantics():
    """The grid-preserving elements each gspace contains (reference §2)."""
    rz90 = np.array([[0., -1, 0], [1, 0, 0], [0, 0, 1]])
    ry180 = np.diag([-1., 1, -1])
    rx180 = np.diag([1., -1, -1])
    mx = np.diag([-1., 1, 1])
    has = lambda gs, m: bool(gs.fibergroup.contains(m[None])[0])  # noqa: E731
    assert has(e.dihedralOnR3(4), rz90) and has(e.dihedralOnR3(4), rx180)
    assert has(e.dihedralOnR3(3), ry180) and not has(e.dihedralOnR3(3), rx180)
    assert has(e.conicalOnR3(4), mx) and has(e.mirOnR3(), mx)
    assert not has(e.conicalOnR3(4), -np.eye(3))
    assert has(e.cylindricalOnR3(4), -np.eye(3)) and has(e.cylindricalOnR3(4), np.diag([1., 1, -1]))
    assert has(e.fullCylindricalOnR3(2, 0.), rx180) and not has(e.fullCylindricalOnR3(3), ry180)
    # escnn's identities: conicalOnR3(1, a) is mirOnR3(a), cylindricalOnR3(1) is invOnR3()
    assert e.conicalOnR3(1, 0.3) == e.mirOnR3(0.3)
    assert e.cylindricalOnR3(1) == e.invOnR3()
    assert e.rot2dOnR3(1).fibergroup.order == 1


# ---- the escnn fixtures through the compat API -------------------------------------------
def _gspace(spec):
    kind = spec[0]
    return {"so3": lambda: e.rot3dOnR3(spec[1]), "o3": lambda: e.flipRot3dOnR3(spec[1]),
            "octa": e.octaOnR3, "ico": e.icoOnR3, "inv": e.invOnR3,
            "rot2d": lambda: e.rot2dOnR3(spec[1], maximum_frequency=spec[2])}[kind]()


def _field(gs, spec):
    if spec in ("trivial", "regular"):
        return getattr(gs, f"{spec}_repr")
    if spec == "std":
        return gs.standard_repr
    what, _, arg = spec.partition(":")
    import ast
    arg = ast.literal_eval(arg)
    return gs.irrep(*arg) if what == "irrep" else gs.quotient_repr(arg)


def _compat_layer(name):
    c = fx.index()[name]
    gs = _gspace(c["gspace"]["spec"])
    tin = e.FieldType(gs, [_field(gs, s) for s in c["in_fields"]])
    tout = e.FieldType(gs, [_field(gs, s) for s in c["out_fields"]])
    return gs, tin, tout, e.R3ConvBasis(tin, tout, c["kernel_size"], c["dilation"])


@pytest.fixture(scope="module")
def layers():
    return {n: _compat_layer(n) for n in fx.names()}


@pytest.mark.parametrize("name", fx.names())
def test_fixture_counts_names_and_layout(layers, name):
    c, z = fx.index()[name], fx.arrays(name)
    gs, tin, tout, b = layers[name]
    assert gs.name == c["gspace"]["name"]
    assert [r.name for r in tin.representations] == c["in_repr_names"]
    assert [r.name for r in tout.representations] == c["out_repr_names"]
    assert (tin.size, tout.size) == (c["in_size"], c["out_size"])
    assert b.dim == c["n_params"] and b.shape == tuple(c["filter_shape"])
    assert b.num_bias == c["n_bias"]
    assert [(i, o, lo, hi) for i, o, lo, hi, *_ in b.weight_blocks] == \
        [(k["in_repr"], k["out_repr"], *k["weights_range"]) for k in c["blocks"]]
    np.testing.assert_allclose(b.he_std(), z["he_std"], rtol=1e-6)
    if c["n_bias"]:
        np.testing.assert_allclose(b.expand_bias(z["bias"].astype(np.float64)),
                                   z["expanded_bias"], atol=1e-6)
    assert b.basis is b and isinstance(b.basis, cs.LayerBasis)
    assert b.stored_bytes > 0 and b.padded_bytes > 0


EXACT = [n for n in fx.names() if fx.index()[n]["gspace"]["spec"][0] in ("so3", "o3")]


@pytest.mark.parametrize("name", EXACT)
def test_so3_o3_filters_equal_escnn(layers, name):
    z = fx.arrays(name)
    b = layers[name][3]
    K = b.expand(z["weights"])
    assert K.dtype == np.float32
    assert np.abs(K - z["filter"]).max() <= 1e-6
    K64 = b.expand(z["weights"].astype(np.float64))
    assert K64.dtype == np.float64 and np.abs(K64 - z["filter"]).max() <= 1e-6


def test_batch_dtype_and_adjoint(layers):
    b = layers["so3_vec_tensor_k5"][3]
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, b.dim))
    K = b.expand(W)
    assert K.shape == (3,) + b.shape and K.dtype == np.float64
    for i in range(3):
        np.testing.assert_allclose(K[i], b.expand(W[i]), atol=1e-14)
    assert b.expand(W.astype(np.float32)).dtype == np.float32
    G = rng.standard_normal(b.shape)
    np.testing.assert_allclose(np.sum(b.expand(W[0]) * G), W[0] @ b.adjoint(G), rtol=1e-12)


def test_representations_callable_on_matrices():
    gs = e.flipRot3dOnR3()
    R = cs.r3.axis_angle_matrix([1., 2., 3.], 0.7)
    np.testing.assert_allclose(gs.irrep(1, 1)(-R), -gs.irrep(0, 1)(R), atol=1e-12)
    np.testing.assert_allclose(gs.standard_repr(-R), -R, atol=1e-12)
    go = e.octaOnR3()
    faces = go.quotient_repr((False, 4))
    assert faces.size == 6 and faces.name == "quotient[(False, 4)]"
    assert go.irrep(-1).size == 3 and go.irrep(2).size == 2


def test_pickle_and_equality():
    gs = e.octaOnR3()
    t = e.FieldType(gs, [gs.regular_repr, gs.irrep(1)])
    t2 = pickle.loads(pickle.dumps(t))
    assert t2 == t and t2.gspace == gs and t2.size == 27


def test_clear_errors():
    gs = e.rot3dOnR3()
    with pytest.raises(ValueError, match="GSpace3D"):
        e.FieldType(cs.r3.SO3(), [gs.trivial_repr])
    g2 = e2cnn.Rot2dOnR2(4)
    with pytest.raises(ValueError, match="2D gspace"):
        e.FieldType(g2, [g2.trivial_repr])
    t2 = e2cnn.FieldType(g2, [g2.regular_repr])
    with pytest.raises(ValueError, match="R2ConvBasis"):
        e.R3ConvBasis(t2, t2, 3)
    t = e.FieldType(gs, [gs.irrep(1)])
    with pytest.raises(ValueError, match="FieldType"):
        e.R3ConvBasis([gs.irrep(1)], t, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        e.R3ConvBasis(t, t, 0)
    with pytest.raises(ValueError, match="kernel_size"):
        e.R3ConvBasis(t, t, 2.5)
    with pytest.raises(ValueError, match="share one group"):
        e.R3ConvBasis(t, e.FieldType(e.flipRot3dOnR3(), [e.flipRot3dOnR3().irrep(1, 1)]), 3)
    with pytest.raises(ValueError, match="representations"):
        e.FieldType(gs, e.octaOnR3().regular_repr)
    with pytest.raises(ValueError):
        e.FieldType(gs, [e.octaOnR3().regular_repr])
    with pytest.raises(ValueError, match="irrep id"):
        e.octaOnR3().irrep(4)
    with pytest.raises(ValueError, match="continuous|finite"):
        gs.regular_repr
    with pytest.raises(ValueError, match="adjoint"):
        e.rot2dOnR3(4, adjoint=np.eye(3))
    with pytest.raises(ValueError, match="n must be an int"):
        e.rot2dOnR3(4.0)
    with pytest.raises(ValueError, match="N must be"):
        e.rot2dOnR3(0)
    with pytest.raises(ValueError):
        e.dihedralOnR3(1)
    with pytest.raises(ValueError, match="rings|sigma"):
        e.R3ConvBasis(t, t, 3, rings=[0.0, 100.0])
    assert math.isclose(e.mirOnR3().fibergroup.axis, math.pi / 2)


SUBGROUP = [n for n in fx.names() if n not in EXACT]


@pytest.mark.parametrize("name", SUBGROUP)
def test_subgroup_filters_refit_exactly(layers, name):
    """For subgroups escnn's elements depend on its random cache, but the span is canonical:
    a least-squares refit of escnn's filter onto our basis (docs/migrate_from_escnn.md)
    reproduces it to float32 round-off."""
    z = fx.arrays(name)
    b = layers[name][3]
    A = b.dense().reshape(b.dim, -1).T
    w, *_ = np.linalg.lstsq(A, z["filter"].astype(np.float64).ravel(), rcond=None)
    assert np.abs(b.expand(w) - z["filter"]).max() <= 1e-6


def test_field_type_sum_keeps_the_gspace():
    from cupysteer.compat import escnn as e
    gs = e.octaOnR3()
    a = e.FieldType(gs, [gs.trivial_repr])
    b = e.FieldType(gs, [gs.regular_repr])
    c = a + b
    assert isinstance(c, e.FieldType) and c.gspace == gs and c.size == 25
    with pytest.raises(ValueError, match="same gspace"):
        a + e.FieldType(e.icoOnR3(), [e.icoOnR3().trivial_repr])
