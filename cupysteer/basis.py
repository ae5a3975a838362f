r"""The kernel basis of a convolution layer between two field types, at irreps level.

Every filter satisfies :math:`K(g\cdot p) = \rho_\text{out}(g)\, K(p)\, \rho_\text{in}(g)^{-1}`.
Per irreps pair the sampled harmonic basis is stored once (:class:`~cupysteer.pair_basis.PairBasis`);
per field its orthogonal Q. The padded (dim, C_out, C_in, P) basis is never stored
(:meth:`LayerBasis.dense` builds it on request, for tests and debugging).

Weight order (e2cnn R2Conv's): fields are grouped by representation name; one weight slice
per (in name, out name) pair with a non-empty basis, sorted as strings; inside a slice
(out field, in field, element), elements ring-major (R³: harmonic-degree-major, shell
fastest, as escnn), then input irrep, output irrep,
then the pair's own order.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from ._memory import check_host
from .field_type import FieldType
from .pair_basis import PairBasis, sample_pair_bases, sample_pair_basis
from .plan import ExpansionPlan
from .settings import BasisSettings, grid_points, resolve_settings
from .r3.settings import grid_points3, resolve_settings3

__all__ = ["LayerBasis", "EmptyBasisError"]


def _is_cupy(x) -> bool:
    return type(x).__module__.split(".")[0] == "cupy"


def _as_float_array(x, name):
    if type(x).__module__.split(".")[0] not in ("numpy", "builtins"):
        raise TypeError(f"{name}: expected a NumPy array, got {type(x).__module__}."
                        f"{type(x).__name__}; CuPy/torch/JAX inputs go through their adapters")
    a = np.asarray(x)
    if a.dtype.kind in "iub":
        if a.dtype.kind in "iu" and a.size and max(int(a.max()), -int(a.min())) > 2 ** 53:
            raise ValueError(f"{name}: integer values beyond 2**53 are not exactly "
                             f"representable in float64; convert them yourself "
                             f"(.astype(np.float64)) if rounding is intended")
        a = a.astype(np.float64)
    if a.dtype.kind == "f" and not a.dtype.isnative and a.dtype.itemsize in (4, 8):
        a = a.astype(a.dtype.newbyteorder("="))  # same values, native byte order
    if a.dtype.kind == "c":
        raise ValueError(f"{name} must be real (float32 or float64), got {a.dtype}; the "
                         f"filters are real-valued: pass {name}.real if its imaginary part is 0")
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {a.dtype}; cast it with "
                         f".astype(np.float32)")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinity (at flat index "
                         f"{int(np.flatnonzero(~np.isfinite(a.ravel()))[0])}); the NumPy "
                         f"backend rejects non-finite input, fix the producer of {name}")
    return a


def _check_cupy_dtype(x, name):
    """The CUDA kernels take float32/float64 only (no silent cast on the device)."""
    if np.dtype(x.dtype) not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64 for the CUDA kernels, got "
                         f"{np.dtype(x.dtype)}; cast it with .astype(cupy.float32)")


_SHARED_STATE = ("dim", "irreps_pairs", "weight_blocks", "_block", "plan", "_pairs")


def _irrep_offset_table(ftype: FieldType) -> np.ndarray:
    """(fields, max irreps per field) table of irrep offsets inside each field."""
    reps = ftype.representations
    table = np.zeros((len(reps), max(len(r.irreps) for r in reps)), np.int64)
    for f, r in enumerate(reps):
        table[f, :len(r.irreps)] = r.irrep_offsets
    return table


def _join(arrays) -> np.ndarray:
    """The arrays' values concatenated (raveled); without a copy when they are adjacent
    C-contiguous float64 views of one 1-D buffer (as :func:`sample_pair_bases` makes them)."""
    parts = [a for a in arrays if a.size]
    base = parts[0].base if parts else None
    if (base is not None and isinstance(base, np.ndarray) and base.ndim == 1
            and base.dtype == np.float64 and base.flags.c_contiguous
            and all(a.base is base and a.dtype == np.float64 and a.flags.c_contiguous
                    for a in parts)):
        start = (parts[0].ctypes.data - base.ctypes.data) // 8
        pos = start
        for a in parts:
            if (a.ctypes.data - base.ctypes.data) // 8 != pos:
                break
            pos += a.size
        else:
            return base[start:pos]
    return np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0)


class EmptyBasisError(ValueError):
    """The layer has no basis element at all."""


def _group_fields(ftype: FieldType, side: str) -> dict:
    """name → list of field indices (fibre order); checks that a name means one rep."""
    groups, rep_of = {}, {}
    for i, r in enumerate(ftype.representations):
        if r.name in rep_of and rep_of[r.name] != r:
            raise ValueError(f"{side}: two different representations share the name "
                             f"{r.name!r}; give them distinct names")
        rep_of[r.name] = r
        groups.setdefault(r.name, []).append(i)
    return groups


class LayerBasis:
    """Steerable basis of the filters from ``in_type`` to ``out_type``.

    Parameters follow e2cnn's ``R2Conv`` (same defaults, see :mod:`cupysteer.settings`), or
    for groups acting on R³ escnn's ``R3Conv`` (:mod:`cupysteer.r3.settings`);
    ``points`` (n, 2) — (n, 3) for groups on R³ — samples at arbitrary coordinates instead of
    the k×k (k×k×k) grid.
    ``cache``: a :class:`~cupysteer.cache.BasisCache`, ``None`` for the process-wide
    :func:`~cupysteer.cache.default_cache`, or ``False`` to build everything afresh.
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, kernel_size: int,
                 dilation: int = 1, rings=None, sigma=None, frequencies_cutoff=None,
                 maximum_offset=None, points=None, cache=None):
        for name, t in (("in_type", in_type), ("out_type", out_type)):
            if not isinstance(t, FieldType):
                raise ValueError(f"{name} must be a FieldType, got {type(t).__name__}")
        if in_type.group != out_type.group:
            raise ValueError(f"in_type and out_type must share one group; got "
                             f"{in_type.group!r} and {out_type.group!r}")
        self.in_type, self.out_type = in_type, out_type
        nd = in_type.group.space_dimension
        if points is None:
            self.points = (grid_points if nd == 2 else grid_points3)(kernel_size, dilation)
            self.filter_shape = (int(kernel_size),) * nd
        else:
            pts = np.asarray(points, np.float64)
            if pts.ndim != 2 or pts.shape[1] != nd or len(pts) == 0 or not np.isfinite(pts).all():
                xyz = "(x, y)" if nd == 2 else "(x, y, z)"
                raise ValueError(f"points must be a finite (n, {nd}) array of {xyz} "
                                 f"coordinates, got shape {pts.shape}")
            self.points = pts
            self.filter_shape = (len(pts),)
        self.points.setflags(write=False)
        given = None if points is None else self.points
        if nd == 2:
            self.settings: BasisSettings = resolve_settings(
                kernel_size, dilation, rings, sigma, frequencies_cutoff, maximum_offset, given)
        else:
            if maximum_offset is not None:
                raise ValueError("maximum_offset is a planar (2D) setting; leave it None for "
                                 "groups acting on R³")
            self.settings = resolve_settings3(kernel_size, dilation, rings, sigma,
                                              frequencies_cutoff, given)
        self._pairs: dict = {}
        self._expanders: dict = {}
        if cache is None:
            from .cache import default_cache
            cache = default_cache()
        self._cache = cache or None
        key = None
        if self._cache is not None:
            from .cache import _points_digest
            key = (in_type, out_type, self.settings, self.filter_shape,
                   _points_digest(self.points))
            state = self._cache.layer_state(key)
            if state is not None:
                self.__dict__.update(state)
                return
        self._build()
        if key is not None:
            self._cache.store_layer_state(key, {k: getattr(self, k) for k in _SHARED_STATE})

    # ---- construction -----------------------------------------------------------------
    def pair_basis(self, in_irrep, out_irrep) -> PairBasis:
        key = (in_irrep, out_irrep)
        if key not in self._pairs:
            if self._cache is not None:
                self._pairs[key] = self._cache.pair_basis(in_irrep, out_irrep, self.settings,
                                                          self.points)
            else:
                self._pairs[key] = sample_pair_basis(in_irrep, out_irrep, self.settings,
                                                     self.points)
        return self._pairs[key]

    def _rep_pair_order(self, rin, rout):
        """Per (ii, oo) with a non-empty pair basis: positions of its elements in the
        representation pair's element order and the total count. Planar: (ring, ii, oo,
        element) as e2cnn; R³: (harmonic degree, ii, oo, element) as escnn — the pair's own
        order already has the degree slowest and the shell fastest."""
        keys, rings = [], []
        planar = self.in_type.group.space_dimension == 2
        for ii, pin in enumerate(rin.irreps):
            for oo, pout in enumerate(rout.irreps):
                pb = self.pair_basis(pin, pout)
                if len(pb):
                    keys.append((ii, oo))
                    rings.append(pb.ring if planar else pb.frequency)
        if not keys:
            return {}, 0
        ring = np.concatenate(rings)
        which = np.concatenate([np.full(len(r), k) for k, r in enumerate(rings)])
        within = np.concatenate([np.arange(len(r)) for r in rings])
        order = np.lexsort((within, which, ring))  # ring-major; (ii, oo) order is `which`
        pos = np.empty(len(ring), np.int64)
        pos[order] = np.arange(len(ring))
        starts = np.cumsum([0] + [len(r) for r in rings])
        return {k: pos[starts[i]:starts[i + 1]] for i, k in enumerate(keys)}, len(ring)

    def _prefetch_pairs(self, gin, gout):
        """R³: sample every irreps pair of the layer at once, in first-use order, so that their
        values are consecutive views of one buffer that becomes the plan's ``basis``."""
        tin, tout = self.in_type, self.out_type
        pairs = {}
        for in_name, out_name in sorted((a, b) for a in gin for b in gout):
            for pin in tin.representations[gin[in_name][0]].irreps:
                for pout in tout.representations[gout[out_name][0]].irreps:
                    if (pin, pout) not in self._pairs:
                        pairs.setdefault((pin, pout), None)
        pairs = list(pairs)
        if self._cache is not None:
            got = self._cache.pair_bases(pairs, self.settings, self.points)
        else:
            got = sample_pair_bases(pairs, self.settings, self.points)
        self._pairs.update(zip(pairs, got))

    def _build(self):
        tin, tout = self.in_type, self.out_type
        gin, gout = _group_fields(tin, "in_type"), _group_fields(tout, "out_type")
        if tin.group.space_dimension == 3:
            self._prefetch_pairs(gin, gout)
        taus: dict = {}  # irreps pairs τ in first-use order
        segs = []  # (out fields, in fields, oo, ii, tau, weights (n_fields, n_tau))
        self.weight_blocks = []  # e2cnn layout: (in_name, out_name, lo, hi, n_out, n_in, d)
        lo = 0
        for in_name, out_name in sorted((a, b) for a in gin for b in gout):
            rin = tin.representations[gin[in_name][0]]
            rout = tout.representations[gout[out_name][0]]
            pos, d = self._rep_pair_order(rin, rout)
            if d == 0:
                continue
            fo, fi = np.asarray(gout[out_name]), np.asarray(gin[in_name])
            nf = len(fo) * len(fi)
            self.weight_blocks.append((in_name, out_name, lo, lo + d * nf, len(fo), len(fi), d))
            for (ii, oo), p in pos.items():
                tau = taus.setdefault((rin.irreps[ii], rout.irreps[oo]), len(taus))
                segs.append((np.repeat(fo, len(fi)), np.tile(fi, len(fo)), oo, ii, tau,
                             lo + np.arange(nf)[:, None] * d + p[None, :]))
            lo += d * nf
        if lo == 0:
            raise EmptyBasisError(
                f"the basis from {tin} to {tout} is empty for kernel_size {self.filter_shape}, "
                f"rings {self.settings.rings} and cut-offs {self.settings.cutoff_per_ring}: "
                f"increase frequencies_cutoff (e.g. 3.0) or kernel_size, or add rings")
        self.dim = lo
        self.irreps_pairs = list(taus)
        cat = np.concatenate
        bP, bQ = cat([s[0] for s in segs]), cat([s[1] for s in segs])
        rep = [len(s[0]) for s in segs]
        boo, bii, btau = (np.repeat([s[k] for s in segs], rep) for k in (2, 3, 4))
        rows = cat([s[5].ravel() for s in segs])
        n = cat([np.full(len(s[0]), s[5].shape[1]) for s in segs])
        start = cat([[0], np.cumsum(n)[:-1]])
        order = np.lexsort((bQ, bP))  # blocks of a field pair contiguous, stable
        n_sorted = n[order]
        first = np.repeat(start[order] - cat([[0], np.cumsum(n_sorted)[:-1]]), n_sorted)
        self._block = dict(out_field=bP[order], in_field=bQ[order], oo=boo[order],
                           ii=bii[order], tau=btau[order])
        self.plan = self._make_plan(rows[first + np.arange(n_sorted.sum())])

    def _make_plan(self, weight_index) -> ExpansionPlan:
        tin, tout = self.in_type, self.out_type
        blk = self._block
        P = len(self.points)
        pbs = [self.pair_basis(a, b) for a, b in self.irreps_pairs]
        counts = np.array([len(pb) for pb in pbs], np.int64)
        shapes = np.array([pb.shape for pb in pbs], np.int64).reshape(-1, 2)
        sizes = counts * shapes.prod(1) * P
        reps = list(dict.fromkeys(tout.representations + tin.representations))
        rep_id = {r: i for i, r in enumerate(reps)}
        rep_size = np.array([r.size for r in reps])
        offs_out, offs_in = tout.field_offsets, tin.field_offsets
        irr_out = _irrep_offset_table(tout)
        irr_in = _irrep_offset_table(tin)
        brow = offs_out[blk["out_field"]] + irr_out[blk["out_field"], blk["oo"]]
        bcol = offs_in[blk["in_field"]] + irr_in[blk["in_field"], blk["ii"]]
        bpair = blk["tau"]
        bweight = np.concatenate([[0], np.cumsum(counts[bpair])[:-1]]).astype(np.int64)
        nfi = len(tin)
        fp = blk["out_field"] * nfi + blk["in_field"]
        ptr = np.searchsorted(fp, np.arange(len(tout) * nfi + 1))
        trivial = [(f, offs_out[f] + o) for f, r in enumerate(tout.representations)
                   for psi, o in zip(r.irreps, r.irrep_offsets) if psi.is_trivial]
        return ExpansionPlan(
            out_size=tout.size, in_size=tin.size, num_points=P, dim=self.dim,
            filter_shape=self.filter_shape,
            basis=_join([pb.values for pb in pbs]),
            pair_shape=shapes, pair_count=counts,
            pair_offset=np.concatenate([[0], np.cumsum(sizes)[:-1]]),
            block_pair=bpair, block_row=brow, block_col=bcol,
            block_out_field=blk["out_field"], block_in_field=blk["in_field"],
            block_weight=bweight, weight_index=weight_index,
            fieldpair_ptr=ptr,
            out_field_offset=offs_out, out_field_size=tout.field_sizes,
            out_field_rep=[rep_id[r] for r in tout.representations],
            in_field_offset=offs_in, in_field_size=tin.field_sizes,
            in_field_rep=[rep_id[r] for r in tin.representations],
            rep_size=rep_size,
            rep_offset=np.concatenate([[0], np.cumsum(rep_size ** 2)[:-1]]),
            rep_identity=[r.is_identity_basis for r in reps],
            change_of_basis=np.concatenate([r.change_of_basis.ravel() for r in reps]),
            bias_field=[t[0] for t in trivial], bias_row=[t[1] for t in trivial],
        )

    # ---- expansion ----------------------------------------------------------------------
    def _expander(self, dtype):
        from .backends.numpy_backend import NumpyExpander
        dtype = np.dtype(dtype)
        if dtype not in self._expanders:
            self._expanders[dtype] = NumpyExpander(self.plan, dtype)
        return self._expanders[dtype]

    def _cupy_expander(self, dtype, method):
        from .backends.cupy_backend import CupyExpander
        key = ("cupy", np.dtype(dtype), method)
        if key not in self._expanders:
            padded = [self.padded_blocks(dtype)] if method == "padded" else None
            self._expanders[key] = CupyExpander(self.plan, dtype, method, padded)
        return self._expanders[key]

    def expand(self, weights, method: str = "fused", out=None):
        """Weights (dim,) or (batch, dim) → filter (C_out, C_in, k, k) (R³: (…, k, k, k)) or
        (batch, …),
        in the weights' dtype (float32 or float64) and array library: NumPy arrays run the
        NumPy reference, CuPy arrays the CUDA kernels (``method`` 'fused' or 'padded').
        CuPy only: ``out``, a C-contiguous CuPy array of the result's shape and dtype (for
        example memory of another framework's allocator), receives the filter."""
        if _is_cupy(weights):
            _check_cupy_dtype(weights, "weights")
            ex = self._cupy_expander(weights.dtype, method)
            shape = weights.shape[:-1] + self.shape
            flat_out = None
            if out is not None:
                if tuple(out.shape) != shape:
                    raise ValueError(f"out must have shape {shape}, got {tuple(out.shape)}")
                flat_out = out.reshape(weights.shape[:-1] + (int(np.prod(self.shape)),))
            flat = ex.expand(weights, out=flat_out)
            return out if out is not None else flat.reshape(shape)
        if out is not None:
            raise ValueError("out is only supported for CuPy arrays")
        w = _as_float_array(weights, "weights")
        return self._expander(w.dtype).expand(w)

    def adjoint(self, filter_grad, method: str = "fused", out=None):
        """The exact transpose of :meth:`expand`: filter gradient → weight gradient
        (CuPy only: written into ``out`` if given)."""
        if _is_cupy(filter_grad):
            _check_cupy_dtype(filter_grad, "filter_grad")
            ex = self._cupy_expander(filter_grad.dtype, method)
            n = int(np.prod(self.shape))
            lead = filter_grad.shape[:filter_grad.ndim - len(self.shape)]
            if filter_grad.shape[len(lead):] != self.shape:
                raise ValueError(f"filter_grad must have shape {self.shape} or (batch, "
                                 f"*{self.shape}), got {filter_grad.shape}")
            return ex.adjoint(filter_grad.reshape(lead + (n,)), out=out)
        if out is not None:
            raise ValueError("out is only supported for CuPy arrays")
        G = _as_float_array(filter_grad, "filter_grad")
        return self._expander(G.dtype).adjoint(G)

    def expand_bias(self, bias) -> np.ndarray:
        """One bias per trivial output irrep (T,) → one per output channel (C_out,)."""
        b = _as_float_array(bias, "bias")
        return self._expander(b.dtype).expand_bias(b)

    def bias_expansion(self) -> np.ndarray:
        """The (C_out, T) matrix of :meth:`expand_bias`."""
        from .backends.numpy_backend import bias_expansion
        return bias_expansion(self.plan)

    def he_std(self) -> np.ndarray:
        """Generalised He standard deviation of every weight (see :mod:`cupysteer.init`)."""
        from .init import he_std
        return he_std(self)

    def init_weights(self, rng: np.random.Generator | None = None, dtype=np.float32):
        """Generalised He initialisation drawn from the NumPy Generator ``rng``."""
        from .init import he_init
        return he_init(self, rng, dtype)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_expanders"] = {}  # device state is rebuilt on demand
        state["_cache"] = None
        return state

    # ---- views ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        """Filter shape (C_out, C_in, *filter_shape)."""
        return (self.out_type.size, self.in_type.size) + self.filter_shape

    @property
    def num_bias(self) -> int:
        return self.plan.num_bias

    def __len__(self):
        return self.dim

    def __repr__(self):
        return (f"LayerBasis({self.in_type} -> {self.out_type}, filter {self.filter_shape}, "
                f"dim={self.dim})")

    @property
    def stored_bytes(self) -> int:
        """Bytes of the irreps-level basis and changes of basis (what is stored)."""
        return int(self.plan.basis.nbytes + self.plan.change_of_basis.nbytes)

    @property
    def padded_bytes(self) -> int:
        """Bytes of e2cnn's padded float32 basis for this layer: one (d, size_out, size_in, P)
        buffer per (in repr name, out repr name) block, shared by that block's fields."""
        t_in, t_out = self.in_type, self.out_type
        size = {r.name: r.size for r in t_in.representations + t_out.representations}
        return 4 * len(self.points) * sum(d * size[i] * size[o]
                                          for i, o, _, _, _, _, d in self.weight_blocks)

    @cached_property
    def element_attributes(self) -> dict:
        """Per weight (arrays of length dim): ring ``radius`` and ``sigma``, ``frequency`` μ,
        ``gamma``, ``s``, alias ``offset``, ``out_field``, ``in_field``, ``out_irrep_idx`` and
        ``in_irrep_idx`` (inside the field's representation), ``in_irrep_name``."""
        plan, blk = self.plan, self._block
        pbs = [self.pair_basis(*t) for t in self.irreps_pairs]
        n = plan.pair_count[plan.block_pair]
        beta = np.repeat(np.arange(plan.num_blocks), n)
        elem = np.arange(n.sum()) - np.repeat(plan.block_weight, n)
        first = np.concatenate([[0], np.cumsum(plan.pair_count)[:-1]])[plan.block_pair[beta]]
        flat = first + elem  # index into the concatenated pair attributes
        w = plan.weight_index
        out = {}
        rings = np.concatenate([pb.ring for pb in pbs])
        for key, table in (("radius", np.asarray(self.settings.rings)),
                           ("sigma", np.asarray(self.settings.sigma))):
            out[key] = np.empty(self.dim)
            out[key][w] = table[rings[flat]]
        for key in ("frequency", "gamma", "s", "offset"):
            vals = np.concatenate([getattr(pb, key) for pb in pbs])
            out[key] = np.empty(self.dim, vals.dtype)
            out[key][w] = vals[flat]
        for key, src in (("out_field", "out_field"), ("in_field", "in_field"),
                         ("out_irrep_idx", "oo"), ("in_irrep_idx", "ii")):
            out[key] = np.empty(self.dim, np.int64)
            out[key][w] = blk[src][beta]
        names = np.array([pb.in_irrep.name for pb in pbs], dtype=object)
        out["in_irrep_name"] = np.empty(self.dim, object)
        out["in_irrep_name"][w] = names[plan.block_pair[beta]]
        return out

    def padded_blocks(self, dtype=np.float64) -> list:
        """e2cnn's storage: per (in repr name, out repr name) block its padded basis
        E (d, size_out, size_in, P), shared by the block's fields, with the block's weight
        slice and channels. Items: dict(E, lo, n_out, n_in, out_channels, in_channels)."""
        tin, tout, P = self.in_type, self.out_type, len(self.points)
        gin, gout = _group_fields(tin, "in_type"), _group_fields(tout, "out_type")
        n = self.padded_bytes // 4  # entries of all padded blocks
        check_host(n * (8 + (0 if np.dtype(dtype) == np.float64 else np.dtype(dtype).itemsize)),
                   lambda: f"padded_blocks: the padded basis of {self} ({n} entries)",
                   "use the irreps-level plan (expand) instead")
        blocks = []
        for in_name, out_name, lo, hi, n_o, n_i, d in self.weight_blocks:
            rin = tin.representations[gin[in_name][0]]
            rout = tout.representations[gout[out_name][0]]
            pos, _ = self._rep_pair_order(rin, rout)
            E = np.zeros((d, rout.size, rin.size, P))
            for (ii, oo), where in pos.items():
                pb = self.pair_basis(rin.irreps[ii], rout.irreps[oo])
                do, di = pb.shape
                a, c = rout.irrep_offsets[oo], rin.irrep_offsets[ii]
                E[where] = np.einsum("ab,nbcp,dc->nadp", rout.change_of_basis[:, a:a + do],
                                     pb.values, rin.change_of_basis[:, c:c + di])
            channels = [np.concatenate([np.arange(t.channels(f).start, t.channels(f).stop)
                                        for f in fields])
                        for t, fields in ((tout, gout[out_name]), (tin, gin[in_name]))]
            blocks.append(dict(E=E.astype(dtype, copy=False), lo=lo, n_out=n_o, n_in=n_i,
                               out_channels=channels[0], in_channels=channels[1]))
        return blocks

    def dense(self, dtype=np.float64) -> np.ndarray:
        """The padded basis (dim, C_out, C_in, *filter_shape), built directly from the irreps
        blocks and the fields' Q (a reference independent of the plan executors)."""
        n = self.dim * int(np.prod(self.shape))
        check_host(n * (8 + (0 if np.dtype(dtype) == np.float64 else np.dtype(dtype).itemsize)),
                   lambda: f"dense: the padded basis of shape {(self.dim,) + self.shape}",
                   "use expand (the irreps-level plan) or padded_blocks instead")
        D = np.zeros((self.dim, self.out_type.size, self.in_type.size, len(self.points)))
        tin, tout, plan, blk = self.in_type, self.out_type, self.plan, self._block
        for beta in range(plan.num_blocks):
            Pf, Qf, oo, ii = (int(blk[k][beta]) for k in ("out_field", "in_field", "oo", "ii"))
            rout, rin = tout.representations[Pf], tin.representations[Qf]
            pb = self.pair_basis(*self.irreps_pairs[int(blk["tau"][beta])])
            do, di = pb.shape
            a, c = rout.irrep_offsets[oo], rin.irrep_offsets[ii]
            E = np.einsum("ab,nbcp,dc->nadp", rout.change_of_basis[:, a:a + do], pb.values,
                          rin.change_of_basis[:, c:c + di])
            w = plan.weight_index[plan.block_weight[beta]:plan.block_weight[beta] + len(pb)]
            D[w, tout.channels(Pf), tin.channels(Qf)] = E
        return D.reshape((self.dim,) + self.shape).astype(dtype, copy=False)
