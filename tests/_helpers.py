"""Shared helpers for the kernel-basis tests: groups, representation pools, hypothesis
strategies for random field types, grid symmetries and error measures."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st

import cupysteer as cs
from cupysteer.compat import e2cnn as _e2c

# ---- groups ----------------------------------------------------------------------------

GROUPS = {
    "C1": lambda: cs.trivial_group(),
    **{f"C{n}": (lambda n=n: cs.CyclicGroup(n)) for n in range(2, 17)},
    **{f"D{n}": (lambda n=n: cs.DihedralGroup(n)) for n in range(1, 9)},
    "SO2": lambda: cs.SO2(4),
    "O2": lambda: cs.O2(4),
    "Flip0": lambda: cs.FlipGroup(0.0),
    "FlipPi2": lambda: cs.FlipGroup(math.pi / 2),
    "D4axis0": lambda: cs.DihedralGroup(4, axis=0.0),
}


def group(name: str) -> cs.PlanarGroup:
    return GROUPS[name]()


def representation_pool(G: cs.PlanarGroup) -> list:
    """Irreps, regular and quotient representations of ``G`` (small enough for fast tests)."""
    pool = [psi.representation for psi in G.irreps()]
    if isinstance(G, (cs.SO2,)):
        return pool
    if isinstance(G, cs.O2):
        return pool + [cs.quotient_representation(G, (None, -1))]
    pool.append(G.regular_representation)
    if isinstance(G, cs.FlipGroup):
        return pool
    N = G.rotation_order
    divisors = [M for M in range(2, N) if N % M == 0]
    if G.has_reflections:
        pool += [cs.quotient_representation(G, (None, M)) for M in divisors]
        pool += [cs.quotient_representation(G, (a, 1)) for a in sorted({0, N - 1})]
        pool += [cs.quotient_representation(G, (0, M)) for M in divisors]
    else:
        pool += [cs.quotient_representation(G, M) for M in divisors]
    return pool


_POOLS: dict = {}


def pool(name: str) -> list:
    if name not in _POOLS:
        _POOLS[name] = representation_pool(group(name))
    return _POOLS[name]


def field_types(group_name: str, max_fields: int = 3, max_size: int = 40):
    """Strategy: a FieldType of group ``group_name`` with 1..max_fields fields drawn with
    replacement from the group's pool (so repeated and non-contiguous fields occur)."""
    reps = pool(group_name)
    G = group(group_name)

    def ok(lst):
        return sum(r.size for r in lst) <= max_size

    return (st.lists(st.sampled_from(reps), min_size=1, max_size=max_fields)
            .filter(ok).map(lambda lst: cs.FieldType(G, lst)))


def build(in_type, out_type, kernel_size, dilation=1, **kw) -> cs.LayerBasis:
    """LayerBasis, rejecting (hypothesis) layers whose basis is empty."""
    try:
        return cs.LayerBasis(in_type, out_type, kernel_size, dilation, **kw)
    except cs.EmptyBasisError:
        reject()


# ---- grid symmetries ---------------------------------------------------------------------

def is_signed_permutation(A: np.ndarray, tol: float = 1e-9) -> bool:
    R = np.round(A)
    return (np.abs(A - R).max() < tol and np.isin(R, (-1.0, 0.0, 1.0)).all()
            and (np.abs(R).sum(0) == 1).all() and (np.abs(R).sum(1) == 1).all())


def candidate_elements(G: cs.PlanarGroup) -> list:
    """All elements of a finite group; for SO(2)/O(2) the rotations by kπ/4 (and the
    reflections composed with them)."""
    if G.is_finite:
        return G.elements()
    angles = [k * math.pi / 4 for k in range(8)]
    if G.has_reflections:
        return [(f, a) for f in (0, 1) for a in angles]
    return angles


def grid_symmetries(G: cs.PlanarGroup) -> list:
    """Elements whose action on the plane is a signed permutation matrix (maps the square
    grid onto itself)."""
    return [g for g in candidate_elements(G) if is_signed_permutation(G.action_matrix(g))]


def point_permutation(A: np.ndarray, points: np.ndarray) -> np.ndarray:
    """perm[i] = index of the point A·points[i] (which must be in ``points``)."""
    moved = points @ A.T
    d = np.abs(moved[:, None, :] - points[None, :, :]).max(-1)
    perm = d.argmin(1)
    assert np.allclose(d[np.arange(len(points)), perm], 0.0, atol=1e-9), \
        "the element does not map the point set to itself"
    assert len(set(perm.tolist())) == len(points)
    return perm


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max(max |b|, tiny)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = max(np.abs(b).max(initial=0.0), 1e-300)
    return float(np.abs(a - b).max(initial=0.0) / scale)


def conjugate(rho_out: np.ndarray, K: np.ndarray, rho_in: np.ndarray) -> np.ndarray:
    """ρ_out · K(p) · ρ_inᵀ for every point (K is (C_out, C_in, ...))."""
    Kf = K.reshape(K.shape[0], K.shape[1], -1).astype(np.float64)
    return np.einsum("ab,bcp,dc->adp", rho_out, Kf, rho_in, optimize=True).reshape(K.shape)


