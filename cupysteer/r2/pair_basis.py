r"""Sampled, normalised kernel basis of one irreps pair: rings × angular harmonics.

Element b on ring i at point p (polar r, θ) is

.. math::  E_b(p) = \exp\!\Big(-\frac{(r - R_i)^2}{2\sigma_i^2}\Big)\, A_b(\theta) / n_b,
           \qquad n_b^2 = \frac{1}{d_\text{out}} \sum_p \lVert \cdot \rVert_F^2,

ring-major, band-limited by |μ| ≤ fco(R_i). As in e2cnn: n_b² < 1e-15 counts as 0,
n_b < 1e-6 (or NaN) is replaced by 1, and elements whose normalised squared norm is
≤ 1e-2 (numerically zero on the points) are dropped. Because every change of basis is
orthogonal, these norms equal the ones e2cnn computes on the padded basis.

:func:`sample_pair_bases` samples all irreps pairs of a layer in one vectorised pass (the polar
coordinates and the radial profiles once, the harmonics of every pair stacked, one pass per
block shape (d_out, d_in)) into ONE buffer, of which each pair's ``values`` is a read-only
view (the plan's ``basis`` without a copy). It performs the same floating-point operations on
every element as :func:`sample_pair_basis` (the per-pair reference), so the values are
bit-identical.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import freeze
from .._memory import check_host
from ..pair_basis import PairBasis
from ..settings import BasisSettings
from .harmonics import evaluate_angular, family_rows, group_family, harmonic_axis, pair_harmonics
from .irreps import Irrep
from .settings import polar

__all__ = ["sample_pair_basis", "sample_pair_bases"]


def sample_pair_basis(in_irrep: Irrep, out_irrep: Irrep, settings: BasisSettings,
                      points: np.ndarray) -> PairBasis:
    """Sample, normalise and filter the basis of one planar irreps pair on ``points`` (P, 2)
    (the per-pair reference of :func:`sample_pair_bases`)."""
    do, di, P = out_irrep.dim, in_irrep.dim, len(points)
    F, T = settings.maximum_frequency, settings.maximum_offset
    _check_aliases(in_irrep, out_irrep, settings, P)
    h = pair_harmonics(in_irrep, out_irrep, F, T)
    mu = np.abs(h.frequency)
    _check_elements(in_irrep, out_irrep, settings, P,
                    sum(int((mu <= cut).sum()) for cut in settings.cutoff_per_ring))
    r, theta, origin = polar(points)
    ang = evaluate_angular(h, theta, origin)  # (A, o, i, P)
    blocks, rings, idx = [], [], []
    for i, (R, sig, cut) in enumerate(zip(settings.rings, settings.sigma,
                                          settings.cutoff_per_ring)):
        keep = np.flatnonzero(mu <= cut)
        if keep.size == 0:
            continue
        radial = np.exp(-((r - R) ** 2) / (2.0 * sig ** 2))
        blocks.append(ang[keep] * radial)
        rings.append(np.full(keep.size, i))
        idx.append(keep)
    if blocks:
        vals = np.concatenate(blocks)
        ring = np.concatenate(rings)
        sel = np.concatenate(idx)
    else:
        vals, ring, sel = np.zeros((0, do, di, P)), np.zeros(0, np.int64), np.zeros(0, np.int64)
    norm2 = np.einsum("noip,noip->n", vals, vals) / do
    norm2[norm2 < 1e-15] = 0.0
    scale = np.sqrt(norm2)
    scale[(scale < 1e-6) | ~np.isfinite(scale)] = 1.0
    vals = vals / scale[:, None, None, None]
    kept = np.einsum("noip,noip->n", vals, vals) / do > 1e-2
    out = PairBasis(in_irrep, out_irrep, np.ascontiguousarray(vals[kept]), ring[kept],
                    h.frequency[sel][kept], h.gamma[sel][kept], h.s[sel][kept],
                    h.offset[sel][kept], scale[kept])
    freeze(out.values, out.ring, out.frequency, out.gamma, out.s, out.offset, out.scale)
    return out




def _alias_bytes(N: int, settings: BasisSettings, dims: tuple, P: int) -> tuple[int, int]:
    """(bytes, harmonics) of a pair's harmonics before they are listed: at most 4 per alias
    offset t, each evaluated on every point (arguments, cos, sin, matrices)."""
    F, T = settings.maximum_frequency, settings.maximum_offset
    aliases = 1 if N <= 0 else 2 * F // N + 1  # alias offsets t (harmonics.alias_offsets)
    if T is not None:
        aliases = min(aliases, 2 * T + 1)
    return 4 * aliases * (4 * dims[0] * dims[1] * P * 8 + 200), 4 * aliases


def _element_bytes(n_sampled: int, dims: tuple, P: int) -> int:
    """Bytes of a pair's ``n_sampled`` ring × harmonic elements while they are sampled."""
    return 3 * n_sampled * dims[0] * dims[1] * P * 8


