r"""The kernel basis of a convolution layer between two field types, at irreps level.

Every filter satisfies :math:`K(g\cdot p) = \rho_\text{out}(g)\, K(p)\, \rho_\text{in}(g)^{-1}`.
Per irreps pair the sampled basis is stored once (:class:`~cupysteer.pair_basis.PairBasis`);
per field its orthogonal Q. The padded (dim, C_out, C_in, P) basis is never stored
(:meth:`LayerBasis.dense` builds it on request, for tests and debugging).

:class:`LayerBasis` is a facade: the group's :class:`~cupysteer.space.Space` gives the grid,
the settings and the pair bases; :mod:`cupysteer.layout` the weight order (e2cnn's / escnn's)
and the :class:`~cupysteer.plan.ExpansionPlan`; :mod:`cupysteer.reference` the padded forms;
the backends (:mod:`cupysteer.backends`) execute the plan.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from . import reference
from ._checks import check_cupy_dtype, float_array, is_cupy, real_array
from ._checks import method as check_method
from .cache import BasisCache, default_cache, points_digest
from .field_type import FieldType
from .init import he_init, he_std
from .layout import BlockTable, EmptyBasisError, WeightBlock, build_layout, layer_pairs, make_plan
from .pair_basis import PairBasis
from .plan import ExpansionPlan
from .settings import BasisSettings, grid_geometry

__all__ = ["LayerBasis", "EmptyBasisError"]

#: the expansion methods of the CUDA backend ("padded": e2cnn's storage + cuBLAS, a baseline);
#: the NumPy backend has one schedule and accepts both names
METHODS = ("fused", "fused_v1", "padded")  # fused: kernels/expand_v2.cu; fused_v1: expand.cu

_SHARED_STATE = ("dim", "irreps_pairs", "weight_blocks", "blocks", "plan", "_pairs")


class LayerBasis:
    """Steerable basis of the filters from ``in_type`` to ``out_type``.

    Parameters follow e2cnn's ``R2Conv`` (same defaults, see :mod:`cupysteer.r2.settings`), or
    for groups acting on R³ escnn's ``R3Conv`` (:mod:`cupysteer.r3.settings`);
    ``points`` (n, 2) — (n, 3) for groups on R³ — samples at arbitrary coordinates instead of
    the k×k (k×k×k) grid.
    Anisotropic grids: ``kernel_size`` may be one size per filter axis ((k_H, k_W); in R³
    (k_1, k_2, k_3) on escnn's axes (−z, −y, x)) and ``spacing`` one positive physical step per
    filter axis (e.g. MRI voxels of 3 mm along z and 1 mm in-plane: ``spacing=(3, 1, 1)``);
    the basis is sampled at the physical points ``(j_i − (k_i−1)/2)·dilation·s_i`` with the
    radial defaults of :mod:`cupysteer.settings` (the largest ball inside the box).
    ``spacing`` None or all ones is today's grid, bit for bit.
    ``cache``: a :class:`~cupysteer.cache.BasisCache`, ``None`` for the process-wide
    :func:`~cupysteer.cache.default_cache`, or ``False`` to build everything afresh.

    After construction: ``dim`` weights laid out in ``weight_blocks``
    (:class:`~cupysteer.layout.WeightBlock`), the ``irreps_pairs`` and the ``blocks``
    (:class:`~cupysteer.layout.BlockTable`) of the ``plan``.
    """

    #: the grid's dilation and per-axis physical steps (None: unit steps; both None for
    #: explicit points and for bases pickled by 0.1)
    dilation: int | None = None
    spacing: tuple | None = None

    def __init__(self, in_type: FieldType, out_type: FieldType, kernel_size,
                 dilation: int = 1, rings=None, sigma=None, frequencies_cutoff=None,
                 maximum_offset=None, points=None, cache=None, spacing=None):
        for name, t in (("in_type", in_type), ("out_type", out_type)):
            if not isinstance(t, FieldType):
                raise ValueError(f"{name} must be a FieldType, got {type(t).__name__}")
        if in_type.group != out_type.group:
            raise ValueError(f"in_type and out_type must share one group; got "
                             f"{in_type.group!r} and {out_type.group!r}")
        if not (cache is None or cache is False or isinstance(cache, BasisCache)):
            raise ValueError(f"cache must be a cupysteer.cache.BasisCache, None (the process "
                             f"cache) or False (no cache), got {cache!r:.80}")
        self.in_type, self.out_type = in_type, out_type
        space = in_type.group.space
        if points is None:
            geom = grid_geometry(kernel_size, dilation, spacing, space.dimension)
            self.points = space.grid_points(kernel_size, dilation, geom.spacing)
            self.filter_shape, self.dilation, self.spacing = geom.sizes, geom.dilation, \
                geom.spacing
        else:
            if spacing is not None:
                raise ValueError("spacing applies to the sample grid; with explicit points "
                                 "give the physical coordinates themselves (points * "
                                 "spacing) and leave spacing=None")
            self.points = self._check_points(points, space.dimension)
            self.filter_shape = (len(self.points),)
        self.points.setflags(write=False)
        given = None if points is None else self.points
        extra = {} if self.spacing is None else {"spacing": self.spacing}
        self.settings: BasisSettings = space.resolve_settings(
            kernel_size, dilation, rings, sigma, frequencies_cutoff, maximum_offset, given,
            **extra)
        self._pairs: dict = {}
        self._expanders: dict = {}
        self._cache = (default_cache() if cache is None else cache) or None
        key = self._definition = (in_type, out_type, self.settings, self.filter_shape,
                                  points_digest(self.points))
        if self._cache is not None:
            state = self._cache.layer_state(key)
            if state is not None:
                self.__dict__.update(state)
                return
        self._build()
        if self._cache is not None:
            self._cache.store_layer_state(key, {k: getattr(self, k) for k in _SHARED_STATE})

    @staticmethod
    def _check_points(points, nd: int) -> np.ndarray:
        pts = real_array(points, "points", f"a finite (n, {nd}) array of coordinates")
        if pts.ndim != 2 or pts.shape[1] != nd or len(pts) == 0 or not np.isfinite(pts).all():
            xyz = "(x, y)" if nd == 2 else "(x, y, z)"
            raise ValueError(f"points must be a finite (n, {nd}) array of {xyz} "
                             f"coordinates, got shape {pts.shape}")
        return pts

    # ---- construction -----------------------------------------------------------------
    def pair_basis(self, in_irrep, out_irrep) -> PairBasis:
        """The sampled basis of one irreps pair (from the cache when it has one)."""
        key = (in_irrep, out_irrep)
        pb = self._pairs.get(key)
        if pb is None:
            self._sample([key])
            pb = self._pairs[key]
        return pb

    def _sample(self, pairs: list) -> dict:
        """Sample the missing pairs at once (in R³ into one buffer: the plan's ``basis``);
        returns those sampled now by the identities of their irreps."""
        if self._pairs:
            pairs = [p for p in pairs if p not in self._pairs]
        if not pairs:
            return {}
        if self._cache is not None:
            got = self._cache.pair_bases(pairs, self.settings, self.points)
        else:
            got = self.in_type.group.space.sample_pair_bases(pairs, self.settings, self.points)
        self._pairs.update(zip(pairs, got))
        return {(id(a), id(b)): pb for (a, b), pb in zip(pairs, got)}

    def _build(self):
        sampled = self._sample(layer_pairs(self.in_type, self.out_type))

        def pair_basis(a, b):
            """:meth:`pair_basis`, first by the irreps' identities (no hashing of irreps)."""
            pb = sampled.get((id(a), id(b)))
            return self.pair_basis(a, b) if pb is None else pb
        hint = (f"for kernel_size {self.filter_shape}, rings {self.settings.rings} and "
                f"cut-offs {self.settings.cutoff_per_ring}: increase frequencies_cutoff (e.g. "
                f"3.0) or kernel_size, or add rings")
        layout = build_layout(self.in_type, self.out_type, pair_basis, hint)
        self.dim, self.irreps_pairs = layout.dim, layout.irreps_pairs
        self.weight_blocks, self.blocks = layout.weight_blocks, layout.blocks
        self.plan: ExpansionPlan = make_plan(
            layout, self.in_type, self.out_type,
            [pair_basis(a, b) for a, b in self.irreps_pairs], self.filter_shape)

    # ---- expansion ----------------------------------------------------------------------
    def _expander(self, dtype):
        from .backends.numpy_backend import NumpyExpander
        dtype = np.dtype(dtype)
        if dtype not in self._expanders:
            self._expanders[dtype] = NumpyExpander(self.plan, dtype)
        return self._expanders[dtype]

    def _cupy_expander(self, dtype, method):
        """The CuPy backend's expander of this layer for ``dtype`` (a NumPy dtype) and
        ``method``, built on first use (a dict lookup afterwards: this is on the hot path)."""
        ex = self._expanders.get(("cupy", dtype, method))
        if ex is None:
            from .backends.cupy_backend import CupyExpander
            dtype = np.dtype(dtype)
            padded = [reference.padded_blocks(self, dtype)] if method == "padded" else None
            ex = self._expanders[("cupy", dtype, method)] = CupyExpander(self.plan, dtype,
                                                                         method, padded)
        return ex

    def expand(self, weights, method: str = "fused", out=None):
        """Weights (dim,) or (batch, dim) → filter (C_out, C_in, k, k) (R³: (…, k, k, k)) or
        (batch, …), in the weights' dtype (float32 or float64) and array library: NumPy arrays
        run the NumPy reference, CuPy arrays the CUDA kernels (``method`` 'fused' or 'padded').

        ``out``: an array of the weights' library (NumPy / CuPy; e.g. memory of another
        framework's allocator), of exactly the result's shape and dtype, C-contiguous and on
        the weights' device, that receives the filter and is returned. It is checked before
        anything is computed; anything else raises (it is never replaced by a copy)."""
        method = check_method(method, "method", METHODS)
        if out is not None and (np.ndim(weights) not in (1, 2)
                                or np.shape(weights)[-1] != self.dim):
            raise ValueError(f"weights must have shape ({self.dim},) or (batch, {self.dim}), "
                             f"got {tuple(np.shape(weights))}")
        if is_cupy(weights):
            check_cupy_dtype(weights, "weights")
            ex = self._cupy_expander(weights.dtype, method)
            lead, p = weights.shape[:-1], ex.packed
            if out is None:
                return ex.expand(weights).reshape(lead + p.filter_shapes[0])
            self._out_array(out, lead + p.filter_shapes[0], weights, ex)
            ex.expand(weights, out=out.reshape(lead + (p.filter_size,)))
            return out
        w = float_array(weights, "weights")
        if out is not None:
            self._out_array(out, w.shape[:-1] + self.shape, w)
            out[...] = self._expander(w.dtype).expand(w)
            return out
        return self._expander(w.dtype).expand(w)

    def adjoint(self, filter_grad, method: str = "fused", out=None):
        """The exact transpose of :meth:`expand`: filter gradient → weight gradient, written
        into ``out`` if given (checked as in :meth:`expand`: the result's shape and dtype,
        C-contiguous, the gradient's library and device)."""
        method = check_method(method, "method", METHODS)
        if is_cupy(filter_grad):
            check_cupy_dtype(filter_grad, "filter_grad")
            ex = self._cupy_expander(filter_grad.dtype, method)
            p = ex.packed
            shape = p.filter_shapes[0]
            lead = filter_grad.shape[:filter_grad.ndim - len(shape)]
            if filter_grad.shape[len(lead):] != shape or len(lead) > 1:
                raise ValueError(f"filter_grad must have shape {shape} or (batch, "
                                 f"*{shape}), got {filter_grad.shape}")
            if out is not None:
                self._out_array(out, lead + (p.dim,), filter_grad, ex)
            return ex.adjoint(filter_grad.reshape(lead + (p.filter_size,)), out=out)
        G = float_array(filter_grad, "filter_grad")
        if out is not None:
            lead = G.shape[:G.ndim - len(self.shape)]
            self._out_array(out, lead + (self.dim,), G)
            out[...] = self._expander(G.dtype).adjoint(G)
            return out
        return self._expander(G.dtype).adjoint(G)

    @staticmethod
    def _out_array(out, shape, like, cupy_expander=None):
        """Check a caller's ``out`` (of :meth:`expand` / :meth:`adjoint`) before any reshape:
        the library and device of ``like``, exactly ``shape`` and ``like``'s dtype,
        C-contiguous and (NumPy) writeable."""
        if cupy_expander is not None:
            cupy_expander.check_out(out, shape, like.dtype, like.device.id)
            return
        if not isinstance(out, np.ndarray) or is_cupy(out):
            raise TypeError(f"out must be a NumPy array (the input is a NumPy array on the "
                            f"CPU), got {type(out).__module__}.{type(out).__name__}")
        if out.shape != tuple(shape) or out.dtype != like.dtype:
            raise ValueError(f"out must have shape {tuple(shape)} and dtype {like.dtype}, got "
                             f"{out.shape} {out.dtype}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError(f"out must be a writeable C-contiguous array (np.empty("
                             f"{tuple(shape)}, np.{like.dtype.name})), got strides "
                             f"{out.strides}, writeable={out.flags.writeable}")

    def expand_bias(self, bias) -> np.ndarray:
        """One bias per trivial output irrep (T,) → one per output channel (C_out,)."""
        b = float_array(bias, "bias")
        return self._expander(b.dtype).expand_bias(b)

    def bias_expansion(self) -> np.ndarray:
        """The (C_out, T) matrix of :meth:`expand_bias`."""
        from .backends.tables import bias_expansion
        return bias_expansion(self.plan)

    def he_std(self) -> np.ndarray:
        """Generalised He standard deviation of every weight (see :mod:`cupysteer.init`)."""
        return he_std(self)

    def init_weights(self, rng: np.random.Generator | None = None, dtype=np.float32):
        """Generalised He initialisation drawn from the NumPy Generator ``rng``."""
        return he_init(self, rng, dtype)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_expanders"] = {}  # device state is rebuilt on demand
        state["_cache"] = None
        return state

    # ---- identity: by value (equal layers share jit caches and operator keys) --------------
    @property
    def definition(self) -> tuple:
        """What defines the basis: (in_type, out_type, settings, filter_shape, SHA-256 of the
        points, dilation, spacing). Two bases with the same definition are equal and hash
        equal. The grid's (dilation, spacing) is part of it: ``k=4, dilation=2`` and ``k=4,
        spacing=2`` sample the same points (the same filters, one shared cache entry: the
        first five entries are the cache key) but convolve with other input strides."""
        if "_definition" not in self.__dict__:  # pickled by cupysteer 0.1
            self._definition = (self.in_type, self.out_type, self.settings, self.filter_shape,
                                points_digest(self.points))
        return self._definition + (self.dilation, self.spacing)

    def __eq__(self, other):
        if not isinstance(other, LayerBasis):
            return NotImplemented
        return self is other or self.definition == other.definition

    def __hash__(self):
        return hash(self.definition)

    def __setstate__(self, state):
        if "_block" in state:  # pickled by cupysteer 0.1: dict of arrays and 7-tuples
            b = state.pop("_block")
            state["blocks"] = BlockTable(b["out_field"], b["in_field"], b["oo"], b["ii"],
                                         b["tau"])
            state["weight_blocks"] = [WeightBlock(*t) for t in state["weight_blocks"]]
        if "_definition" not in state and "dilation" not in state:  # 0.1: unit-spaced grids
            state["dilation"] = _grid_dilation(state["points"], state["filter_shape"])
        self.__dict__.update(state)

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
        spacing = "" if self.spacing is None else f", spacing {self.spacing}"
        return (f"LayerBasis({self.in_type} -> {self.out_type}, filter {self.filter_shape}"
                f"{spacing}, dim={self.dim})")

    @property
    def stored_bytes(self) -> int:
        """Bytes of the irreps-level basis and changes of basis (what is stored)."""
        return int(self.plan.basis.nbytes + self.plan.change_of_basis.nbytes)

    @property
    def padded_bytes(self) -> int:
        """Bytes of e2cnn's padded float32 basis (:func:`cupysteer.reference.padded_bytes`)."""
        return reference.padded_bytes(self)

    @cached_property
    def element_attributes(self) -> dict:
        """Per weight (arrays of length dim): ring ``radius`` and ``sigma``, ``frequency`` μ,
        ``gamma``, ``s``, alias ``offset``, ``out_field``, ``in_field``, ``out_irrep_idx`` and
        ``in_irrep_idx`` (inside the field's representation), ``in_irrep_name``."""
        plan, blk = self.plan, self.blocks
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
        for key, src in (("out_field", blk.out_field), ("in_field", blk.in_field),
                         ("out_irrep_idx", blk.out_irrep), ("in_irrep_idx", blk.in_irrep)):
            out[key] = np.empty(self.dim, np.int64)
            out[key][w] = src[beta]
        names = np.array([pb.in_irrep.name for pb in pbs], dtype=object)
        out["in_irrep_name"] = np.empty(self.dim, object)
        out["in_irrep_name"][w] = names[plan.block_pair[beta]]
        return out

    def padded_blocks(self, dtype=np.float64) -> list:
        """e2cnn's storage, per weight block (:func:`cupysteer.reference.padded_blocks`)."""
        return reference.padded_blocks(self, dtype)

    def dense(self, dtype=np.float64) -> np.ndarray:
        """The padded basis (dim, C_out, C_in, *filter_shape)
        (:func:`cupysteer.reference.dense`)."""
        return reference.dense(self, dtype)


def _grid_dilation(points, filter_shape) -> int:
    """The dilation of a unit-spaced grid basis pickled by 0.1 (which did not store it): the
    step between the first two samples along the last filter axis, the x axis (1 for k = 1,
    where the dilation changes nothing)."""
    if filter_shape[-1] < 2:
        return 1
    return int(round(float(points[1, 0] - points[0, 0])))
