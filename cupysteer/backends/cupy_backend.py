"""CuPy backend, the fused launcher: the RawKernels of ``kernels/expand.cu`` on CUDA devices.

:class:`CupyExpander` packs its plans (:mod:`.packing`), compiles the kernel source of
:mod:`.kernel_source` into a ``cupy.RawModule`` and launches it with the configuration of
:mod:`.launch`. CuPy is imported lazily. Modules are compiled once per (device, options) and
the packed plan is uploaded once per device; launches go to the current CuPy stream. Every
shape, dtype, device and contiguity check happens in Python before a launch.

``method``: ``"fused"`` (default; the v2 kernels of ``kernels/expand_v2.cu``: block filling +
change of basis in one kernel, the adjoint parallel over point tiles with a fixed-order second
pass, dynamic shared memory up to the device's opt-in limit), ``"fused_v1"`` (the kernels of
``kernels/expand.cu``, 48 KiB per CUDA block, kept until a GPU run has compared the two) or
``"padded"`` (e2cnn's storage and one cuBLAS GEMM per block, the baseline kept for
benchmarks: :mod:`cupysteer.backends.padded`, which this class delegates to).

The CPU emulation of the tests (``tests/cuda_emulation/harness.py``) runs this very class on
the CPU: it overrides :meth:`CupyExpander._cupy` (a stand-in ``cupy`` over NumPy),
:meth:`CupyExpander._module` (the kernels built with g++) and lowers
:attr:`CupyExpander.shared_limit`.
"""
from __future__ import annotations

import math
import sys
import threading
from typing import Sequence

import numpy as np

from .._memory import check_device
from ..plan import ExpansionPlan
from . import padded
from .kernel_source import (
    COMPILE_OPTIONS,
    HALF_OPTIONS,
    KERNEL_FILES,
    adjoint_args,
    all_name_expressions,
    forward_args,
    kernel_source,
    name_expression,
)
from .launch import (
    SHARED_MEMORY_LIMIT,
    THREADS,
    LaunchConfig,
    PreparedLaunch,
    launch_config,
)
from .launch_v2 import SMS_DEFAULT, launch_config_v2, prepare_v2
from .packing import pack_plans

__all__ = ["CupyExpander", "is_available", "import_cupy", "compile_module", "METHODS",
           "device_limits"]

#: the methods of CupyExpander
METHODS = ("fused", "fused_v1", "padded")

_MODULES: dict = {}
_LOCK = threading.Lock()
_OUT_DTYPES = {"float16": "__half", "bfloat16": "__nv_bfloat16"}
# storage of the half-precision outputs (bfloat16 has no NumPy/CuPy dtype: raw 16 bits)
_STORAGE = {"__half": np.dtype(np.float16), "__nv_bfloat16": np.dtype(np.uint16)}


def import_cupy():
    """The ``cupy`` module (from ``sys.modules`` once imported: this is on the hot path)."""
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        return cupy
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('the CuPy backend needs CuPy with its CUDA toolkit: pip install '
                          '"cupy-cuda13x[ctk]>=14" (or cupy-cuda12x; in a checkout of '
                          'cupysteer: pip install -e ".[cuda13]")') from exc
    return cupy


def is_available() -> bool:
    """True if CuPy imports and sees at least one CUDA device."""
    try:
        cupy = import_cupy()
        return bool(cupy.is_available())
    except Exception:
        return False


def compile_module(cupy, half: bool, version: int = 1):
    """``cupy.RawModule`` of ``expand.cu`` (``version`` 2: ``expand_v2.cu``): the source,
    options and name expressions of :mod:`.kernel_source` (``half``: also the float16 /
    bfloat16 output kernels)."""
    name = KERNEL_FILES["fused" if version == 2 else "fused_v1"]
    return cupy.RawModule(code=kernel_source(name),
                          options=HALF_OPTIONS if half else COMPILE_OPTIONS,
                          name_expressions=all_name_expressions(half, version))


