r"""Steerable point convolutions: the basis evaluated per edge, contracted at irreps level.

For a graph with node features f (n, C_in), positions x (n, d) and edges e = (j → i)
(``edge_index[0]`` the source j, ``edge_index[1]`` the target i, as torch_geometric), the
convolution is

.. math::  y_i = \operatorname{agg}_{e=(j\to i)} K(x_j - x_i)\, f_j \;(+\ b),
           \qquad K(\delta) = Q_\text{out}\, \tilde K(\delta)\, Q_\text{in}^T,

with K(g·δ) = ρ_out(g) K(δ) ρ_in(g)ᵀ. :class:`PointConvBasis` never forms the E×C_out×C_in
filters (unless :meth:`~PointConvBasis.filters` is asked): g = Q_inᵀ f per node, per edge the
irreps blocks K̃_b(δ_e) = Σ_k w_k B_{b,k}(δ_e) act on g_j (the contract of
:mod:`cupysteer.backends.point_numpy`), then Q_out per node, the bias on trivial output irreps
and, for ``aggregation="mean"``, a division by the in-degree (0 messages → 0).

The weight layout is the grid layers' (:mod:`cupysteer.layout`: representation pairs sorted by
name, (out field, in field, element), elements by ``space.element_order``); the pair bases are
analytic, evaluated at any δ by the group's space (``space.point_pair_basis`` /
``space.evaluate_point_basis``: :mod:`cupysteer.r2.point`, :mod:`cupysteer.r3.point`) with
escnn's point-convolution conventions: rings ``linspace(0, width, n_rings)``, sigma 0.6 (0.4
on the last ring, 0.005 at radius 0), band-limit F(R) = 3R, element = d_out · Gaussian ·
angular part (no normalisation on sample points).
"""
from __future__ import annotations

import math
from functools import cached_property
from typing import NamedTuple

import numpy as np

from ._checks import float_array, integer, real_array
from .field_type import FieldType
from .init import he_init, he_std
from .layout import build_layout
from .settings import BasisSettings, evaluate_cutoffs

__all__ = ["PointConvBasis", "point_settings", "AGGREGATIONS"]

#: how the messages of a target are combined
AGGREGATIONS = ("sum", "mean")
#: edges per chunk when none is given (bounds the per-chunk basis and message buffers)
DEFAULT_CHUNK_EDGES = 16384


def point_settings(width=None, n_rings=None, rings=None, sigma=None,
                   frequencies_cutoff=None) -> BasisSettings:
    """escnn's ``compute_basis_params`` of ``R2PointConv`` / ``R3PointConv``: either ``rings``
    or (``width``, ``n_rings``) → rings float32 ``linspace(0, width, n_rings)``; sigma as the
    grid layers (a float is broadcast); cut-off F(R) = c·R (c = ``frequencies_cutoff``,
    default 3.0) or a callable R ↦ F(R); maximum frequency int(max F)."""
    if (rings is None) == (width is None or n_rings is None):
        raise ValueError("give either rings (a list of radii) or both width and n_rings "
                         "(escnn's point convolutions have no default support), got "
                         f"rings={rings!r}, width={width!r}, n_rings={n_rings!r}")
    if rings is None:
        w = float(real_array(width, "width", "a positive radius"))
        if not (math.isfinite(w) and w > 0):
            raise ValueError(f"width must be a positive finite radius, got {width!r}")
        n = integer(n_rings, "n_rings", 1)
        rings = np.linspace(0, w, n, dtype=np.float32).astype(np.float64)
    rings = np.atleast_1d(real_array(rings, "rings", "a list of radii >= 0"))
    if rings.ndim != 1 or not len(rings) or not np.isfinite(rings).all() or rings.min() < 0:
        raise ValueError(f"rings must be a non-empty list of finite radii >= 0, got {rings!r}")
    sig = _sigma(sigma, rings)
    fco = 3.0 if frequencies_cutoff is None else frequencies_cutoff
    if not callable(fco):
        c = float(real_array(fco, "frequencies_cutoff", "a float c >= 0 or a callable"))
        if not (math.isfinite(c) and c >= 0):
            raise ValueError(f"frequencies_cutoff must be a float c >= 0 (F(R) = c·R) or a "
                             f"callable, got {frequencies_cutoff!r}")
        fco = _Linear(c)
    cut = evaluate_cutoffs(fco, rings)
    F = int(max(cut))
    if F > 64:
        raise ValueError(f"frequencies_cutoff: maximum frequency {F} is unreasonably large "
                         f"(> 64); lower frequencies_cutoff or width")
    return BasisSettings(tuple(float(r) for r in rings), tuple(float(s) for s in sig),
                         cut, max(F, 0), None)


