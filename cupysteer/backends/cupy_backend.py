"""CuPy backend, the fused launcher: the RawKernels of ``kernels/expand.cu`` on CUDA devices.

:class:`CupyExpander` packs its plans (:mod:`.packing`), compiles the kernel source of
:mod:`.kernel_source` into a ``cupy.RawModule`` and launches it with the configuration of
:mod:`.launch`. CuPy is imported lazily. Modules are compiled once per (device, options) and
the packed plan is uploaded once per device; launches go to the current CuPy stream. Every
shape, dtype, device and contiguity check happens in Python before a launch.

``method``: ``"fused"`` (default; block filling + change of basis in one kernel) or
``"padded"`` (e2cnn's storage and one cuBLAS GEMM per block, the baseline kept for
benchmarks: :mod:`cupysteer.backends.padded`, which this class delegates to).

The CPU emulation of the tests (``tests/cuda_emulation/harness.py``) runs this very class on
the CPU: it overrides :meth:`CupyExpander._cupy` (a stand-in ``cupy`` over NumPy),
:meth:`CupyExpander._module` (the kernels built with g++) and lowers
:attr:`CupyExpander.shared_limit`.
"""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from .._memory import check_device
from ..plan import ExpansionPlan
from . import padded
from .kernel_source import (
    COMPILE_OPTIONS,
    HALF_OPTIONS,
    adjoint_args,
    all_name_expressions,
    forward_args,
    kernel_source,
    name_expression,
)
from .launch import SHARED_MEMORY_LIMIT, THREADS, LaunchConfig, launch_config
from .packing import pack_plans

__all__ = ["CupyExpander", "is_available", "import_cupy", "compile_module"]

_MODULES: dict = {}
_LOCK = threading.Lock()
_OUT_DTYPES = {"float16": "__half", "bfloat16": "__nv_bfloat16"}


def import_cupy():
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('the CuPy backend needs CuPy: pip install "cupysteer[cuda13]" '
                          '(or [cuda12])') from exc
    return cupy


def is_available() -> bool:
    """True if CuPy imports and sees at least one CUDA device."""
    try:
        cupy = import_cupy()
        return bool(cupy.is_available())
    except Exception:
        return False


def compile_module(cupy, half: bool):
    """``cupy.RawModule`` of ``expand.cu``: the source, options and name expressions of
    :mod:`.kernel_source` (``half``: also the float16 / bfloat16 output kernels)."""
    return cupy.RawModule(code=kernel_source("expand.cu"),
                          options=HALF_OPTIONS if half else COMPILE_OPTIONS,
                          name_expressions=all_name_expressions(half))


def _module(half: bool):
    """The RawModule for the current device (memoised per device and options)."""
    cupy = import_cupy()
    dev = cupy.cuda.Device().id
    key = (dev, half)
    with _LOCK:
        if key not in _MODULES:
            _MODULES[key] = compile_module(cupy, half)
        return _MODULES[key]