def _check_aliases(in_irrep: Irrep, out_irrep: Irrep, settings: BasisSettings, P: int,
                   dims: tuple | None = None) -> None:
    """Refuse a pair whose harmonics (:func:`_alias_bytes`) exceed the host limit, before
    they are listed (``dims``: (d_out, d_in) if known)."""
    nbytes, n = _alias_bytes(in_irrep.group.rotation_order, settings,
                             dims or (out_irrep.dim, in_irrep.dim), P)
    check_host(nbytes,
               lambda: f"sampling the basis of {in_irrep.name} → {out_irrep.name} (about "
                       f"{n} angular harmonics up to frequency {settings.maximum_frequency} "
                       f"on {P} points)",
               "lower frequencies_cutoff, set maximum_offset, or use a smaller kernel_size")


def _check_elements(in_irrep: Irrep, out_irrep: Irrep, settings: BasisSettings, P: int,
                    n_sampled: int, dims: tuple | None = None) -> None:
    """Refuse a pair whose ``n_sampled`` ring × harmonic elements exceed the host limit."""
    check_host(_element_bytes(n_sampled, dims or (out_irrep.dim, in_irrep.dim), P),
               lambda: f"sampling the basis of {in_irrep.name} → {out_irrep.name} "
                       f"({n_sampled} ring × harmonic elements on {P} points)",
               "use fewer rings, a lower frequencies_cutoff or a smaller kernel_size")


def _fits(nbytes: int) -> bool:
    """Whether ``nbytes`` passes :func:`~cupysteer._memory.check_host` (then so does any
    smaller request: one check stands for many)."""
    try:
        check_host(nbytes, "", "")
    except MemoryError:
        return False
    return True


#: block shapes (d_out, d_in) of planar irreps pairs, by code 2(d_out − 1) + (d_in − 1)
_SHAPES = ((1, 1), (1, 2), (2, 1), (2, 2))


class _Stack(NamedTuple):
    """The harmonics of all pairs stacked (H rows: μ, γ, s, t, and the pair of each row; per
    pair its shape code (:data:`_SHAPES`) and axis β) and the sampled elements: harmonic row
    and ring of each, grouped by shape code (``bounds``: [(code, first, end)]), then in pair,
    ring, harmonic order; ``order``: their indices in pair order; per pair, the index of its
    first element (``first``) and its number of elements (``n_all``); the distinct
    arguments (β, μ, γ) of the rows, and each row's."""

    frequency: np.ndarray
    gamma: np.ndarray
    s: np.ndarray
    offset: np.ndarray
    pair: np.ndarray
    code: np.ndarray
    axis: list
    harmonic: np.ndarray
    ring: np.ndarray
    bounds: list
    order: np.ndarray
    first: list
    n_all: list
    arguments: np.ndarray  # (U, 3): the distinct (β, μ, γ) of the rows
    argument: np.ndarray  # (H,): each row's index into ``arguments``


def _stack_harmonics(pairs: list, settings: BasisSettings, P: int,
                     exact: bool = False) -> _Stack:
    """:func:`~cupysteer.r2.harmonics.harmonic_rows` of every pair and its elements (ring-major,
    |μ| ≤ fco(R_i)), stacked, with the memory checks of :func:`sample_pair_basis`: the
    largest request of each kind is checked once; if it fails (or ``exact``), every pair is
    checked in :func:`sample_pair_basis`'s order, so the same pair raises the same error."""
    F, T = settings.maximum_frequency, settings.maximum_offset
    families: dict = {}  # id(group) → (family, axis, group)
    pre = []
    for a, b in pairs:
        G = a.group
        if b.group is not G and b.group != G:
            raise ValueError(f"out_irrep belongs to {b.group!r}, in_irrep to {G!r}")
        if id(G) not in families:
            families[id(G)] = (group_family(G), harmonic_axis(G), G)
        pre.append((a, b, families[id(G)], (b.dim, a.dim)))
    if not exact and not _fits(max([_alias_bytes(f[0][1], settings, dims, P)[0]
                                    for *_, f, dims in pre], default=0)):
        return _stack_harmonics(pairs, settings, P, True)
    cuts = list(enumerate(settings.cutoff_per_ring))
    rows: list = []
    counts, n_all = [], []
    by_code: list = [[] for _ in _SHAPES]  # per shape code: (row, ring) of its elements
    slots = []  # per pair: shape code, first element among the code's
    for a, b, (family, _, _), dims in pre:
        if exact:
            _check_aliases(a, b, settings, P, dims)
        r = family_rows(family, a, b, F, T, dims)
        h0 = len(rows)
        mus = [abs(row[0]) for row in r]
        el = [(h0 + h, i) for i, cut in cuts for h, mu in enumerate(mus) if mu <= cut]
        if exact:
            _check_elements(a, b, settings, P, len(el), dims)
        code = 2 * dims[0] + dims[1] - 3
        slots.append((code, len(by_code[code])))
        by_code[code] += el
        rows += r
        counts.append(len(r))
        n_all.append(len(el))
    if not exact and not _fits(max([_element_bytes(n, p[3], P) for n, p in zip(n_all, pre)],
                                   default=0)):
        return _stack_harmonics(pairs, settings, P, True)
    return _stacked(pairs, rows, counts, n_all, by_code, slots, [p[2][1] for p in pre])


