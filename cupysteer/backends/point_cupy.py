"""CuPy backend of steerable point convolutions: the RawKernels of ``kernels/point_conv.cu``.

Per-edge filters, given block by block in the irreps basis, are contracted on the fly and
fused with the reduction to targets; no E × C_out × C_in tensor and no float atomics. A
block table is int64 (n_blocks, 7) with the columns :data:`BLOCK_COLUMNS`; for edge e,

    K̃_b[e] = Σ_k weights[weight_offset + k] · basis[e, basis_offset + (k·d_out + r)·d_in + c]

    contract:          y[dst[e], out_offset + r] += Σ_c K̃_b[e][r, c] g[src[e], in_offset + c]
    adjoint_features:  grad_g[src[e], in_offset + c] += Σ_r K̃_b[e][r, c] grad_y[dst[e], …]
    adjoint_weights:   grad_w[weight_offset + k] += Σ_{r,c} basis[e, …] grad_y[…] g[…]

(the same contract as the NumPy reference, :mod:`cupysteer.backends.point_numpy`).

:class:`PointLaunch` is the prepared form: the graph's CSRs (edges stably sorted by target
for ``contract``, by source for the feature adjoint, so each node's edges are in increasing
edge order), the per-channel block lists, the weight slots and the launch configurations,
uploaded once per device; each call then checks its arrays and launches one kernel (two for
the weight gradient). The module functions build a :class:`PointLaunch` per call.

``basis`` is a sampled basis (E, n_entries), or a
:class:`~cupysteer.backends.point_harmonics.HarmonicSample` (Gaussian rings × angular
harmonics at the edges' relative positions) which the ``*_2d`` kernels evaluate on the fly:
then not even the per-edge basis is stored. Host tables: :mod:`.point_tables`.

Deterministic: every output element is computed by one CUDA block in a fixed order
(``kernels/point_conv.cu``), so two runs with the same inputs are bit-identical. CuPy is
imported lazily; every check happens in Python before a launch. The CPU emulation of the
tests overrides :meth:`PointLaunch._cupy` and :meth:`PointLaunch._module`.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .cupy_backend import import_cupy
from .kernel_source import kernel_dir
from .point_harmonics import HarmonicSample
from .point_numpy import BLOCK_COLUMNS
from .point_tables import (
    CHANNEL_COLUMNS,
    THREADS,
    PointConfig,
    channel_table,
    check_table,
    csr,
    nodes,
    segment_config,
)

__all__ = ["BLOCK_COLUMNS", "CHANNEL_COLUMNS", "PointLaunch", "PointConfig", "contract",
           "contract_adjoint_features", "contract_adjoint_weights", "point_source",
           "point_name_expressions", "POINT_OPTIONS", "THREADS"]

_COL = {name: i for i, name in enumerate(BLOCK_COLUMNS)}
#: compile options of the module (what NVRTC, nvcc and the emulation use)
POINT_OPTIONS = ("-std=c++17",)
#: the weight adjoint's first pass: at least MIN_EDGE_TILE edges per tile, at most
#: MAX_EDGE_TILES tiles and MAX_PARTIALS partial sums (tiles × weight slots: bounded memory)
MIN_EDGE_TILE, MAX_EDGE_TILES, MAX_PARTIALS = 32, 4096, 1 << 22
_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_MODULES: dict = {}
_LOCK = threading.Lock()


def point_defines() -> str:
    """``#define PB_<COLUMN> i`` for :data:`BLOCK_COLUMNS`, ``CH_<COLUMN> i`` for
    :data:`CHANNEL_COLUMNS`, and ``PB_FIELDS`` / ``CH_FIELDS``."""
    lines = []
    for prefix, cols in (("PB", BLOCK_COLUMNS), ("CH", CHANNEL_COLUMNS)):
        lines += [f"#define {prefix}_{name.upper()} {i}" for i, name in enumerate(cols)]
        lines.append(f"#define {prefix}_FIELDS {len(cols)}")
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=None)
def point_source() -> str:
    """``kernels/point_conv.cu`` with ``common.cuh`` inlined, after :func:`point_defines`."""
    root = kernel_dir()
    text = (root / "point_conv.cu").read_text()
    text = re.sub(r'^#include "([^"]+)"\s*$', lambda m: (root / m.group(1)).read_text(), text,
                  flags=re.M)
    return point_defines() + text


def _ctype(dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype not in _CTYPE:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return _CTYPE[dtype]


def point_name_expressions() -> list[str]:
    """Every template instantiation the module holds (float and double)."""
    return [f"{k}<{t}, {t}>" for t in ("float", "double")
            for k in ("point_segments", "point_weight_partials", "point_weight_reduce",
                      "point_segments_2d", "point_weight_partials_2d")]


def compile_point_module(cupy):
    """``cupy.RawModule`` of :func:`point_source` with every instantiation."""
    return cupy.RawModule(code=point_source(), options=POINT_OPTIONS,
                          name_expressions=point_name_expressions())


class _Basis(NamedTuple):
    """The basis as the kernels take it: kernel-name suffix, dtype, arguments."""
    suffix: str
    dtype: np.dtype
    args: tuple


class PointLaunch:
    """The prepared kernels of one graph and block table (see the module docstring).

    ``table`` (n_blocks, 7) int64, ``src`` / ``dst`` (E,) integer, ``n_sources`` /
    ``n_targets`` the node counts; ``c_in`` / ``c_out`` the feature widths (default: the
    widths the table covers). Index arrays may be NumPy or CuPy; they are checked once here.
    """

    threads: int = THREADS

    def __init__(self, table, src, dst, n_sources: int, n_targets: int,
                 c_in: int | None = None, c_out: int | None = None):
        t = self.table = check_table(table)
        self.n_sources, self.n_targets = int(n_sources), int(n_targets)
        self.src = nodes(src, "src", self.n_sources, "n_sources")
        self.dst = nodes(dst, "dst", self.n_targets, "n_targets")
        if self.src.shape != self.dst.shape:
            raise ValueError(f"src and dst must have the same length, got {len(self.src)} and "
                             f"{len(self.dst)}")
        self.n_edges = len(self.src)
        self.c_in = self._width(c_in, "c_in", "in_offset", "d_in")
        self.c_out = self._width(c_out, "c_out", "out_offset", "d_out")
        nb, d_out, d_in = (t[:, _COL[k]] for k in ("n_basis", "d_out", "d_in"))
        self.n_entries = int((t[:, _COL["basis_offset"]] + nb * d_out * d_in).max(initial=0))
        self.min_weights = int((t[:, _COL["weight_offset"]] + nb).max(initial=0))
        # CSRs of the graph and of the channels
        self.tgt_ptr, self.tgt_edges = csr(self.dst, self.n_targets)
        self.src_ptr, self.src_edges = csr(self.src, self.n_sources)
        self.row_ptr, self.rows = channel_table(t, False, self.c_out)
        self.col_ptr, self.cols = channel_table(t, True, self.c_in)
        # weight slots (b, k) and where they go
        self.slots = np.stack([np.repeat(np.arange(len(t), dtype=np.int64), nb),
                               np.arange(int(nb.sum()), dtype=np.int64)
                               - np.repeat(np.cumsum(nb) - nb, nb)], 1).reshape(-1, 2)
        self.slot_weight = t[self.slots[:, 0], _COL["weight_offset"]] + self.slots[:, 1]
        self.slot_size = d_out[self.slots[:, 0]] * d_in[self.slots[:, 0]]
        deg = lambda ptr: int(np.diff(ptr).max(initial=0))  # noqa: E731
        self.max_in_degree, self.max_out_degree = deg(self.tgt_ptr), deg(self.src_ptr)
        tiles = min(MAX_EDGE_TILES, max(1, MAX_PARTIALS // max(len(self.slots), 1)))
        self.edge_tile = max(MIN_EDGE_TILE, -(-self.n_edges // tiles))
        self.n_tiles = -(-self.n_edges // self.edge_tile)
        self._device: dict = {}
        self._lock = threading.RLock()

    def _width(self, given, name, offset_col, size_col) -> int:
        need = int((self.table[:, _COL[offset_col]] + self.table[:, _COL[size_col]]).max(initial=0))
        if given is None:
            return need
        if int(given) < need:
            raise ValueError(f"{name} = {given} but the table's blocks reach channel {need}; "
                             f"pass {name} >= {need}")
        return int(given)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_device"), state.pop("_lock")
        return state  # device tables are uploaded again on first use

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._device, self._lock = {}, threading.RLock()

    # ---- runtime (the CPU emulation overrides both) --------------------------------------------
    def _cupy(self):
        return import_cupy()

    def _module(self):
        cupy = self._cupy()
        key = cupy.cuda.Device().id
        with _LOCK:
            if key not in _MODULES:
                _MODULES[key] = compile_point_module(cupy)
            return _MODULES[key]

    def config(self, kind: str, dtype) -> PointConfig:
        """The ``point_segments`` launch of ``kind`` ('forward' or 'features')."""
        item = np.dtype(dtype).itemsize
        if kind == "forward":
            return segment_config(self.n_targets, self.c_out, self.max_in_degree, item,
                                  self.threads)
        return segment_config(self.n_sources, self.c_in, self.max_out_degree, item, self.threads)

    def tables(self) -> dict:
        """The index tables on the current device (uploaded once per device)."""
        cupy = self._cupy()
        dev = cupy.cuda.Device().id
        with self._lock:
            if dev not in self._device:
                names = ("table", "src", "dst", "tgt_ptr", "tgt_edges", "src_ptr", "src_edges",
                         "row_ptr", "rows", "col_ptr", "cols", "slots")
                d = {k: cupy.asarray(getattr(self, k)) for k in names}
                cupy.cuda.get_current_stream().synchronize()
                self._device[dev] = d
            return self._device[dev]

    def _weightcsr(self, n_weights: int) -> tuple:
        """CSR weight → slots on the current device (once per n_weights and device)."""
        d, key = self.tables(), ("w", n_weights)
        with self._lock:
            if key not in d:
                cupy = self._cupy()
                ptr, order = csr(self.slot_weight, n_weights)
                d[key] = (cupy.asarray(ptr), cupy.asarray(order))
                cupy.cuda.get_current_stream().synchronize()
            return d[key]

    # ---- checks --------------------------------------------------------------------------------
    def _array(self, x, name, shape, dtype=None):
        cupy = self._cupy()
        if not isinstance(x, cupy.ndarray):
            raise TypeError(f"{name}: the CuPy backend takes cupy.ndarray, got "
                            f"{type(x).__module__}.{type(x).__name__}")
        want = np.dtype(x.dtype if dtype is None else dtype)
        if want not in _CTYPE:
            raise ValueError(f"{name} must be float32 or float64, got {x.dtype}")
        if x.dtype != want:
            raise ValueError(f"{name} has dtype {x.dtype} but the other arrays are {want}; "
                             f"cast with .astype({want.name})")
        if tuple(x.shape) != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")
        dev = cupy.cuda.Device().id
        if x.device.id != dev:
            raise ValueError(f"{name} lives on device {x.device.id} but the current device is "
                             f"{dev}; use `with cupy.cuda.Device({x.device.id}):`")
        return x if x.flags.c_contiguous else cupy.ascontiguousarray(x)

    def _basis(self, basis):
        """The kernels' basis arguments: a sampled basis (E, ≥ n_entries), or a
        :class:`~cupysteer.backends.point_harmonics.HarmonicSample` evaluated in the kernels
        (the ``*_2d`` kernels)."""
        cupy = self._cupy()
        if isinstance(basis, HarmonicSample):
            return self._harmonic(basis)
        shape = getattr(basis, "shape", None)
        if (isinstance(basis, cupy.ndarray) and len(shape) == 2
                and shape[0] == self.n_edges and shape[1] >= self.n_entries):
            x = self._array(basis, "basis", shape)
        else:
            x = self._array(basis, "basis", (self.n_edges, self.n_entries))
        return _Basis("", x.dtype, (x, np.int64(x.shape[1])))

    def _harmonic(self, sample):
        h, dt = sample.harmonics, np.dtype(sample.delta.dtype)
        delta = self._array(sample.delta, "delta", (self.n_edges, 2))
        if h.n_entries < self.n_entries:
            raise ValueError(f"the harmonic basis has {h.n_entries} entries but the table reads "
                             f"{self.n_entries}")
        with self._lock:
            key = ("harmonics", id(h), dt, self._cupy().cuda.Device().id)
            entry = self._device.get(key)
            if entry is None or entry[0] is not h:  # (keeps h alive: its id stays unique)
                size = self.slot_size
                col0 = self.table[self.slots[:, 0], _COL["basis_offset"]] + self.slots[:, 1] * size
                cols = np.repeat(col0, size) + np.arange(int(size.sum())) \
                    - np.repeat(np.cumsum(size) - size, size)
                if (h.entry_element[cols] != np.repeat(h.entry_element[col0], size)).any():
                    raise ValueError("the harmonic basis: the entries of one (block, basis "
                                     "element) must share one element (entry_element)")
                cupy = self._cupy()
                entry = (h, tuple(cupy.asarray(a) for a in (
                    h.elements.astype(dt), h.entry_element, h.entry_coef.astype(dt))))
                cupy.cuda.get_current_stream().synchronize()
                old = [k for k in self._device if isinstance(k, tuple) and k[0] == "harmonics"]
                for k in old[:max(0, len(old) - 7)]:  # keep the 8 latest (build one
                    del self._device[k]       # RadialHarmonics, call .at(delta) per step)
                self._device[key] = entry
        elem, ee, ec = entry[1]
        return _Basis("_2d", dt, (delta, dt.type(h.origin), elem, ee, ec))

    def _weights(self, weights, dtype):
        n = getattr(weights, "shape", (0,))
        if len(n) == 1 and n[0] >= self.min_weights:
            return self._array(weights, "weights", n, dtype)
        return self._array(weights, "weights", (self.min_weights,), dtype)

    # ---- the three contractions ----------------------------------------------------------------
    def _segments(self, kind, basis, weights, x, x_width, out_width, n_nodes):
        cupy = self._cupy()
        dt = basis.dtype
        out = cupy.empty((n_nodes, out_width), dt)
        if n_nodes == 0 or out_width == 0:
            return out
        t = self.tables()
        cfg = self.config(kind, dt)
        fwd = kind == "forward"
        c = _ctype(dt)
        kern = self._module().get_function(f"point_segments{basis.suffix}<{c}, {c}>")
        args = (t["row_ptr" if fwd else "col_ptr"], t["rows" if fwd else "cols"], *basis.args,
                weights, x, np.int64(x_width), t["tgt_ptr" if fwd else "src_ptr"],
                t["tgt_edges" if fwd else "src_edges"], t["src" if fwd else "dst"], out,
                np.int64(n_nodes), np.int64(out_width), np.int32(cfg.nodes_per_block),
                np.int32(cfg.split))
        kern(cfg.grid, cfg.block, args, shared_mem=cfg.shared_mem)
        return out

    def contract(self, basis, weights, g):
        """y (n_targets, c_out) = Σ over each target's edges of K̃[e] g[src[e]]."""
        basis = self._basis(basis)
        weights = self._weights(weights, basis.dtype)
        g = self._array(g, "g", (self.n_sources, self.c_in), basis.dtype)
        return self._segments("forward", basis, weights, g, self.c_in, self.c_out,
                              self.n_targets)

    def adjoint_features(self, basis, weights, grad_y):
        """grad_g (n_sources, c_in) = Σ over each source's edges of K̃[e]ᵀ grad_y[dst[e]]."""
        basis = self._basis(basis)
        weights = self._weights(weights, basis.dtype)
        grad_y = self._array(grad_y, "grad_y", (self.n_targets, self.c_out), basis.dtype)
        return self._segments("features", basis, weights, grad_y, self.c_out, self.c_in,
                              self.n_sources)

    def adjoint_weights(self, basis, grad_y, g, n_weights: int | None = None):
        """grad_w (n_weights,): two deterministic passes (edge tiles, then tiles in order)."""
        n_weights = self.min_weights if n_weights is None else int(n_weights)
        if n_weights < self.min_weights:
            raise ValueError(f"n_weights = {n_weights} but the table's blocks use weights up to "
                             f"index {self.min_weights - 1}; pass n_weights >= {self.min_weights}")
        basis = self._basis(basis)
        dt = basis.dtype
        grad_y = self._array(grad_y, "grad_y", (self.n_targets, self.c_out), dt)
        g = self._array(g, "g", (self.n_sources, self.c_in), dt)
        cupy, c = self._cupy(), _ctype(dt)
        out = cupy.empty((n_weights,), dt)
        if n_weights == 0:
            return out
        n_slots = len(self.slots)
        mod = self._module()
        partial = cupy.empty((max(self.n_tiles, 1), max(n_slots, 1)), dt)
        t = self.tables()
        if self.n_tiles and n_slots:
            mod.get_function(f"point_weight_partials{basis.suffix}<{c}, {c}>")(
                (self.n_tiles, 1, 1), (self.threads, 1, 1),
                (t["table"], t["slots"], np.int64(n_slots), *basis.args, grad_y,
                 np.int64(self.c_out), g, np.int64(self.c_in), t["src"], t["dst"],
                 np.int64(self.n_edges), np.int64(self.edge_tile), partial))
        w_ptr, w_slots = self._weightcsr(n_weights)
        mod.get_function(f"point_weight_reduce<{c}, {c}>")(
            (-(-n_weights // self.threads), 1, 1), (self.threads, 1, 1),
            (partial, np.int64(n_slots), np.int64(self.n_tiles), w_ptr, w_slots, out,
             np.int64(n_weights)))
        return out


def _n(x, axis, name):
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"{name} must be two-dimensional, got shape {shape}")
    return int(shape[axis])


def contract(table, basis, weights, g, src, dst, n_targets):
    """y (n_targets, C_out): y[dst[e], out_offset:+d_out] += K̃_b[e] @ g[src[e], in_offset:+d_in]."""
    p = PointLaunch(table, src, dst, _n(g, 0, "g"), n_targets, c_in=_n(g, 1, "g"))
    return p.contract(basis, weights, g)


def contract_adjoint_features(table, basis, weights, grad_y, src, dst, n_sources):
    """grad_g (n_sources, C_in), the adjoint of :func:`contract` in g."""
    p = PointLaunch(table, src, dst, n_sources, _n(grad_y, 0, "grad_y"),
                    c_out=_n(grad_y, 1, "grad_y"))
    return p.adjoint_features(basis, weights, grad_y)


def contract_adjoint_weights(table, basis, grad_y, g, src, dst, n_weights):
    """grad_w (n_weights,), the adjoint of :func:`contract` in the weights."""
    p = PointLaunch(table, src, dst, _n(g, 0, "g"), _n(grad_y, 0, "grad_y"),
                    c_in=_n(g, 1, "g"), c_out=_n(grad_y, 1, "grad_y"))
    return p.adjoint_weights(basis, grad_y, g, n_weights)