SETTINGS = dict(max_examples=25, deadline=None)


# ---- packed layers: the NumPy reference of the expander kernels --------------------------
# (tests/backends/test_kernels_emulated.py runs the kernels on the CPU,
# tests/backends/test_cupy_gpu.py on a GPU)

# relative error of the kernels against the float64 NumPy reference; on a GPU, FMA contraction
# and flush-to-zero (-ftz=true) change the last bits
TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
EXPANDER_GROUPS = ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "D1", "D2", "D3", "D4", "SO2",
                   "O2", "Flip0", "FlipPi2"]


def ft(G: cs.PlanarGroup, *reps) -> cs.FieldType:
    return cs.FieldType(G, list(reps))


def irrep(G: cs.PlanarGroup, i: int):
    return G.irreps()[i].representation


def reference_forward(layers, W) -> np.ndarray:
    """NumPy (float64) filters of every layer, flattened and laid end to end: (b, filter_size)."""
    W = np.asarray(W, np.float64)
    parts, off = [], 0
    for L in layers:
        parts.append(L.expand(W[:, off:off + L.dim]).reshape(len(W), -1))
        off += L.dim
    return np.concatenate(parts, 1)


def reference_adjoint(layers, G) -> np.ndarray:
    """NumPy (float64) weight gradients of every layer laid end to end: (b, dim)."""
    G = np.asarray(G, np.float64)
    parts, off = [], 0
    for L in layers:
        n = int(np.prod(L.shape))
        parts.append(L.adjoint(G[:, off:off + n].reshape((len(G),) + L.shape)))
        off += n
    return np.concatenate(parts, 1)


def network() -> list:
    """Three different layers of C4 (P = 49, 9, 1), mixed fields."""
    G = group("C4")
    R, T, I1, I2 = G.regular_representation, G.trivial_representation, irrep(G, 1), irrep(G, 2)
    return [cs.LayerBasis(ft(G, R, T), ft(G, R, I1), 7),
            cs.LayerBasis(ft(G, R, I1), ft(G, I2, R, T), 3),
            cs.LayerBasis(ft(G, T, R), ft(G, R), 1)]


@st.composite
def layers(draw, names=EXPANDER_GROUPS, kernel_sizes=(1, 2, 3, 4, 5, 6, 7), max_size=16):
    """Strategy: a LayerBasis between two random field types of one group of ``names``."""
    name = draw(st.sampled_from(names))
    tin = draw(field_types(name, max_fields=3, max_size=max_size), label="in_type")
    tout = draw(field_types(name, max_fields=3, max_size=max_size), label="out_type")
    k = draw(st.sampled_from(kernel_sizes), label="kernel_size")
    return build(tin, tout, k)


def assert_split_views(layers, views, W, weight_offsets, dtype, to_numpy=np.asarray) -> None:
    """The per-layer views of a packed expansion of W are each layer's own filters."""
    for L, v, off in zip(layers, views, weight_offsets):
        assert v.shape == (W.shape[0],) + L.shape
        assert rel_err(to_numpy(v), L.expand(W[:, off:off + L.dim].astype(np.float64))) \
            < TOL[np.dtype(dtype)]


def assert_half_close(h: np.ndarray, ref: np.ndarray) -> None:
    """float16 filters within half precision (plus 1e-5 of the largest entry) of ``ref``."""
    err = np.abs(h.astype(np.float64) - ref)
    assert (err <= 2.0 ** -11 * np.abs(ref) + 2.0 ** -24 + 1e-5 * np.abs(ref).max()).all()


def assert_bf16_close(bits: np.ndarray, ref: np.ndarray) -> None:
    """bfloat16 filters (their uint16 bit patterns) within bfloat16 precision of ``ref``."""
    bf = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    assert (np.abs(bf - ref) <= 2.0 ** -8 * np.abs(ref) + 1e-5 * np.abs(ref).max()).all()


# ---- e2cnn vocabulary used by the fixture files (cupysteer.compat.e2cnn) ------------------------

def e2cnn_gspace(g):
    """The compat gspace of a fixture's ``gspace`` entry ({"spec": [...], "axis": ...})."""
    spec, axis = g["spec"], g["axis"]
    kind = spec[0]
    if kind == "rot":
        return _e2c.Rot2dOnR2(spec[1])
    if kind == "fliprot":
        return _e2c.FlipRot2dOnR2(spec[1], axis=axis)
    if kind == "flip":
        return _e2c.Flip2dOnR2(axis=spec[1])
    if kind == "so2":
        return _e2c.Rot2dOnR2(-1, maximum_frequency=spec[1])
    if kind == "o2":
        return _e2c.FlipRot2dOnR2(-1, axis=axis, maximum_frequency=spec[1])
    assert kind == "trivial"
    return _e2c.TrivialOnR2()


def e2cnn_field(gs, spec):
    if spec == "trivial":
        return gs.trivial_repr
    if spec == "regular":
        return gs.regular_repr
    kind, arg = spec.split(":")
    ids = tuple(None if a == "None" else int(a) for a in arg.split(","))
    if kind == "irrep":
        return gs.irrep(*ids)
    return gs.quotient_repr(ids[0] if len(ids) == 1 else ids)