def _stacked(pairs, rows, counts, n_all, by_code, slots, axes) -> _Stack:
    """The :class:`_Stack` of the rows and elements :func:`_stack_harmonics` listed."""
    first = np.cumsum([0] + [len(e) for e in by_code]).tolist()
    starts = [first[code] + start for code, start in slots]
    order: list = []
    for start, n in zip(starts, n_all):
        order += range(start, start + n)
    arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
    el = np.array([e for els in by_code for e in els], np.int64).reshape(-1, 2).T.copy()
    trig: dict = {}  # (β, μ, γ) → index: harmonics with equal arguments share cos and sin
    row_axes = [ax for ax, n in zip(axes, counts) for _ in range(n)]
    same = [trig.setdefault((ax, row[0], row[1]), len(trig)) for ax, row in zip(row_axes, rows)]
    return _Stack(arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2].astype(np.int64),
                  arr[:, 3].astype(np.int64), np.repeat(np.arange(len(pairs)), counts),
                  np.array([c for c, _ in slots], np.int64), axes, el[0], el[1],
                  [(c, e0, e1) for c, (e0, e1) in enumerate(zip(first, first[1:])) if e1 > e0],
                  np.array(order, np.int64), starts, n_all,
                  np.array(list(trig), np.float64).reshape(-1, 3), np.array(same, np.int64))


