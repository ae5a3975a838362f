"""NumPy backend: expand / adjoint / bias against the independent dense basis."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cupysteer as cs
from cupysteer.backends.numpy_backend import NumpyExpander

from _helpers import SETTINGS, build, field_types, group

GROUP_NAMES = ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "D1", "D2", "D3", "D4", "D5",
               "D6", "SO2", "O2", "Flip0", "FlipPi2", "D4axis0"]


def einsum_ref(b, w):
    D = b.dense()
    return np.tensordot(np.asarray(w, np.float64), D, axes=(-1, 0))


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


@st.composite
def layers(draw, names=GROUP_NAMES, kernel_sizes=(3, 4, 5)):
    name = draw(st.sampled_from(names))
    tin = draw(field_types(name, max_fields=3, max_size=24), label="in_type")
    tout = draw(field_types(name, max_fields=3, max_size=24), label="out_type")
    k = draw(st.sampled_from(kernel_sizes))
    d = draw(st.sampled_from([1, 1, 2]))
    return build(tin, tout, k, d)


@settings(**SETTINGS)
@given(b=layers(), seed=st.integers(0, 2 ** 32 - 1))
def test_expand_matches_dense(b, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(b.dim)
    ref = einsum_ref(b, w)
    K64 = b.expand(w)
    assert K64.dtype == np.float64 and K64.shape == b.shape
    assert rel(K64, ref) < 1e-12
    K32 = b.expand(w.astype(np.float32))
    assert K32.dtype == np.float32 and K32.shape == b.shape
    assert rel(K32, ref) < 1e-5


@settings(**SETTINGS)
@given(b=layers(), seed=st.integers(0, 2 ** 32 - 1), batch=st.integers(1, 4))
def test_batched_and_adjoint(b, seed, batch):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((batch, b.dim))
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        Wd = W.astype(dtype)
        KB = b.expand(Wd)
        assert KB.shape == (batch,) + b.shape and KB.dtype == dtype
        for i in range(batch):
            # equal up to round-off (batched GEMM vs single GEMV may sum differently)
            assert rel(KB[i], b.expand(Wd[i])) < (1e-13 if dtype == np.float64 else 1e-6)
        G = rng.standard_normal((batch,) + b.shape).astype(dtype)
        A = b.adjoint(G)
        assert A.shape == (batch, b.dim) and A.dtype == dtype
        for i in range(batch):
            lhs = float(np.vdot(b.expand(Wd[i]).astype(np.float64), G[i].astype(np.float64)))
            rhs = float(np.vdot(Wd[i].astype(np.float64), A[i].astype(np.float64)))
            scale = np.linalg.norm(KB[i]) * np.linalg.norm(G[i]) + 1e-300
            assert abs(lhs - rhs) <= tol * scale
            a1 = b.adjoint(G[i])
            assert a1.shape == (b.dim,)
            np.testing.assert_allclose(a1, A[i], rtol=0, atol=tol * np.abs(A).max())
    # float64 adjoint equals Dᵀ G
    G = rng.standard_normal(b.shape)
    D = b.dense().reshape(b.dim, -1)
    assert rel(b.adjoint(G), D @ G.ravel()) < 1e-12


@pytest.mark.parametrize("name", GROUP_NAMES)
def test_mixed_non_contiguous_fields(name):
    """[regular, irrep, regular] style types: repeated and non-contiguous fields."""
    G = group(name)
    irreps = G.irreps()
    psi = irreps[1] if len(irreps) > 1 else irreps[0]
    if G.is_finite:
        reg = G.regular_representation
        tin = cs.FieldType(G, [reg, psi, reg])
        tout = cs.FieldType(G, [psi, reg, irreps[0], psi])
    else:
        q = irreps[-1]
        tin = cs.FieldType(G, [q, psi, q, irreps[0]])
        tout = cs.FieldType(G, [psi, q, psi])
    b = cs.LayerBasis(tin, tout, 5)
    w = np.random.default_rng(0).standard_normal(b.dim)
    assert rel(b.expand(w), einsum_ref(b, w)) < 1e-12
    assert rel(b.expand(w.astype(np.float32)), einsum_ref(b, w)) < 1e-5
    G_ = np.random.default_rng(1).standard_normal(b.shape)
    assert rel(b.adjoint(G_), b.dense().reshape(b.dim, -1) @ G_.ravel()) < 1e-12


def test_integer_and_bool_weights_become_float64():
    G = cs.CyclicGroup(4)
    ft = cs.FieldType(G, [G.regular_representation, G.irrep(1)])
    b = cs.LayerBasis(ft, ft, 3)
    wi = np.arange(b.dim) % 3 - 1
    K = b.expand(wi)
    assert K.dtype == np.float64
    np.testing.assert_array_equal(K, b.expand(wi.astype(np.float64)))
    assert b.expand(list(wi.astype(float))).dtype == np.float64
    assert b.expand(np.ones(b.dim, bool)).dtype == np.float64


@pytest.fixture(scope="module")
def small():
    G = cs.DihedralGroup(3)
    tin = cs.FieldType(G, [G.regular_representation, G.irrep(1, 1), G.trivial_representation])
    tout = cs.FieldType(G, [G.irrep(1, 1), G.trivial_representation, G.regular_representation,
                            G.irrep(1, 0)])
    return cs.LayerBasis(tin, tout, 3)


@pytest.mark.parametrize("bad", [
    lambda d: np.zeros(d + 1), lambda d: np.zeros(d - 1), lambda d: np.zeros((2, 3, d)),
    lambda d: np.zeros(()), lambda d: np.zeros(d, np.complex128), lambda d: np.zeros(d, np.float16),
    lambda d: np.full(d, np.nan), lambda d: np.r_[np.zeros(d - 1), np.inf],
    lambda d: np.array(["a"] * d)])
def test_bad_weights_rejected(small, bad):
    with pytest.raises(ValueError, match="weights"):
        small.expand(bad(small.dim))


@pytest.mark.parametrize("bad", [
    lambda s: np.zeros(s[:-1]), lambda s: np.zeros(s + (1,)), lambda s: np.zeros((2, 2) + s),
    lambda s: np.zeros(s, np.complex64), lambda s: np.full(s, np.nan),
    lambda s: np.zeros((s[1], s[0]) + s[2:])])
def test_bad_filter_grad_rejected(small, bad):
    with pytest.raises(ValueError, match="filter_grad"):
        small.adjoint(bad(small.shape))


def test_bad_bias_rejected(small):
    T = small.num_bias
    for bad in (np.zeros(T + 1), np.zeros(T, np.complex128), np.full(T, np.nan)):
        with pytest.raises(ValueError, match="bias"):
            small.expand_bias(bad)


def test_non_numpy_input_rejected(small):
    class Fake:
        pass
    with pytest.raises((TypeError, ValueError)):
        small.expand(Fake())


def test_expander_checks_dtype(small):
    with pytest.raises(ValueError, match="dtype"):
        NumpyExpander(small.plan, np.int32)
    ex = NumpyExpander(small.plan, np.float32)
    with pytest.raises(ValueError, match="weights"):
        ex.expand(np.zeros(small.dim))  # float64 into a float32 expander


# ---- bias -----------------------------------------------------------------------------------

@settings(**SETTINGS)
@given(b=layers(names=["C4", "D3", "D4", "O2", "SO2", "Flip0", "C1"]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_bias_expansion(b, seed):
    M = b.bias_expansion()
    T = sum(psi.is_trivial for psi in b.out_type.irreps)
    assert M.shape == (b.out_type.size, T) and b.num_bias == T
    rng = np.random.default_rng(seed)
    bias = rng.standard_normal(T)
    for dtype in (np.float64, np.float32):
        eb = b.expand_bias(bias.astype(dtype))
        assert eb.dtype == dtype and eb.shape == (b.out_type.size,)
        np.testing.assert_allclose(eb, M @ bias, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-6 if dtype == np.float32 else 1e-14)
    if T:
        B = rng.standard_normal((3, T))
        np.testing.assert_allclose(b.expand_bias(B), B @ M.T, atol=1e-13)
    # columns: orthonormal, each inside one output field, and invariant: ρ_out(g) M = M
    np.testing.assert_allclose(M.T @ M, np.eye(T), atol=1e-12)
    G = b.out_type.group
    els = G.elements() if G.is_finite else G.testing_elements()
    R = b.out_type.representation.evaluate(els[:6])
    for Rg in R:
        np.testing.assert_allclose(Rg @ M, M, atol=1e-12)


def test_bias_expansion_matches_q_columns():
    G = cs.CyclicGroup(4)
    reg = G.regular_representation
    ft = cs.FieldType(G, [G.irrep(1), reg, G.trivial_representation])
    b = cs.LayerBasis(ft, ft, 3)
    M = b.bias_expansion()
    assert M.shape == (7, 2)
    exp = np.zeros((7, 2))
    exp[2:6, 0] = reg.change_of_basis[:, 0]  # irrep_0 is the first irrep of regular
    exp[6, 1] = 1.0
    np.testing.assert_allclose(M, exp, atol=1e-15)
    np.testing.assert_allclose(exp[2:6, 0], 0.5)


def test_no_trivial_output_no_bias():
    G = cs.CyclicGroup(4)
    ft_in = cs.FieldType(G, [G.regular_representation])
    ft_out = cs.FieldType(G, [G.irrep(1), G.irrep(2)])
    b = cs.LayerBasis(ft_in, ft_out, 3)
    assert b.num_bias == 0 and b.bias_expansion().shape == (3, 0)
    np.testing.assert_array_equal(b.expand_bias(np.zeros(0)), np.zeros(3))


# ---- plan ------------------------------------------------------------------------------------

def test_plan_pickles_and_validates(small):
    p = small.plan
    assert isinstance(p, cs.ExpansionPlan)
    p.validate()
    q = pickle.loads(pickle.dumps(p))
    q.validate()
    assert q.dim == p.dim and q.filter_shape == p.filter_shape
    np.testing.assert_array_equal(q.basis, p.basis)
    np.testing.assert_array_equal(q.weight_index, p.weight_index)
    w = np.random.default_rng(0).standard_normal(p.dim)
    np.testing.assert_array_equal(NumpyExpander(q).expand(w).reshape(small.shape),
                                  small.expand(w))
    assert np.array_equal(np.sort(p.weight_index), np.arange(p.dim))
    assert not p.basis.flags.writeable


def test_plan_validate_catches_corruption(small):
    import dataclasses
    p = small.plan
    fields = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
    bad = dict(fields, weight_index=np.zeros_like(p.weight_index))
    with pytest.raises(ValueError, match="weight_index"):
        cs.ExpansionPlan(**bad)
    bad = dict(fields, block_row=p.block_row + p.out_size)
    with pytest.raises(ValueError):
        cs.ExpansionPlan(**bad)


@settings(**SETTINGS)
@given(b=layers())
def test_plan_validate_passes_on_random_layers(b):
    b.plan.validate()
    q = pickle.loads(pickle.dumps(b.plan))
    q.validate()
    assert q.nbytes == b.plan.nbytes


def test_non_contiguous_inputs(small):
    rng = np.random.default_rng(4)
    big = rng.standard_normal((3, 2 * small.dim))
    w = big[1, ::2]  # strided view
    assert not w.flags.c_contiguous
    np.testing.assert_array_equal(small.expand(w), small.expand(np.ascontiguousarray(w)))
    WF = np.asfortranarray(rng.standard_normal((3, small.dim)))
    assert rel(small.expand(WF), small.expand(np.ascontiguousarray(WF))) < 1e-14
    G = rng.standard_normal(small.shape[::-1]).T  # transposed view
    assert not G.flags.c_contiguous
    np.testing.assert_allclose(small.adjoint(G), small.adjoint(np.ascontiguousarray(G)),
                               rtol=1e-13, atol=1e-13)
    # inputs are not modified
    G0 = G.copy()
    small.adjoint(G)
    np.testing.assert_array_equal(G, G0)


# ---- 3D-sized plans: irreps of any dimension, large dense Q, any filter_shape ------------------
# random plans straight from the plan contract (tests/_plan_strategies.py) against the
# plain-loop dense reference

from _plan_strategies import build_plan, dense_adjoint, dense_filter, plan_specs  # noqa: E402


def _check_against_dense(plan, method, seed=0, batch=2, float32=True):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((batch, plan.dim))
    ref = dense_filter(plan, W)
    G = rng.standard_normal(ref.shape)
    gref = dense_adjoint(plan, G)
    ex = NumpyExpander(plan, np.float64, method=method)
    K = ex.expand(W)
    assert K.shape == (batch, plan.out_size, plan.in_size) + plan.filter_shape
    assert rel(K, ref) <= 1e-12
    assert rel(ex.expand(W[-1]), ref[-1]) <= 1e-12
    assert rel(ex.adjoint(G), gref) <= 1e-12
    assert rel(ex.adjoint(G[0]), gref[0]) <= 1e-12
    if not float32:
        return ex
    ex32 = NumpyExpander(plan, np.float32, method=method)
    assert rel(ex32.expand(W.astype(np.float32)), ref) < 1e-5
    assert rel(ex32.adjoint(G.astype(np.float32)), gref) < 1e-5
    return ex


@settings(max_examples=20, deadline=None)
@given(spec=plan_specs(max_dim=9, big_dims=(13,), max_field=60, max_points=343))
def test_big_block_plans_match_dense_reference(spec):
    """Irreps up to 9 (sometimes 13) channels, fields up to 60 with dense random orthogonal Q,
    P up to 343, filter_shape (k, k, k), (k, k) or (P,): both schedules, float64 ≤ 1e-12."""
    plan = build_plan(**spec)
    if plan.dim == 0:
        return
    for method in ("rows", "blocks"):
        ex = _check_against_dense(plan, method, seed=spec["seed"] % 1000,
                                  float32=method == "blocks")
        assert ex.method == method
    assert NumpyExpander(plan).method in ("rows", "blocks")


@pytest.mark.parametrize("method", ["auto", "rows", "blocks"])
def test_icosahedral_sized_field(method):
    """A 120-channel field (irreps 1, 3, 3, 4, 5 with multiplicities = dimensions, like the
    regular representation of I; dense Q) to itself and to a 13-dimensional irrep, 27 points;
    the automatic schedule avoids the Q_in-contracted row bases there."""
    dims = [1, 3, 3, 4, 5, 13]
    regular = [t for t, d in enumerate(dims[:5]) for _ in range(d)]
    assert sum(dims[t] for t in regular) == 60
    reps = [regular + regular, [5]]
    counts = {(a, b): 1 + (a + b) % 3 for a in range(6) for b in range(6)}
    plan = build_plan(dims, reps, [False, True], [0, 1], [0], counts, (3, 3, 3), seed=5)
    assert plan.out_size == 133 and plan.in_size == 120 and plan.pair_shape.max() == 13
    ex = _check_against_dense(plan, method, batch=1)
    if method == "auto":
        assert ex.method == "blocks"


def test_2d_layers_keep_the_row_schedule():
    G = cs.CyclicGroup(8)
    L = cs.LayerBasis(cs.FieldType(G, [G.regular_representation] * 16),
                      cs.FieldType(G, [G.regular_representation] * 16), 5)
    assert NumpyExpander(L.plan).method == "rows"
    with pytest.raises(ValueError, match="method"):
        NumpyExpander(L.plan, method="dense")


def test_plan_shapes_beyond_the_plane():
    """pair_shape entries ≥ 1 of any size, filter_shape any tuple (its product is P); a zero
    dimension or a mismatching filter_shape is refused."""
    import dataclasses
    spec = dict(irrep_dims=[1, 13, 7], reps=[[0, 1], [2, 2]], identity=[False, False],
                out_fields=[0, 1], in_fields=[1], counts={(a, b): 2 for a in range(3)
                                                          for b in range(3)},
                filter_shape=(2, 3, 4), seed=1)
    plan = build_plan(**spec)
    assert plan.filter_shape == (2, 3, 4) and plan.num_points == 24
    assert set(map(tuple, plan.pair_shape)) >= {(13, 7), (7, 7), (1, 7)}
    fields = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan)}
    assert cs.ExpansionPlan(**dict(fields, filter_shape=[24])).filter_shape == (24,)
    assert cs.ExpansionPlan(**dict(fields, filter_shape=(np.int64(4), 6))).filter_shape == (4, 6)
    with pytest.raises(ValueError, match="pair_shape"):
        cs.ExpansionPlan(**dict(fields, pair_shape=np.where(plan.pair_shape == 7, 0,
                                                            plan.pair_shape)))
    with pytest.raises(ValueError, match="filter_shape"):
        cs.ExpansionPlan(**dict(fields, filter_shape=(5, 5)))
    with pytest.raises(ValueError, match="filter_shape"):
        cs.ExpansionPlan(**dict(fields, filter_shape=(24, 0)))
    _check_against_dense(plan, "auto")