def _module(half: bool, version: int = 1):
    """The RawModule for the current device (memoised per device, options and version)."""
    cupy = import_cupy()
    dev = cupy.cuda.Device().id
    key = (dev, half, version)
    with _LOCK:
        if key not in _MODULES:
            _MODULES[key] = compile_module(cupy, half, version)
        return _MODULES[key]


def device_limits(cupy, dev: int) -> tuple:
    """(dynamic shared memory a kernel may opt in to per CUDA block, SM count) of device
    ``dev``, from its attributes ``MaxSharedMemoryPerBlockOptin`` / ``MultiProcessorCount``
    (48 KiB and 132 where the runtime does not say)."""
    attrs = getattr(cupy.cuda.Device(dev), "attributes", None) or {}
    return (max(SHARED_MEMORY_LIMIT, int(attrs.get("MaxSharedMemoryPerBlockOptin", 0))),
            int(attrs.get("MultiProcessorCount", SMS_DEFAULT)))


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
    #: the v2 kernels' limit (None: the device's opt-in limit, :func:`device_limits`)
    shared_limit_v2: int | None = None

    def __init__(self, plans: ExpansionPlan | Sequence[ExpansionPlan], dtype=np.float32,
                 method: str = "fused", padded_blocks: Sequence[list] | None = None):
        plans = [plans] if isinstance(plans, ExpansionPlan) else list(plans)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS} ('fused': the v2 kernels, "
                             f"'fused_v1': expand.cu), got {method!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.plans, self.method = plans, method
        self.packed = pack_plans(plans)
        self._padded_host = None
        if method == "padded":
            self._padded_host = padded.check_blocks(padded_blocks, len(plans))
        self._device_tables: dict = {}
        self._launches: dict = {}
        self._last_launch = None
        self._lock = threading.RLock()
        self._dim_shape, self._filter_shape = (self.packed.dim,), (self.packed.filter_size,)

    def __getstate__(self):
        state = dict(self.__dict__)
        for k in ("_lock", "_device_tables", "_launches", "_last_launch"):
            state.pop(k)
        return state  # device state is rebuilt on first use

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._device_tables, self._launches, self._last_launch = {}, {}, None
        self._lock = threading.RLock()

    # ---- the runtime: CuPy and the compiled kernels (the CPU emulation overrides both) --------
    def _cupy(self):
        """The ``cupy`` module."""
        return import_cupy()

    def _module(self, half: bool, version: int = 1):
        """The compiled kernels (``half``: the module with the half-precision outputs;
        ``version`` 2: expand_v2.cu)."""
        return _module(half, version)

    @property
    def version(self) -> int:
        """2 for method 'fused' (expand_v2.cu), 1 for 'fused_v1' (expand.cu)."""
        return 2 if self.method == "fused" else 1

    def config(self, kind: str, batch: int, dev: int | None = None):
        """The launch configuration of ``kind`` ('forward' or 'adjoint') for ``batch`` items
        (v2: on device ``dev``, default the current one, with its opt-in shared memory)."""
        if self.version == 1:
            return launch_config(self.packed, kind, batch, self.dtype.itemsize,
                                 threads=self.threads, shared_limit=self.shared_limit)
        cupy = self._cupy()
        optin, sms = device_limits(cupy, cupy.cuda.Device().id if dev is None else dev)
        limit = optin if self.shared_limit_v2 is None else min(optin, self.shared_limit_v2)
        return launch_config_v2(self.packed, kind, batch, self.dtype.itemsize,
                                threads=self.threads, shared_limit=limit, sms=sms)

    # ---- device state ----------------------------------------------------------------------
    def _tables(self):
        """The plan's tables on the current device: uploaded once, then synchronised, so
        launches on any stream may use them."""
        cupy = self._cupy()
        dev = cupy.cuda.Device().id
        with self._lock:
            return self._tables_locked(cupy, dev)

    def _tables_locked(self, cupy, dev):
        return self._device_tables.get(dev) or self._upload(cupy, dev)

    def _upload(self, cupy, dev):
        p = self.packed
        need = self.device_bytes + padded.upload_bytes(self._padded_host or (), self.dtype)
        check_device(cupy, need, f"uploading the expansion plan ({self.method})",
                     "expand fewer layers per CupyExpander" + (
                         ", or use method='fused'" if self.method == "padded" else ""))
        t = dict(fieldpairs=cupy.asarray(p.fieldpairs), blocks=cupy.asarray(p.blocks),
                 positions=cupy.asarray(p.positions),
                 **(dict(entries=cupy.asarray(p.entries), entry_ptr=cupy.asarray(p.entry_ptr))
                    if self.method == "fused" else {}),
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
        v2 = p.entries.nbytes + p.entry_ptr.nbytes if self.method == "fused" else 0
        return int(p.fieldpairs.nbytes + p.blocks.nbytes + p.positions.nbytes + v2
                   + (len(p.basis) + len(p.cob)) * item)

    def _check(self, x, name, shape_tail, dev):
        """``x`` as the kernels read it: a C-contiguous ``cupy.ndarray`` of this expander's
        dtype on device ``dev`` with shape ``shape_tail`` or (batch, *shape_tail)."""
        cupy = self._cupy()
        if not isinstance(x, cupy.ndarray):
            raise TypeError(f"{name}: the CuPy backend takes cupy.ndarray, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise ValueError(f"{name} has dtype {x.dtype}; this expander was built for "
                             f"{self.dtype} (build another one or cast with .astype)")
        if x.shape[-1:] != shape_tail or x.ndim not in (1, 2):
            raise ValueError(f"{name} must have shape {shape_tail} or (batch, *{shape_tail}), "
                             f"got {x.shape}")
        if x.device.id != dev:
            raise ValueError(f"{name} lives on device {x.device.id} but the current device is "
                             f"{dev}; use `with cupy.cuda.Device({x.device.id}):`")
        return x if x.flags.c_contiguous else cupy.ascontiguousarray(x)

    def check_out(self, out, shape, dtype, dev=None):
        """A caller-provided output array (e.g. memory of torch's allocator), checked before
        anything reads its shape as a layout: a ``cupy.ndarray`` of exactly ``shape`` and
        ``dtype``, C-contiguous (the kernels write it as one flat block: a strided view would
        be misread, and a copy would leave ``out`` unwritten), on the current device."""
        cupy = self._cupy()
        if not isinstance(out, cupy.ndarray):
            raise TypeError(f"out must be a cupy.ndarray (the weights are on the GPU), got "
                            f"{type(out).__module__}.{type(out).__name__}")
        if tuple(out.shape) != tuple(shape) or out.dtype != dtype:
            raise ValueError(f"out must have shape {tuple(shape)} and dtype {np.dtype(dtype)}, "
                             f"got {tuple(out.shape)} {out.dtype}")
        if not out.flags.c_contiguous:
            raise ValueError(f"out must be C-contiguous (strides {out.strides} given); pass a "
                             f"contiguous array, e.g. cupy.empty({tuple(shape)}, "
                             f"{np.dtype(dtype).name}), and copy from it if needed")
        dev = cupy.cuda.Device().id if dev is None else dev
        if out.device.id != dev:
            raise ValueError(f"out lives on device {out.device.id}, the current device is "
                             f"{dev}; use `with cupy.cuda.Device({out.device.id}):`")
        return out

    # ---- the host path: prepared once per (kind, output type, batch, device) ----------------
    def _launch(self, kind: str, out_name, batch: int, dev: int) -> PreparedLaunch:
        key = (kind, out_name, batch, dev, self.threads, self.shared_limit, self.shared_limit_v2)
        entry = self._launches.get(key)
        if entry is None:
            with self._lock:
                entry = self._launches.get(key) or self._prepare_launch(key)
        self._last_launch = entry
        return entry

    def _prepare_launch(self, key) -> PreparedLaunch:
        kind, out_name, batch, dev = key[:4]
        cupy = self._cupy()
        stream = cupy.cuda.get_current_stream()
        if getattr(stream, "is_capturing", None) is not None and stream.is_capturing():
            raise RuntimeError(
                f"the first {kind} launch of this expander (batch {batch}, device {dev}) is "
                f"inside a CUDA graph capture; the plan upload and kernel lookup must happen "
                f"before: call .prepare(batch={batch}) or run one step before capturing")
        t = self._tables_locked(cupy, dev)
        cfg = self.config(kind, batch)  # on the current device, dev
        p = self.packed
        out_dtype = self.dtype if out_name is None else _STORAGE[out_name]
        if self.version == 2:
            entry = self._prepare_v2(cupy, t, cfg, kind, out_name, out_dtype, batch)
            self._launches[key] = entry
            return entry
        data, out = object(), object()
        if kind == "forward":
            args = forward_args(data, p.dim, t["basis"], t["cob"], t["fieldpairs"], t["blocks"],
                                t["positions"], out, p.filter_size, cfg)
        else:
            args = adjoint_args(data, p.filter_size, t["basis"], t["cob"], t["fieldpairs"],
                                t["blocks"], t["positions"], out, p.dim, cfg)
        kern = self._module(out_name is not None).get_function(
            name_expression(kind, self.dtype, out_name))
        entry = PreparedLaunch(kern, cfg, args, data, out, out_dtype)
        self._launches[key] = entry
        return entry

    def _kernel_v2(self, kind, out_name, shared_mem):
        """The v2 kernel, opted in to at least ``shared_mem`` bytes of dynamic shared memory
        when that is above CUDA's 48 KiB default. The opt-in is an attribute of the kernel
        function in its (memoised, shared) module, not of this handle: it only ever grows, so
        a launch prepared earlier with more shared memory (another batch size, another layer)
        stays valid."""
        kern = self._module(out_name is not None, 2).get_function(
            name_expression(kind, self.dtype, out_name, version=2))
        if shared_mem > SHARED_MEMORY_LIMIT and shared_mem > kern.max_dynamic_shared_size_bytes:
            kern.max_dynamic_shared_size_bytes = int(shared_mem)
        return kern

    def _prepare_v2(self, cupy, t, cfg, kind, out_name, out_dtype, batch):
        def kernel(k, shared):  # the forward kernels ('forward', 'direct') take out_name
            return self._kernel_v2(k, out_name if k in ("forward", "direct") else None, shared)
        return prepare_v2(kernel, cupy, t, self.packed, cfg, kind, out_dtype, batch, self.dtype)

    def prepare(self, batch: int = 1, out_dtype=None) -> None:
        """Upload the plan and prepare the forward and adjoint launches for ``batch`` items on
        the current device now (e.g. before a CUDA graph capture, where the first use could
        not upload); later calls of that batch size only check and launch."""
        dev = self._cupy().cuda.Device().id
        self._launch("forward", self._out_name(out_dtype), batch, dev)
        self._launch("adjoint", None, batch, dev)

    @property
    def last_config(self) -> LaunchConfig | None:
        """The launch configuration of the latest fused launch (None before the first)."""
        return None if self._last_launch is None else self._last_launch.config

    def _out_name(self, out_dtype):
        if out_dtype is None:
            return None
        key = "bfloat16" if out_dtype == "bfloat16" else np.dtype(out_dtype).name
        if key not in _OUT_DTYPES or self.dtype != np.float32:
            raise ValueError(f"out_dtype must be 'float16' or 'bfloat16' with float32 "
                             f"weights, got {out_dtype!r}")
        if self.method == "padded":
            raise ValueError("out_dtype is only supported by method='fused' / 'fused_v1'")
        return _OUT_DTYPES[key]

    def _new(self, shape, dtype, what):
        """A new output array, after checking the device has room for it (only what this
        expander allocates is checked: a caller's ``out`` is already allocated). Checked
        before the first launch's preparation, so an absurd size fails before any upload."""
        cupy = self._cupy()
        check_device(cupy, math.prod(shape) * np.dtype(dtype).itemsize, what,
                     "pass fewer batch items per call")
        return lambda: cupy.empty(shape, dtype)

    # ---- forward / adjoint -------------------------------------------------------------------
    def expand(self, weights, out_dtype=None, out=None):
        """Weights (dim,) or (b, dim) → flat filters (filter_size,) or (b, filter_size).

        ``out_dtype`` 'float16'/'bfloat16' writes half-precision filters with float32
        accumulation (float32 weights only). ``out`` (same shape as the result, the weights'
        dtype, C-contiguous, on the current device) receives the filters instead of a new
        CuPy array; it is checked before anything else and is the array returned."""
        p = self.packed
        dev = self._cupy().cuda.Device().id
        w = self._check(weights, "weights", self._dim_shape, dev)
        shape = w.shape[:-1] + self._filter_shape
        if out is not None:
            if out_dtype is not None:
                raise ValueError("out and out_dtype cannot be combined")
            self.check_out(out, shape, self.dtype, dev)
        out_name = self._out_name(out_dtype)
        batch = 1 if w.ndim == 1 else w.shape[0]
        if self.method == "padded":
            return self._padded("expand", w, batch, out)
        if batch == 0:  # nothing to launch (CUDA refuses empty grids)
            return out if out is not None else self._cupy().empty(shape, self.dtype)
        new = None if out is not None else self._new(
            shape, _STORAGE.get(out_name, self.dtype),
            lambda: f"expand: {batch} filter(s) of {p.filter_size} entries")
        launch = self._launch("forward", out_name, batch, dev)
        out = new() if new is not None else out
        launch(w, out)
        return out

    def adjoint(self, grad_filter, out=None):
        """Flat filter gradient (filter_size,) or (b, filter_size) → weight gradient
        (written into ``out`` if given: same shape as the result, the gradient's dtype,
        C-contiguous, on the current device)."""
        p = self.packed
        dev = self._cupy().cuda.Device().id
        g = self._check(grad_filter, "filter_grad", self._filter_shape, dev)
        shape = g.shape[:-1] + self._dim_shape
        if out is not None:
            self.check_out(out, shape, self.dtype, dev)
        batch = 1 if g.ndim == 1 else g.shape[0]
        if self.method == "padded":
            return self._padded("adjoint", g, batch, out)
        if batch == 0:
            return out if out is not None else self._cupy().empty(shape, self.dtype)
        # every weight is written by exactly one CUDA block: a new output needs no zero fill
        new = None if out is not None else self._new(
            shape, self.dtype, lambda: f"adjoint: {batch} weight gradient(s) of {p.dim} entries")
        launch = self._launch("adjoint", None, batch, dev)
        out = new() if new is not None else out
        launch(g, out)
        return out

    def _padded(self, kind, x, batch, out):
        """The padded baseline (it allocates its result, then copies it into ``out``)."""
        cupy, p = self._cupy(), self.packed
        n = p.filter_size if kind == "expand" else p.dim
        if batch == 0:
            return out if out is not None else cupy.empty((0, n), self.dtype)
        check_device(cupy, batch * n * self.dtype.itemsize,
                     lambda: f"{kind} (padded): {batch} result(s) of {n} entries",
                     "pass fewer batch items per call")
        res = getattr(padded, kind)(cupy, p, self._tables()["padded"], x, batch, self.dtype)
        if out is not None:
            out[...] = res.reshape(out.shape)
            return out
        return res if x.ndim == 2 else res[0]

    def split(self, flat):
        """Views of a flat (b, filter_size) output as one (b, C_out, C_in, *k) array per plan."""
        b = flat.shape[0] if flat.ndim == 2 else None
        outs = []
        for off, shape in zip(self.packed.filter_offsets, self.packed.filter_shapes):
            n = int(np.prod(shape))
            part = flat[..., off:off + n]
            outs.append(part.reshape(((b,) if b is not None else ()) + shape))
        return outs
