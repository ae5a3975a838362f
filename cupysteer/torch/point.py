r"""Steerable point convolution for PyTorch: ``conv(features, positions, edge_index)``.

:class:`SteerablePointConv` is escnn's ``R2PointConv`` / ``R3PointConv`` on plain tensors:
features (n, C_in), positions (n, d), ``edge_index`` (2, E) with row 0 the sources j and row 1
the targets i (torch_geometric's convention; no dependency on it), message
K(x_j − x_i) f_j, aggregated by ``"mean"`` (escnn's) or ``"sum"``, plus the bias on trivial
output irreps. The weight layout is :class:`~cupysteer.pointconv.PointConvBasis`'s.

The edge part runs in :class:`_PointContract`, a ``torch.autograd.Function`` over chunks of
``chunk_edges`` edges: per chunk the basis (chunk, n_entries) is evaluated (NumPy, on the
host: positions are copied to the CPU once per call) and contracted at irreps level; the
backward recomputes the basis per chunk and applies the explicit adjoints (features and
weights), so memory stays O(chunk · n_entries + n · C). The contract's operations come from
:func:`contract_ops` — the one dispatch point: float32/float64 CUDA tensors with CuPy and a
device run the CUDA kernels of :mod:`cupysteer.backends.point_cupy` (:class:`CupyOps`:
zero-copy DLPack in and out, on torch's current stream, one ``PointLaunch`` per edge chunk
shared by the forward and both adjoints of a call); everything else (CPU, MPS, half
precision, no CuPy) runs torch ops. Gradients with respect to positions are not supported
(a clear error).

``torch.compile``: the Function evaluates the basis in NumPy, so dynamo graph-breaks around
it and runs it eagerly (the per-node changes of basis, scaling and bias are compiled).
"""
from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from ..backends import point_cupy
from ..backends.point_numpy import block_groups, check_table
from ..field_type import FieldType
from ..pointconv import AGGREGATIONS, DEFAULT_CHUNK_EDGES, PointConvBasis

__all__ = ["SteerablePointConv", "contract_ops", "point_contract", "prepare_table", "TorchTable"]


def _t(a, like: Tensor) -> Tensor:
    return torch.as_tensor(a, device=like.device)


def _pair_basis(B, boff, n, do, di):
    """One irreps pair's basis as (n, E·d_out·d_in): the right operand of one GEMM."""
    return B[:, boff:boff + n * do * di].reshape(len(B), n, do * di).transpose(0, 1) \
        .reshape(n, len(B) * do * di)


def _block_filters(B, w, wi, boff, n, do, di):
    """K̃_b[e] (E, blocks, d_out, d_in) = Σ_k w[wi[b, k]] B[e, k] for one irreps pair."""
    Bq = B[:, boff:boff + n * do * di].reshape(len(B), n, do * di)
    return torch.matmul(w[wi], Bq).reshape(len(B), len(wi), do, di)


class TorchTable(NamedTuple):
    """The block table as the torch ops use it: grouped by irreps pair
    (:func:`~cupysteer.backends.point_numpy.block_groups`) and the channel counts it reaches."""

    groups: list
    c_out: int
    c_in: int


def prepare_table(table: np.ndarray) -> TorchTable:
    t = np.asarray(table)
    return TorchTable(block_groups(t), int((t[:, 0] + t[:, 2]).max(initial=0)),
                      int((t[:, 1] + t[:, 3]).max(initial=0)))


def _contract(table: TorchTable, B, w, g, s, t, n_targets):
    groups, c_out = table.groups, table.c_out
    msg = g.new_zeros(len(s), c_out)
    gs = g.index_select(0, s)
    for oc, ic, wi, boff, n, do, di in groups:
        x = gs.index_select(1, _t(ic, g)).reshape(len(s), len(wi), di, 1)
        K = _block_filters(B, w, _t(wi, g), boff, n, do, di)
        msg.index_add_(1, _t(oc, g), torch.matmul(K, x).reshape(len(s), len(oc)))
    return g.new_zeros(n_targets, c_out).index_add_(0, t, msg)


def _adjoint_features(table: TorchTable, B, w, gy, s, t, n_sources):
    groups, c_in = table.groups, table.c_in
    msg = gy.new_zeros(len(s), c_in)
    ys = gy.index_select(0, t)
    for oc, ic, wi, boff, n, do, di in groups:
        y = ys.index_select(1, _t(oc, gy)).reshape(len(s), len(wi), do, 1)
        K = _block_filters(B, w, _t(wi, gy), boff, n, do, di)
        msg.index_add_(1, _t(ic, gy), torch.matmul(K.transpose(-1, -2), y).reshape(len(s), len(ic)))
    return gy.new_zeros(n_sources, c_in).index_add_(0, s, msg)