class CupyExpander:
    """Expansion of one or more plans (a whole network in one launch) on the GPU.

    ``method="padded"`` (with ``padded_blocks``, one ``LayerBasis.padded_blocks()`` list per
    plan) runs the baseline of :mod:`cupysteer.backends.padded` instead of the fused kernels.
    """

    #: threads per CUDA block and dynamic shared memory per CUDA block the launches may use
    #: (:func:`~cupysteer.backends.launch.launch_config`); an instance may lower
    #: ``shared_limit`` (the CPU emulation does, to force several tiles per field pair)
    threads: int = THREADS
    shared_limit: int = SHARED_MEMORY_LIMIT

    def __init__(self, plans: ExpansionPlan | Sequence[ExpansionPlan], dtype=np.float32,
                 method: str = "fused", padded_blocks: Sequence[list] | None = None):
        plans = [plans] if isinstance(plans, ExpansionPlan) else list(plans)
        if method not in ("fused", "padded"):
            raise ValueError(f"method must be 'fused' or 'padded', got {method!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.plans, self.method = plans, method
        self.packed = pack_plans(plans)
        self._padded_host = None
        if method == "padded":
            self._padded_host = padded.check_blocks(padded_blocks, len(plans))
        self._device_tables: dict = {}
        self._lock = threading.Lock()

    # ---- the runtime: CuPy and the compiled kernels (the CPU emulation overrides both) --------
    def _cupy(self):
        """The ``cupy`` module."""
        return import_cupy()

    def _module(self, half: bool):
        """The compiled kernels (``half``: the module with the half-precision outputs)."""
        return _module(half)

    def config(self, kind: str, batch: int) -> LaunchConfig:
        """The launch configuration of ``kind`` ('forward' or 'adjoint') for ``batch`` items."""
        return launch_config(self.packed, kind, batch, self.dtype.itemsize,
                             threads=self.threads, shared_limit=self.shared_limit)

    # ---- device state ----------------------------------------------------------------------
    def _tables(self):
        """The plan's tables on the current device: uploaded once, then synchronised, so
        launches on any stream may use them."""
        cupy = self._cupy()
        dev = cupy.cuda.Device().id
        with self._lock:
            return self._device_tables.get(dev) or self._upload(cupy, dev)

    def _upload(self, cupy, dev):
        p = self.packed
        need = self.device_bytes + padded.upload_bytes(self._padded_host or (), self.dtype)
        check_device(cupy, need, f"uploading the expansion plan ({self.method})",
                     "expand fewer layers per CupyExpander" + (
                         ", or use method='fused'" if self.method == "padded" else ""))
        t = dict(fieldpairs=cupy.asarray(p.fieldpairs), blocks=cupy.asarray(p.blocks),
                 positions=cupy.asarray(p.positions),
                 basis=cupy.asarray(p.basis.astype(self.dtype)),
                 cob=cupy.asarray(p.cob.astype(self.dtype)))
        if self._padded_host is not None:
            t["padded"] = padded.upload(cupy, self._padded_host, self.dtype)
        cupy.cuda.get_current_stream().synchronize()  # the copies are asynchronous
        self._device_tables[dev] = t
        return t

    @property
    def device_bytes(self) -> int:
        """Bytes of the plan tables on one device (the fused method's whole footprint)."""
        p = self.packed
        item = self.dtype.itemsize
        return int(p.fieldpairs.nbytes + p.blocks.nbytes + p.positions.nbytes
                   + (len(p.basis) + len(p.cob)) * item)

    def _check(self, x, name, shape_tail):
        cupy = self._cupy()
        if not isinstance(x, cupy.ndarray):
            raise TypeError(f"{name}: the CuPy backend takes cupy.ndarray, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise ValueError(f"{name} has dtype {x.dtype}; this expander was built for "
                             f"{self.dtype} (build another one or cast with .astype)")
        if x.shape[-len(shape_tail):] != shape_tail or x.ndim not in (len(shape_tail),
                                                                        len(shape_tail) + 1):
            raise ValueError(f"{name} must have shape {shape_tail} or (batch, *{shape_tail}), "
                             f"got {x.shape}")
        if x.device.id != cupy.cuda.Device().id:
            raise ValueError(f"{name} lives on device {x.device.id} but the current device is "
                             f"{cupy.cuda.Device().id}; use "
                             f"`with cupy.cuda.Device({x.device.id}):`")
        return cupy.ascontiguousarray(x)

    # ---- forward / adjoint -------------------------------------------------------------------
    def _check_out(self, out, shape, dtype):
        """A caller-provided output array (e.g. memory of torch's allocator): exact shape and
        dtype, C-contiguous, on the current device."""
        cupy = self._cupy()
        if not isinstance(out, cupy.ndarray):
            raise TypeError(f"out: expected a cupy.ndarray, got {type(out).__name__}")
        if out.shape != shape or out.dtype != dtype:
            raise ValueError(f"out must have shape {shape} and dtype {np.dtype(dtype)}, got "
                             f"{out.shape} {out.dtype}")
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous")
        if out.device.id != cupy.cuda.Device().id:
            raise ValueError(f"out lives on device {out.device.id}, the current device is "
                             f"{cupy.cuda.Device().id}")
        return out

    def expand(self, weights, out_dtype=None, out=None):
        """Weights (dim,) or (b, dim) → flat filters (filter_size,) or (b, filter_size).

        ``out_dtype`` 'float16'/'bfloat16' writes half-precision filters with float32
        accumulation (float32 weights only). ``out`` (same shape as the result, the weights'
        dtype) receives the filters instead of a new CuPy array."""
        cupy = self._cupy()
        p = self.packed
        w = self._check(weights, "weights", (p.dim,))
        batch = 1 if w.ndim == 1 else w.shape[0]
        given = out
        if given is not None:
            if out_dtype is not None:
                raise ValueError("out and out_dtype cannot be combined")
            self._check_out(given, w.shape[:-1] + (p.filter_size,), self.dtype)
        if batch == 0:  # nothing to launch (CUDA refuses empty grids)
            return given if given is not None else cupy.empty((0, p.filter_size), self.dtype)
        out_item = self.dtype.itemsize if out_dtype is None else 2
        check_device(cupy, batch * p.filter_size * out_item,
                     lambda: f"expand: {batch} filter(s) of {p.filter_size} entries",
                     "expand fewer batch items per call")
        t = self._tables()
        if self.method == "padded":
            if out_dtype is not None:
                raise ValueError("out_dtype is only supported by method='fused'")
            out = padded.expand(cupy, p, t["padded"], w, batch, self.dtype)
            if given is not None:
                given[...] = out.reshape(given.shape)
                return given
            return out if w.ndim == 2 else out[0]
        out_name = None
        if out_dtype is not None:
            key = np.dtype(out_dtype).name if out_dtype != "bfloat16" else "bfloat16"
            if key not in _OUT_DTYPES or self.dtype != np.float32:
                raise ValueError(f"out_dtype must be 'float16' or 'bfloat16' with float32 "
                                 f"weights, got {out_dtype!r}")
            out_name = _OUT_DTYPES[key]
        cfg = self.config("forward", batch)
        if given is not None:
            out = given.reshape(batch, p.filter_size)
        elif out_name is None:
            out = cupy.empty((batch, p.filter_size), self.dtype)
        elif out_name == "__half":
            out = cupy.empty((batch, p.filter_size), cupy.float16)
        else:  # bfloat16 has no CuPy dtype: raw 16-bit storage
            out = cupy.empty((batch, p.filter_size), cupy.uint16)
        kern = self._module(out_name is not None).get_function(
            name_expression("forward", self.dtype, out_name))
        kern(cfg.grid, cfg.block, forward_args(w, p.dim, t["basis"], t["cob"], t["fieldpairs"],
                                               t["blocks"], t["positions"], out,
                                               p.filter_size, cfg), shared_mem=cfg.shared_mem)
        if given is not None:
            return given
        return out if w.ndim == 2 else out[0]

    def adjoint(self, grad_filter, out=None):
        """Flat filter gradient (filter_size,) or (b, filter_size) → weight gradient
        (written into ``out`` if given: same shape as the result, the gradient's dtype)."""
        cupy = self._cupy()
        p = self.packed
        g = self._check(grad_filter, "filter_grad", (p.filter_size,))
        batch = 1 if g.ndim == 1 else g.shape[0]
        given = out
        if given is not None:
            self._check_out(given, g.shape[:-1] + (p.dim,), self.dtype)
        if batch == 0:
            return given if given is not None else cupy.empty((0, p.dim), self.dtype)
        check_device(cupy, batch * p.dim * self.dtype.itemsize,
                     lambda: f"adjoint: {batch} weight gradient(s) of {p.dim} entries",
                     "pass fewer batch items per call")
        t = self._tables()
        if self.method == "padded":
            out = padded.adjoint(cupy, p, t["padded"], g, batch, self.dtype)
            if given is not None:
                given[...] = out.reshape(given.shape)
                return given
            return out if g.ndim == 2 else out[0]
        cfg = self.config("adjoint", batch)
        if given is not None:
            out = given.reshape(batch, p.dim)
            out.fill(0)
        else:
            out = cupy.zeros((batch, p.dim), self.dtype)
        kern = self._module(False).get_function(name_expression("adjoint", self.dtype))
        kern(cfg.grid, cfg.block, adjoint_args(g, p.filter_size, t["basis"], t["cob"],
                                               t["fieldpairs"], t["blocks"], t["positions"],
                                               out, p.dim, cfg, p), shared_mem=cfg.shared_mem)
        if given is not None:
            return given
        return out if g.ndim == 2 else out[0]

    def split(self, flat):
        """Views of a flat (b, filter_size) output as one (b, C_out, C_in, *k) array per plan."""
        b = flat.shape[0] if flat.ndim == 2 else None
        outs = []
        for off, shape in zip(self.packed.filter_offsets, self.packed.filter_shapes):
            n = int(np.prod(shape))
            part = flat[..., off:off + n]
            outs.append(part.reshape(((b,) if b is not None else ()) + shape))
        return outs