def _angles(st: _Stack, theta: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """θ' = θ − β (θ' = 0 at the origin) of every distinct argument: (1, P) when all share
    one axis β, else (U, P) (as :func:`~cupysteer.r2.harmonics.evaluate_angular`)."""
    theta = np.where(origin, 0.0, theta)
    axes = sorted(set(st.axis))
    shifted = [np.where(origin, theta, theta - a) if a else theta for a in axes]
    if len(shifted) == 1:
        return shifted[0][None, :]
    return np.stack(shifted)[np.searchsorted(axes, st.arguments[:, 0])]


def _matrices(st: _Stack, theta: np.ndarray, origin: np.ndarray) -> np.ndarray:
    r"""(H, 2, 2, P): every harmonic's angular matrix in the top-left d_out × d_in corner —
    [[c, −σs], [s, σc]] (2×2), [[c, s]] (1×2), [[c], [s]] (2×1), [[c]] (1×1), with
    c = cos(μθ' + γ), s = sin(μθ' + γ), both 0 at the origin unless μ = 0; elementwise
    the operations of :func:`~cupysteer.r2.harmonics.evaluate_angular` (σ = ±1: exact),
    cos and sin evaluated once per distinct (β, μ, γ)."""
    mu = st.arguments[:, 1:2]
    arg = mu * _angles(st, theta, origin) + st.arguments[:, 2:3]
    keep = ~(origin[None, :] & (mu != 0))
    M = np.empty((len(st.argument), 2, 2, len(theta)))
    M[:, 0, 0] = (np.cos(arg) * keep).take(st.argument, axis=0)
    M[:, 1, 0] = (np.sin(arg) * keep).take(st.argument, axis=0)
    sigma = np.where(st.s == 1, -1.0, 1.0)
    two = (st.code == 3)[st.pair]
    np.multiply(np.where(two, -sigma, 1.0)[:, None], M[:, 1, 0], out=M[:, 0, 1])
    np.multiply(sigma[:, None], M[:, 0, 0], out=M[:, 1, 1])
    return M


def _radial(r: np.ndarray, settings: BasisSettings) -> np.ndarray:
    r"""The rings' Gaussian profiles exp(−(r − R_i)² / (2σ_i²)), (S, P)."""
    return np.array([np.exp(-((r - R) ** 2) / (2.0 * sig ** 2))
                     for R, sig in zip(settings.rings, settings.sigma)]).reshape(-1, len(r))


def _scales(norm2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""(scale n_b, kept mask) from n_b² = Σ ‖·‖² / d_out: n_b² < 1e-15 → 0, n_b < 1e-6 or
    NaN → 1; kept when the normalised element's n² exceeds 1e-2."""
    norm2[norm2 < 1e-15] = 0.0
    scale = np.sqrt(norm2)
    scale[(scale < 1e-6) | ~np.isfinite(scale)] = 1.0
    # the normalised n² is norm2 / n_b²: ≈ 1 where n_b = √norm2, ≤ 1e-12 where n_b was set to 1
    return scale, norm2 / scale ** 2 > 1e-2


def sample_pair_bases(pairs, settings: BasisSettings, points: np.ndarray) -> list:
    """:func:`sample_pair_basis` of several (in_irrep, out_irrep) pairs in one vectorised pass;
    their values are consecutive read-only views of ONE buffer, in the order given (so a
    layer's plan uses that buffer as its ``basis`` without a copy). Bit-identical to sampling
    each pair with :func:`sample_pair_basis`: the same operations on every element, and each
    element's norm is the same ``einsum`` over its own contiguous (d_out, d_in, P) values."""
    pairs = list(pairs)
    if not pairs:
        return []
    st = _stack_harmonics(pairs, settings, len(points))
    r, theta, origin = polar(points)
    vals, norm2 = _sample(st, _matrices(st, theta, origin), _radial(r, settings))
    scale, kept = _scales(norm2)
    for c, e0, e1 in st.bounds:
        vals[c] /= scale[e0:e1, None, None, None]
    return _assemble(pairs, st, st.order[kept.take(st.order)], scale, vals, kept, len(points))


def _sample(st: _Stack, M: np.ndarray, radial: np.ndarray) -> tuple[dict, np.ndarray]:
    r"""The elements sampled: angular matrix × radial profile, per shape code as
    (n, d_out, d_in, P) views of 1-D buffers; and their n_b² = Σ ‖·‖² / d_out."""
    vals, norm2 = {}, np.empty(len(st.harmonic))
    P = M.shape[3]
    for c, e0, e1 in st.bounds:
        do, di = _SHAPES[c]
        v = np.empty((e1 - e0) * do * di * P).reshape(e1 - e0, do, di, P)
        np.multiply(M[:, :do, :di].take(st.harmonic[e0:e1], axis=0),
                    radial.take(st.ring[e0:e1], axis=0)[:, None, None], out=v)
        norm2[e0:e1] = np.einsum("noip,noip->n", v, v) / do
        vals[c] = v
    return vals, norm2


def _fill(st: _Stack, counts: list, vals: dict, kept: np.ndarray, size: int) -> np.ndarray:
    """The 1-D buffer of every pair's kept values, in pair order (``vals``: per shape code, its
    elements' values; ``counts``: each pair's kept elements)."""
    if len(vals) == 1 and sum(counts) == len(kept):  # one shape, nothing dropped
        (v,) = vals.values()
        return v.base
    first = {c: e0 for c, e0, _ in st.bounds}
    parts = []
    for c, start, n, k in zip(st.code.tolist(), st.first, st.n_all, counts):
        if k:
            v, e = vals[c], start - first[c]
            parts.append((v[e:e + n] if k == n else v[e:e + n][kept[start:start + n]])
                         .reshape(-1))
    arena = np.empty(size)
    if parts:
        np.concatenate(parts, out=arena)
    return arena


def _assemble(pairs: list, st: _Stack, k: np.ndarray, scale: np.ndarray, vals: dict,
              kept: np.ndarray, P: int) -> list:
    """The PairBasis of every pair from its kept elements (``k``: their indices, in pair
    order), their ``scale`` and the sampled values per shape code (see :func:`_fill`)."""
    counts = st.n_all
    if len(k) < len(kept):
        done = np.cumsum(kept.take(st.order)).tolist()
        ends = np.cumsum(st.n_all).tolist()
        counts = [(done[e - 1] if e else 0) - (done[e - n - 1] if e - n else 0)
                  for e, n in zip(ends, st.n_all)]
    codes = st.code.tolist()
    shapes = [_SHAPES[c] for c in codes]
    sizes = [n * do * di * P for n, (do, di) in zip(counts, shapes)]
    arena = _fill(st, counts, vals, kept, sum(sizes))
    hk = st.harmonic.take(k)
    attrs = (st.ring.take(k), st.frequency.take(hk), st.gamma.take(hk), st.s.take(hk),
             st.offset.take(hk), scale.take(k))
    freeze(arena, *attrs)
    ring, frequency, gamma, s, offset, scale = attrs
    out, o, e = [], 0, 0
    for (a, b), n, size, (do, di) in zip(pairs, counts, sizes, shapes):
        f = e + n
        out.append(PairBasis(a, b, arena[o:o + size].reshape(n, do, di, P), ring[e:f],
                             frequency[e:f], gamma[e:f], s[e:f], offset[e:f], scale[e:f]))
        o, e = o + size, f
    return out