def _adjoint_weights(table: TorchTable, B, gy, g, s, t, n_weights):
    groups = table.groups
    out = g.new_zeros(n_weights)
    gs, ys = g.index_select(0, s), gy.index_select(0, t)
    for oc, ic, wi, boff, n, do, di in groups:
        x = gs.index_select(1, _t(ic, g)).reshape(len(s), len(wi), 1, di)
        y = ys.index_select(1, _t(oc, g)).reshape(len(s), len(wi), do, 1)
        z = (y * x).transpose(0, 1).reshape(len(wi), len(s) * do * di)  # (blocks, E·q)
        gw = z @ _pair_basis(B, boff, n, do, di).T  # (blocks, n)
        out.index_add_(0, _t(wi, g).reshape(-1), gw.reshape(-1))
    return out


_TORCH_OPS = SimpleNamespace(prepare=prepare_table, contract=_contract,
                             contract_adjoint_features=_adjoint_features,
                             contract_adjoint_weights=_adjoint_weights)
_KERNEL_DTYPES = (torch.float32, torch.float64)


class CupyTable:
    """The block table for :class:`CupyOps` and the :class:`~cupysteer.backends.point_cupy.
    PointLaunch` of each edge chunk of one call (forward and backward use each three times;
    keyed by the chunk's index storage, alive for the whole call)."""

    def __init__(self, table):
        t = self.table = check_table(table)
        self.c_out = int((t[:, 0] + t[:, 2]).max(initial=0))  # out_offset + d_out
        self.launches: dict = {}


def _cupy_from(t: Tensor):
    return point_cupy.import_cupy().from_dlpack(t.detach())


def _torch_stream(device: torch.device):
    """CuPy on ``device`` running on torch's current stream (as cupysteer.dlpack does)."""
    cupy = point_cupy.import_cupy()
    stream = cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream,
                                      device_id=device.index)
    return _Both(cupy.cuda.Device(device.index), stream)


class _Both:
    def __init__(self, *contexts):
        self.contexts = contexts

    def __enter__(self):
        for c in self.contexts:
            c.__enter__()

    def __exit__(self, *exc):
        for c in reversed(self.contexts):
            c.__exit__(*exc)


class CupyOps:
    """The contract's operations on the CUDA kernels of :mod:`cupysteer.backends.point_cupy`
    for torch tensors: zero-copy through DLPack (``cupy.from_dlpack`` in, ``torch.from_dlpack``
    out), launched on torch's current stream. ``launch``, ``to_cupy``, ``to_torch`` and
    ``stream`` are the runtime (the tests swap in the CPU emulation of the kernels)."""

    def __init__(self, launch=point_cupy.PointLaunch, to_cupy=_cupy_from,
                 to_torch=torch.from_dlpack, stream=_torch_stream):
        self.launch_type, self.to_cupy, self.to_torch, self.stream = \
            launch, to_cupy, to_torch, stream

    @staticmethod
    def prepare(table) -> CupyTable:
        return CupyTable(np.asarray(table))

    def launch(self, table: CupyTable, s: Tensor, t: Tensor, n_sources: int, n_targets: int,
               c_in: int | None):
        """The chunk's PointLaunch (host CSRs built once per chunk and call; ``c_in`` None:
        any width, else g's width)."""
        key = (s.data_ptr(), t.data_ptr(), len(s), n_sources, n_targets)
        L = table.launches.get(key)
        if L is None or (c_in is not None and L.c_in != c_in):
            L = table.launches[key] = self.launch_type(
                table.table, s.cpu().numpy(), t.cpu().numpy(), n_sources, n_targets,
                c_in=c_in, c_out=table.c_out)
        return L

    def _run(self, like: Tensor, fn, *xs):
        with self.stream(like.device):
            return self.to_torch(fn(*(self.to_cupy(x.contiguous()) for x in xs)))

    def contract(self, table, B, w, g, s, t, n_targets):
        L = self.launch(table, s, t, len(g), n_targets, g.shape[1])
        return self._run(g, L.contract, B, w, g)

    def contract_adjoint_features(self, table, B, w, gy, s, t, n_sources):
        L = self.launch(table, s, t, n_sources, len(gy), None)
        return self._run(gy, L.adjoint_features, B, w, gy[:, :table.c_out])

    def contract_adjoint_weights(self, table, B, gy, g, s, t, n_weights):
        L = self.launch(table, s, t, len(g), len(gy), g.shape[1])
        return self._run(g, lambda *a: L.adjoint_weights(*a, n_weights), B,
                         gy[:, :table.c_out], g)