class _Linear(NamedTuple):
    c: float

    def __call__(self, r):
        return self.c * r


def _sigma(sigma, rings: np.ndarray) -> np.ndarray:
    if sigma is None:
        sig = np.full(len(rings), 0.6)
        sig[-1] = 0.4
        sig[rings == 0] = 0.005
        return sig
    sig = np.atleast_1d(real_array(sigma, "sigma", "a positive float or one per ring"))
    sig = np.full(len(rings), float(sig[0])) if sig.size == 1 else sig
    if sig.shape != rings.shape or not np.isfinite(sig).all() or sig.min() <= 0:
        raise ValueError(f"sigma must be a positive float or one positive width per ring "
                         f"({len(rings)} rings), got {sigma!r}")
    return sig


class _PlanView(NamedTuple):
    """What :func:`cupysteer.init.he_std` reads of a plan."""

    block_pair: np.ndarray
    pair_count: np.ndarray
    weight_index: np.ndarray


class PointConvBasis:
    """The steerable basis of a point convolution ``in_type → out_type`` (immutable, picklable,
    hashable by its definition (in_type, out_type, settings)).

    After construction: ``dim`` weights in ``weight_blocks`` (as :class:`~cupysteer.LayerBasis`),
    the ``irreps_pairs`` with their ``pair_bases`` (element descriptors), the block ``table``
    (n_blocks, 7) of :mod:`cupysteer.backends.point_numpy` and ``weight_index``: the contract's
    weight vector is ``weights[weight_index]``; ``n_entries`` basis columns per edge.
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, *, width=None, n_rings=None,
                 rings=None, sigma=None, frequencies_cutoff=None):
        for name, t in (("in_type", in_type), ("out_type", out_type)):
            if not isinstance(t, FieldType):
                raise ValueError(f"{name} must be a FieldType, got {type(t).__name__}")
        if in_type.group != out_type.group:
            raise ValueError(f"in_type and out_type must share one group; got "
                             f"{in_type.group!r} and {out_type.group!r}")
        space = in_type.group.space
        settings = space.point_settings(width, n_rings, rings, sigma, frequencies_cutoff)
        d = self.__dict__
        d["in_type"], d["out_type"], d["settings"] = in_type, out_type, settings
        cache: dict = {}

        def pair_basis(a, b):
            key = (a, b)
            if key not in cache:
                cache[key] = space.point_pair_basis(a, b, settings)
            return cache[key]
        hint = (f"for rings {settings.rings} and cut-offs {settings.cutoff_per_ring}: "
                f"increase frequencies_cutoff or width, or add rings")
        layout = build_layout(in_type, out_type, pair_basis, hint)
        d["dim"], d["irreps_pairs"] = layout.dim, layout.irreps_pairs
        d["weight_blocks"], d["blocks"] = layout.weight_blocks, layout.blocks
        d["pair_bases"] = [pair_basis(a, b) for a, b in layout.irreps_pairs]
        d["weight_index"] = layout.weight_index
        self._tables()

    def _tables(self):
        blk, d = self.blocks, self.__dict__
        counts = np.array([len(pb) for pb in self.pair_bases], np.int64)
        dims = np.array([pb.shape for pb in self.pair_bases], np.int64).reshape(-1, 2)
        sizes = counts * dims.prod(1)
        pair_offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        first_o = _irrep_channels(self.out_type)
        first_i = _irrep_channels(self.in_type)
        n = counts[blk.pair]
        table = np.stack([first_o[blk.out_field, blk.out_irrep],
                          first_i[blk.in_field, blk.in_irrep],
                          dims[blk.pair, 0], dims[blk.pair, 1], n,
                          np.concatenate([[0], np.cumsum(n)[:-1]]),
                          pair_offset[blk.pair]], axis=1).astype(np.int64)
        d["table"], d["n_entries"] = table, int(sizes.sum())
        d["pair_offset"], d["pair_count"] = pair_offset, counts
        d["plan"] = _PlanView(blk.pair, counts, self.weight_index)
        for a in (table, pair_offset, counts, self.weight_index):
            a.setflags(write=False)

    # ---- identity ------------------------------------------------------------------------
    @property
    def definition(self) -> tuple:
        return (self.in_type, self.out_type, self.settings)

    def __eq__(self, other):
        if not isinstance(other, PointConvBasis):
            return NotImplemented
        return self is other or self.definition == other.definition

    def __hash__(self):
        return hash(self.definition)

    def __setattr__(self, key, value):
        raise AttributeError("PointConvBasis is immutable; build a new one")

    def __repr__(self):
        return (f"PointConvBasis({self.in_type} → {self.out_type}, dim={self.dim}, "
                f"rings={self.settings.rings})")

    # ---- per-node changes of basis and bias ---------------------------------------------
    @cached_property
    def bias_expansion(self) -> np.ndarray:
        """(C_out, T): the columns of Q_out at the trivial output irreps (escnn's order)."""
        cols = [int(o) + int(off) for o, r in zip(self.out_type.field_offsets,
                                                  self.out_type.representations)
                for p, off in zip(r.irreps, r.irrep_offsets) if p.is_trivial]
        B = np.ascontiguousarray(self.out_type.change_of_basis[:, cols])
        B.setflags(write=False)
        return B

    @property
    def n_bias(self) -> int:
        return self.bias_expansion.shape[1]

    def he_std(self) -> np.ndarray:
        """Generalised He standard deviation of every weight (:mod:`cupysteer.init`)."""
        return he_std(self)

    def init_weights(self, rng: np.random.Generator | None = None, dtype=np.float32):
        return he_init(self, rng, dtype)

    # ---- the basis at relative positions -------------------------------------------------
    def check_offsets(self, delta) -> np.ndarray:
        dim = self.in_type.group.space.dimension
        x = real_array(delta, "delta", f"an (E, {dim}) array of relative positions")
        if x.ndim != 2 or x.shape[1] != dim or not np.isfinite(x).all():
            raise ValueError(f"delta (x_source − x_target per edge) must be a finite "
                             f"(E, {dim}) array, got shape {x.shape}")
        return x

    def evaluate_basis(self, delta, dtype=np.float64) -> np.ndarray:
        """(E, n_entries): every pair basis at the relative positions ``delta`` (E, d), in the
        contract's layout (pair τ at ``pair_offset[τ]``, entries (k, r, c) row-major)."""
        x = self.check_offsets(delta)
        space = self.in_type.group.space
        out = np.empty((len(x), self.n_entries), dtype)
        for pb, off in zip(self.pair_bases, self.pair_offset.tolist()):
            v = space.evaluate_point_basis(pb, self.settings, x)  # (E, n, do, di)
            size = len(pb) * pb.shape[0] * pb.shape[1]
            out[:, off:off + size] = v.reshape(len(x), size)
        return out

    def contract_weights(self, weights, batch: bool = False) -> np.ndarray:
        """The contract's weight vector ``weights[weight_index]`` (``batch``: (m, dim) too)."""
        w = float_array(weights, "weights")
        if batch and w.ndim == 1:
            w = w[None]
        if w.shape[-1:] != (self.dim,) or w.ndim != 1 + batch:
            raise ValueError(f"weights must have shape ({self.dim},), got {w.shape}")
        return w[..., self.weight_index]

    def filters(self, weights, delta) -> np.ndarray:
        """The full filters K(δ_e) (E, C_out, C_in) = Q_out K̃(δ_e) Q_inᵀ — or (m, E, C_out,
        C_in) for weights (m, dim) — for tests and export: this is the E×C_out×C_in tensor the
        convolution itself never forms."""
        w = self.contract_weights(weights, batch=True)
        B = self.evaluate_basis(delta, w.dtype)
        K = np.zeros((len(w), len(B), self.out_type.size, self.in_type.size), w.dtype)
        for o, i, do, di, n, wo, bo in self.table.tolist():
            blk = B[:, bo:bo + n * do * di].reshape(len(B), n, do, di)
            K[:, :, o:o + do, i:i + di] += np.einsum("ekrc,mk->merc", blk, w[:, wo:wo + n])
        Qo, Qi = (t.change_of_basis.astype(w.dtype) for t in (self.out_type, self.in_type))
        K = Qo @ K @ Qi.T
        return K if np.ndim(weights) == 2 else K[0]

    def refit(self, delta, filters, rtol: float = 1e-4) -> tuple[np.ndarray, float]:
        r"""The weights w whose filters at the offsets ``delta`` (P, d) are ``filters`` (P, C_out,
        C_in) — e.g. an escnn ``R2PointConv``/``R3PointConv``'s own filters there — and the
        relative residual ‖K_w − K‖ / ‖K‖.

        In irreps coordinates K̃ = Q_out⁻¹ K Q_in⁻ᵀ every irreps block β owns its entries:
        K̃_β(δ_p) = Σ_k w_{β,k} B_τ,k(δ_p) with τ the block's irreps pair, so each pair is one
        least-squares problem (P·d_o·d_i × n_τ) for all its blocks at once. Exact (to float
        round-off) when K lies in the span and every pair's sampled basis has full rank on
        ``delta`` (else a ValueError naming ``delta``); a residual above ``rtol`` raises a
        ValueError naming ``filters``.
        """
        x = self.check_offsets(delta)
        shape = (len(x), self.out_type.size, self.in_type.size)
        K = real_array(filters, "filters", f"a {shape} array of filters K(delta_p)")
        if K.shape != shape or not np.isfinite(K).all():
            raise ValueError(f"filters must be a finite (P, C_out, C_in) = {shape} array (one "
                             f"filter per row of delta), got shape {K.shape}")
        K = K.astype(np.float64)
        Qo, Qi = (t.change_of_basis.astype(np.float64) for t in (self.out_type, self.in_type))
        Kt = np.linalg.solve(Qo, np.linalg.solve(Qi, K.transpose(0, 2, 1)).transpose(0, 2, 1))
        B = self.evaluate_basis(x)
        w = np.zeros(self.dim)
        for t, (n, off) in enumerate(zip(self.pair_count.tolist(), self.pair_offset.tolist())):
            rows = self.table[self.plan.block_pair == t]
            if n == 0 or len(rows) == 0:
                continue
            do, di = int(rows[0, 2]), int(rows[0, 3])
            A = B[:, off:off + n * do * di].reshape(len(x), n, do, di)
            A = A.transpose(0, 2, 3, 1).reshape(-1, n)  # (P·do·di, n)
            Y = np.stack([Kt[:, o:o + do, i:i + di].ravel() for o, i in rows[:, :2].tolist()], 1)
            W, _, rank, _ = np.linalg.lstsq(A, Y, rcond=None)
            if rank < n:
                raise ValueError(f"delta: irreps pair {self.irreps_pairs[t]} has {n} basis "
                                 f"elements but rank {rank} on these {len(x)} offsets; the "
                                 f"weights are not determined — add offsets at more radii "
                                 f"and directions")
            w[self.weight_index[rows[:, 5, None] + np.arange(n)]] = W.T
        norm = float(np.linalg.norm(K))
        residual = float(np.linalg.norm(self.filters(w, x) - K)) / norm if norm else 0.0
        if not residual <= rtol:
            raise ValueError(f"filters are not in the span of {self!r} at these offsets "
                             f"(relative residual {residual:.3g} > {rtol:g}): build the basis "
                             f"with the source layer's field types, width, n_rings/rings, "
                             f"sigma and frequencies_cutoff")
        return w, residual

    # ---- the NumPy reference ---------------------------------------------------------------
    def check_graph(self, features, positions, edge_index):
        """(features (n, C_in) float, positions (n, d) float64, src, dst int64)."""
        f = float_array(features, "features")
        if f.ndim != 2 or f.shape[1] != self.in_type.size:
            raise ValueError(f"features must have shape (n, {self.in_type.size}) (one row per "
                             f"node, C_in channels), got {f.shape}")
        dim = self.in_type.group.space.dimension
        x = real_array(positions, "positions", f"an (n, {dim}) array")
        if x.shape != (len(f), dim) or not np.isfinite(x).all():
            raise ValueError(f"positions must be a finite ({len(f)}, {dim}) array (one "
                             f"point per node of features), got shape {x.shape}")
        ei = np.asarray(edge_index)
        if ei.ndim != 2 or ei.shape[0] != 2 or ei.dtype.kind not in "iu":
            raise ValueError(f"edge_index must be an integer array (2, E) (row 0 sources, "
                             f"row 1 targets), got dtype {ei.dtype} shape {ei.shape}")
        if ei.size and (ei.min() < 0 or ei.max() >= len(f)):
            raise ValueError(f"edge_index: node indices must lie in [0, {len(f)}), got "
                             f"[{ei.min()}, {ei.max()}]")
        return f, x, ei[0].astype(np.int64), ei[1].astype(np.int64)

    def apply(self, weights, features, positions, edge_index, bias=None,
              aggregation: str = "mean", chunk_edges: int | None = None) -> np.ndarray:
        """The convolution in NumPy (the reference of every front end), chunked over edges:
        per chunk the basis (chunk, n_entries) and messages (chunk, C_out) only."""
        from .backends import point_numpy
        f, x, src, dst = self.check_graph(features, positions, edge_index)
        agg = _aggregation(aggregation)
        chunk = _chunk(chunk_edges)
        w = self.contract_weights(weights).astype(f.dtype)
        g = f @ self.in_type.change_of_basis.astype(f.dtype)
        y = np.zeros((len(f), self.out_type.size), f.dtype)
        for a in range(0, len(src), chunk):
            s, t = src[a:a + chunk], dst[a:a + chunk]
            B = self.evaluate_basis(x[s] - x[t], f.dtype)
            part = point_numpy.contract(self.table, B, w, g, s, t, len(f))
            y[:, :part.shape[1]] += part  # the table may not reach the last channels
        out = y @ self.out_type.change_of_basis.T.astype(f.dtype)
        if agg == "mean":
            out /= np.maximum(np.bincount(dst, minlength=len(f)), 1)[:, None]
        if bias is not None:
            b = float_array(bias, "bias")
            if b.shape != (self.n_bias,):
                raise ValueError(f"bias must have shape ({self.n_bias},) (one per trivial "
                                 f"output irrep), got {b.shape}")
            out += (self.bias_expansion @ b).astype(f.dtype)
        return out


def _irrep_channels(ftype: FieldType) -> np.ndarray:
    """(fields, max irreps) first channel of every irrep of every field."""
    n = max(len(r.irreps) for r in ftype.representations)
    out = np.zeros((len(ftype), n), np.int64)
    for f, (o, r) in enumerate(zip(ftype.field_offsets.tolist(), ftype.representations)):
        out[f, :len(r.irreps)] = o + np.asarray(r.irrep_offsets, np.int64)
    return out


def _aggregation(aggregation) -> str:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    return aggregation


def _chunk(chunk_edges) -> int:
    if chunk_edges is None:
        return DEFAULT_CHUNK_EDGES
    return integer(chunk_edges, "chunk_edges", 1)
