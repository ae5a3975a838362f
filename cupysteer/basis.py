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
from ._checks import check_cupy_dtype, float_array, is_cupy
from .cache import default_cache, points_digest
from .field_type import FieldType
from .init import he_init, he_std
from .layout import EmptyBasisError, build_layout, layer_pairs, make_plan
from .pair_basis import PairBasis
from .plan import ExpansionPlan
from .settings import BasisSettings

__all__ = ["LayerBasis", "EmptyBasisError"]

_SHARED_STATE = ("dim", "irreps_pairs", "weight_blocks", "blocks", "plan", "_pairs")


class LayerBasis:
    """Steerable basis of the filters from ``in_type`` to ``out_type``.

    Parameters follow e2cnn's ``R2Conv`` (same defaults, see :mod:`cupysteer.r2.settings`), or
    for groups acting on R³ escnn's ``R3Conv`` (:mod:`cupysteer.r3.settings`);
    ``points`` (n, 2) — (n, 3) for groups on R³ — samples at arbitrary coordinates instead of
    the k×k (k×k×k) grid.
    ``cache``: a :class:`~cupysteer.cache.BasisCache`, ``None`` for the process-wide
    :func:`~cupysteer.cache.default_cache`, or ``False`` to build everything afresh.

    After construction: ``dim`` weights laid out in ``weight_blocks``
    (:class:`~cupysteer.layout.WeightBlock`), the ``irreps_pairs`` and the ``blocks``
    (:class:`~cupysteer.layout.BlockTable`) of the ``plan``.
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
        space = in_type.group.space
        if points is None:
            self.points = space.grid_points(kernel_size, dilation)
            self.filter_shape = (int(kernel_size),) * space.dimension
        else:
            self.points = self._check_points(points, space.dimension)
            self.filter_shape = (len(self.points),)
        self.points.setflags(write=False)
        given = None if points is None else self.points
        self.settings: BasisSettings = space.resolve_settings(
            kernel_size, dilation, rings, sigma, frequencies_cutoff, maximum_offset, given)
        self._pairs: dict = {}
        self._expanders: dict = {}
        self._cache = (default_cache() if cache is None else cache) or None
        key = None
        if self._cache is not None:
            key = (in_type, out_type, self.settings, self.filter_shape,
                   points_digest(self.points))
            state = self._cache.layer_state(key)
            if state is not None:
                self.__dict__.update(state)
                return
        self._build()
        if key is not None:
            self._cache.store_layer_state(key, {k: getattr(self, k) for k in _SHARED_STATE})

    @staticmethod
    def _check_points(points, nd: int) -> np.ndarray:
        pts = np.asarray(points, np.float64)
        if pts.ndim != 2 or pts.shape[1] != nd or len(pts) == 0 or not np.isfinite(pts).all():
            xyz = "(x, y)" if nd == 2 else "(x, y, z)"
            raise ValueError(f"points must be a finite (n, {nd}) array of {xyz} "
                             f"coordinates, got shape {pts.shape}")
        return pts

    # ---- construction -----------------------------------------------------------------
    def pair_basis(self, in_irrep, out_irrep) -> PairBasis:
        """The sampled basis of one irreps pair (from the cache when it has one)."""
        key = (in_irrep, out_irrep)
        if key not in self._pairs:
            self._sample([key])
        return self._pairs[key]

    def _sample(self, pairs: list) -> None:
        """Sample the missing pairs at once (in R³ into one buffer: the plan's ``basis``)."""
        pairs = [p for p in pairs if p not in self._pairs]
        if not pairs:
            return
        if self._cache is not None:
            got = self._cache.pair_bases(pairs, self.settings, self.points)
        else:
            got = self.in_type.group.space.sample_pair_bases(pairs, self.settings, self.points)
        self._pairs.update(zip(pairs, got))

    def _build(self):
        self._sample(layer_pairs(self.in_type, self.out_type))
        hint = (f"for kernel_size {self.filter_shape}, rings {self.settings.rings} and "
                f"cut-offs {self.settings.cutoff_per_ring}: increase frequencies_cutoff (e.g. "
                f"3.0) or kernel_size, or add rings")
        layout = build_layout(self.in_type, self.out_type, self.pair_basis, hint)
        self.dim, self.irreps_pairs = layout.dim, layout.irreps_pairs
        self.weight_blocks, self.blocks = layout.weight_blocks, layout.blocks
        self.plan: ExpansionPlan = make_plan(
            layout, self.in_type, self.out_type,
            [self.pair_basis(a, b) for a, b in self.irreps_pairs], self.filter_shape)

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
            padded = [reference.padded_blocks(self, dtype)] if method == "padded" else None
            self._expanders[key] = CupyExpander(self.plan, dtype, method, padded)
        return self._expanders[key]

    def expand(self, weights, method: str = "fused", out=None):
        """Weights (dim,) or (batch, dim) → filter (C_out, C_in, k, k) (R³: (…, k, k, k)) or
        (batch, …),
        in the weights' dtype (float32 or float64) and array library: NumPy arrays run the
        NumPy reference, CuPy arrays the CUDA kernels (``method`` 'fused' or 'padded').
        CuPy only: ``out``, a C-contiguous CuPy array of the result's shape and dtype (for
        example memory of another framework's allocator), receives the filter."""
        if is_cupy(weights):
            check_cupy_dtype(weights, "weights")
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
        w = float_array(weights, "weights")
        return self._expander(w.dtype).expand(w)

    def adjoint(self, filter_grad, method: str = "fused", out=None):
        """The exact transpose of :meth:`expand`: filter gradient → weight gradient
        (CuPy only: written into ``out`` if given)."""
        if is_cupy(filter_grad):
            check_cupy_dtype(filter_grad, "filter_grad")
            ex = self._cupy_expander(filter_grad.dtype, method)
            n = int(np.prod(self.shape))
            lead = filter_grad.shape[:filter_grad.ndim - len(self.shape)]
            if filter_grad.shape[len(lead):] != self.shape:
                raise ValueError(f"filter_grad must have shape {self.shape} or (batch, "
                                 f"*{self.shape}), got {filter_grad.shape}")
            return ex.adjoint(filter_grad.reshape(lead + (n,)), out=out)
        if out is not None:
            raise ValueError("out is only supported for CuPy arrays")
        G = float_array(filter_grad, "filter_grad")
        return self._expander(G.dtype).adjoint(G)

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