@lru_cache(maxsize=None)
def _cupy_ready() -> bool:
    """CuPy importable and a CUDA device visible to it (checked once per process)."""
    try:
        return point_cupy.import_cupy().cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, CUDARuntimeError (no driver), …
        return False


def contract_ops(device: torch.device, dtype: torch.dtype | None = None):
    """The contract's operations for tensors on ``device`` — the single dispatch point.

    Returns a namespace with ``prepare(table) -> prepared table`` and the three functions of
    :mod:`cupysteer.backends.point_numpy` with its signatures (``contract(table, basis,
    weights, g, src, dst, n_targets)``, ``contract_adjoint_features(table, basis, weights,
    grad_y, src, dst, n_sources)``, ``contract_adjoint_weights(table, basis, grad_y, g, src,
    dst, n_weights)``) taking and returning tensors on ``device``; results may stop at the
    last channel the table reaches (the caller pads). CUDA tensors of float32/float64 (or
    ``dtype`` None) with CuPy importable and a device: :class:`CupyOps` (the CUDA kernels of
    :mod:`cupysteer.backends.point_cupy` through DLPack); otherwise torch ops."""
    if (device.type == "cuda" and (dtype is None or dtype in _KERNEL_DTYPES)
            and _cupy_ready()):
        return CupyOps()
    return _TORCH_OPS


class _PointContract(torch.autograd.Function):
    """y = contract(basis(x_src − x_dst), w, g) over edge chunks; explicit adjoints."""

    @staticmethod
    def forward(ctx, w, g, pos_host, src, dst, n_targets, basis, table, chunk):
        ops = contract_ops(g.device, g.dtype)
        y = g.new_zeros(n_targets, basis.out_type.size)
        for _, s, t, B in _chunks(basis, pos_host, src, dst, chunk, g):
            part = ops.contract(table, B, w, g, s, t, n_targets)
            y[:, :part.shape[1]] += part
        ctx.save_for_backward(w, g, src, dst)
        ctx.rest = (pos_host, basis, table, chunk)
        return y

    @staticmethod
    def backward(ctx, gy):
        w, g, src, dst = ctx.saved_tensors
        pos_host, basis, table, chunk = ctx.rest
        ops = contract_ops(g.device, g.dtype)
        gy = gy.contiguous()
        gw = torch.zeros_like(w) if ctx.needs_input_grad[0] else None
        gg = torch.zeros_like(g) if ctx.needs_input_grad[1] else None
        for _, s, t, B in _chunks(basis, pos_host, src, dst, chunk, g):
            if gg is not None:
                part = ops.contract_adjoint_features(table, B, w, gy, s, t, len(g))
                gg[:, :part.shape[1]] += part
            if gw is not None:
                gw += ops.contract_adjoint_weights(table, B, gy, g, s, t, len(w))
        return gw, gg, None, None, None, None, None, None, None


def _chunks(basis, pos_host, src, dst, chunk, like):
    s_host, t_host = src.cpu().numpy(), dst.cpu().numpy()
    for a in range(0, len(s_host), chunk):
        sl = slice(a, a + chunk)
        delta = pos_host[s_host[sl]] - pos_host[t_host[sl]]
        B = torch.from_numpy(basis.evaluate_basis(delta, np.float64)).to(like.device, like.dtype)
        yield a, src[sl], dst[sl], B


def point_contract(basis: PointConvBasis, w: Tensor, g: Tensor, positions: Tensor,
                   edge_index: Tensor, chunk_edges: int | None = None) -> Tensor:
    """Σ over edges of K̃(x_src − x_dst) g_src into the targets, (n, C_out) in irreps
    coordinates (``w`` the contract's weights ``weights[weight_index]``)."""
    if positions.requires_grad:
        raise ValueError("positions.requires_grad: gradients with respect to positions are "
                         "not supported by SteerablePointConv; pass positions.detach()")
    pos_host = positions.detach().to("cpu", torch.float64).numpy()
    chunk = DEFAULT_CHUNK_EDGES if chunk_edges is None else int(chunk_edges)
    table = contract_ops(g.device, g.dtype).prepare(basis.table)
    return _PointContract.apply(w, g, pos_host, edge_index[0], edge_index[1], len(g), basis,
                                table, chunk)


class SteerablePointConv(nn.Module):
    """Steerable point convolution ``in_type → out_type`` (see the module docstring).

    ``width`` and ``n_rings`` (or ``rings``), ``sigma`` and ``frequencies_cutoff`` as escnn's
    point convolutions (F(R) = 3R by default); ``aggregation`` ``"mean"`` (escnn's default)
    or ``"sum"``; ``chunk_edges`` bounds the edges processed at once (default 16384).
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, *, width=None, n_rings=None,
                 rings=None, sigma=None, frequencies_cutoff=None, bias: bool = True,
                 aggregation: str = "mean", chunk_edges: int | None = None,
                 dtype: torch.dtype = torch.float32, initialize: bool = True):
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if chunk_edges is not None and (isinstance(chunk_edges, bool) or not
                                        isinstance(chunk_edges, int) or chunk_edges < 1):
            raise ValueError(f"chunk_edges must be an integer >= 1 or None, got {chunk_edges!r}")
        self.basis = PointConvBasis(in_type, out_type, width=width, n_rings=n_rings,
                                    rings=rings, sigma=sigma,
                                    frequencies_cutoff=frequencies_cutoff)
        self.in_type, self.out_type = in_type, out_type
        self.aggregation, self.chunk_edges = aggregation, chunk_edges
        b = self.basis
        self.weights = nn.Parameter(torch.zeros(b.dim, dtype=dtype))
        self.bias = (nn.Parameter(torch.zeros(b.n_bias, dtype=dtype))
                     if bias and b.n_bias else None)
        buffers = dict(q_in=in_type.change_of_basis, q_out=out_type.change_of_basis,
                       bias_expansion=b.bias_expansion)
        for name, a in buffers.items():
            self.register_buffer(name, torch.tensor(np.array(a), dtype=dtype), persistent=False)
        self.register_buffer("weight_index", torch.as_tensor(np.array(b.weight_index)),
                             persistent=False)
        if initialize:
            self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            seed = int(torch.randint(0, 2 ** 62, ()).item())  # follows torch.manual_seed
            w = self.basis.init_weights(np.random.default_rng(seed))
            self.weights.copy_(torch.from_numpy(w))
            if self.bias is not None:
                self.bias.zero_()

    def _check(self, features: Tensor, positions: Tensor, edge_index: Tensor):
        d, c = self.in_type.group.space.dimension, self.in_type.size
        if not isinstance(features, Tensor) or features.ndim != 2 or features.shape[1] != c:
            raise ValueError(f"features must be a tensor (n, {c}), got "
                             f"{getattr(features, 'shape', type(features).__name__)}")
        if not isinstance(positions, Tensor) or tuple(positions.shape) != (len(features), d):
            raise ValueError(f"positions must be a tensor ({len(features)}, {d}) (one point "
                             f"per node), got {getattr(positions, 'shape', positions)}")
        if (not isinstance(edge_index, Tensor) or edge_index.ndim != 2
                or edge_index.shape[0] != 2 or edge_index.dtype not in (torch.int64, torch.int32)):
            raise ValueError(f"edge_index must be an integer tensor (2, E) (row 0 sources, row 1 "
                             f"targets), got {getattr(edge_index, 'shape', edge_index)}")
        if edge_index.numel() and (int(edge_index.min()) < 0
                                   or int(edge_index.max()) >= len(features)):
            raise ValueError(f"edge_index: node indices must lie in [0, {len(features)})")

    def forward(self, features: Tensor, positions: Tensor, edge_index: Tensor) -> Tensor:
        self._check(features, positions, edge_index)
        ei = edge_index.to(device=features.device, dtype=torch.int64)
        g = features @ self.q_in.to(features.dtype)
        w = self.weights.to(features.dtype)[self.weight_index]
        y = point_contract(self.basis, w, g, positions, ei, self.chunk_edges)
        out = y @ self.q_out.to(features.dtype).T
        if self.aggregation == "mean":
            deg = torch.bincount(ei[1], minlength=len(features)).clamp_(min=1)
            out = out / deg.to(out.dtype)[:, None]
        if self.bias is not None:
            out = out + self.bias_expansion.to(out.dtype) @ self.bias.to(out.dtype)
        return out

    def filters(self, delta: Tensor) -> Tensor:
        """The full filters (E, C_out, C_in) at relative positions ``delta`` (E, d), for
        tests and export (no gradient)."""
        w = self.weights.detach().cpu().double().numpy()
        K = self.basis.filters(w, delta.detach().cpu().double().numpy())
        return torch.from_numpy(K).to(self.weights.device, self.weights.dtype)

    def extra_repr(self):
        return (f"{self.in_type} → {self.out_type}, dim={self.basis.dim}, "
                f"rings={self.basis.settings.rings}, aggregation={self.aggregation!r}, "
                f"bias={self.bias is not None}")
