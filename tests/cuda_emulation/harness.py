"""CPU emulation of cupysteer's CUDA kernels, driven by the CuPy backend's own launcher.

The kernels are built by :mod:`toolchain` (g++ and ``cuda_cpu_shim.h``) and run by
:mod:`emulator` (a worker subprocess); their API is re-exported here. What makes a pass here
say something about the GPU path is that everything else is the real code:

* the source text, compile options and template instantiations come from
  :func:`cupysteer.backends.cupy_backend.compile_module` (``kernel_source("expand.cu")``
  with its generated ``FP_…`` / ``BLK_…`` column defines, ``COMPILE_OPTIONS`` /
  ``HALF_OPTIONS``, ``all_name_expressions``), handed to a stand-in ``RawModule``;
* the launch is :class:`~cupysteer.backends.cupy_backend.CupyExpander` itself —
  :class:`CpuExpander` subclasses it and only swaps the runtime: :class:`HostCupy`, the bits of
  the ``cupy`` module it uses (``ndarray`` backed by NumPy, ``empty`` / ``zeros`` / ``asarray``,
  device and stream stubs, ``RawModule`` launching the g++-built library), and the module of
  emulated kernels. Packing, launch configuration, argument lists, output allocation and the
  checks before a launch are the backend's own, for ``method="fused"`` (expand_v2.cu),
  ``"fused_v1"`` (expand.cu; :class:`CpuExpander`'s default) and ``"padded"``. A
  :class:`HostCupy` built with ``arch`` poses as a device of that compute capability: its
  ``attributes`` give the opt-in shared memory per block, and kernels refuse opt-in values
  and launches above it, as CUDA does.

Two deliberate differences make the check stricter: every output a kernel is handed is filled
with NaN right before the launch (so an element the kernel fails to write shows up), and
``shared_limit`` / ``threads`` can be lowered to force several tiles per field pair.
"""
from __future__ import annotations

import os
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cupysteer.backends.cupy_backend import CupyExpander, compile_module

from .emulator import (
    MAX_SHARED_DEFAULT,
    MAX_SHARED_OPTIN,
    SANITIZER_MARKERS,
    EmulatedFunction,
    EmulatedModule,
    EmulationTimeout,
    LaunchError,
    SanitizerError,
    Worker,
    check_args,
    parse_signature,
    worker,
)
from .toolchain import (
    _RUNTIME,
    SANITIZERS,
    Build,
    EmulationError,
    build,
    cache_dir,
    cuda_include_dirs,
    emulation_source,
    gxx,
    rewrite_extern_shared,
    sanitizer_from_env,
)

__all__ = [
    # the stand-in runtime and the real launcher on it
    "HostArray", "HostCupy", "HostStream", "CpuExpander", "emulated_module", "expand_module",
    "prebuild", "bf16_to_float32",
    # re-exported from the emulator and its toolchain
    "_RUNTIME", "SANITIZER_MARKERS", "SANITIZERS", "Build", "EmulatedFunction",
    "EmulatedModule", "EmulationError", "EmulationTimeout", "LaunchError", "SanitizerError",
    "Worker", "build", "cache_dir", "check_args", "cuda_include_dirs", "emulation_source", "gxx",
    "parse_signature", "rewrite_extern_shared", "sanitizer_from_env", "worker"]

# ---- the stand-in cupy module ------------------------------------------------------------------

_DEVICE = types.SimpleNamespace(id=0)


class HostStream:
    """The stand-in current stream: counts ``synchronize`` calls; ``capturing`` poses as a
    CUDA graph capture in progress (where a synchronisation would break the capture)."""

    def __init__(self):
        self.synchronized = 0
        self.capturing = False

    def synchronize(self):
        if self.capturing:
            raise AssertionError("stream synchronised during a CUDA graph capture")
        self.synchronized += 1

    def is_capturing(self) -> bool:
        return self.capturing


class HostArray(np.ndarray):
    """A NumPy array posing as a ``cupy.ndarray`` on device 0."""

    @property
    def device(self):
        return _DEVICE


def _host(a):
    return np.asarray(a).view(HostArray)


_MODULES: dict = {}
_MODULES_LOCK = threading.Lock()


def emulated_module(code: str, options=(), name_expressions=(), sanitizer="env") -> EmulatedModule:
    """An :class:`EmulatedModule`, one per (source, options, name expressions, sanitizer)."""
    s = sanitizer_from_env() if sanitizer == "env" else sanitizer
    key = (code, tuple(options), tuple(name_expressions), s)
    with _MODULES_LOCK:
        if key not in _MODULES:
            _MODULES[key] = EmulatedModule(code, options, name_expressions, sanitizer=s)
        return _MODULES[key]


def _poison(a: np.ndarray) -> None:
    a.fill(0x7FC0 if a.dtype == np.uint16 else np.nan)  # uint16: raw bfloat16, a NaN


class _PoisonedFunction:
    """An emulated kernel whose output parameters are filled with NaN before each launch
    (unless ``poison`` is False); ``launches`` counts the launches of every such function of
    one :class:`HostCupy`. Like CuPy's ``RawKernel``, ``max_dynamic_shared_size_bytes`` opts
    the kernel in to more than 48 KiB of dynamic shared memory: values above the emulated
    device's ``MaxSharedMemoryPerBlockOptin`` are refused (as cudaFuncSetAttribute refuses
    them) and launches above the kernel's limit fail. As on a GPU, the attribute belongs to
    the kernel function of one loaded module, not to a handle: every ``get_function`` handle
    of the same name shares it (``attributes``, a dict per module, holds it by name)."""

    def __init__(self, fn: EmulatedFunction, launches: list | None = None, poison=True,
                 optin: int = MAX_SHARED_DEFAULT, attributes: dict | None = None):
        self.fn = fn
        self.launches = launches if launches is not None else []
        self.poison, self.optin = poison, optin
        self._attributes = attributes if attributes is not None else {}

    @property
    def _max_dynamic(self) -> int:
        return self._attributes.get(self.fn.name, MAX_SHARED_DEFAULT)

    @property
    def max_dynamic_shared_size_bytes(self) -> int:
        return self._max_dynamic

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, value: int) -> None:
        if not 0 <= int(value) <= self.optin:
            raise LaunchError(f"{self.fn.name}: cudaFuncSetAttribute("
                              f"MaxDynamicSharedMemorySize, {value}) refused: the device "
                              f"allows at most {self.optin} bytes per block")
        self._attributes[self.fn.name] = int(value)

    @property
    def name(self) -> str:
        return self.fn.name

    def __call__(self, grid, block, args, *, shared_mem: int = 0, stream=None):
        args = tuple(args)
        self.launches.append(self.fn.name)
        for i in check_args(self.fn.name, self.fn.signature, args):
            if self.poison:
                _poison(args[i])
        self.fn(grid, block, args, shared_mem=shared_mem, shared_limit=self._max_dynamic)


class _PoisonedModule:
    def __init__(self, module: EmulatedModule, launches: list | None = None, poison=True,
                 optin: int = MAX_SHARED_DEFAULT):
        self.module = module
        self.launches = launches
        self.poison, self.optin = poison, optin
        self.attributes = {}  # kernel name -> its MaxDynamicSharedMemorySize (per module)

    def get_function(self, name: str) -> _PoisonedFunction:
        return _PoisonedFunction(self.module.get_function(name), self.launches, self.poison,
                                 self.optin, self.attributes)


class HostCupy:
    """The part of the ``cupy`` module the CuPy backend uses, on the CPU: arrays are
    :class:`HostArray` (NumPy), one device (0) with a synchronous stream, and ``RawModule``
    builds the source with g++ (:func:`emulated_module`). ``poison``: kernels fill their
    outputs with NaN before each launch (and count in ``launches``). Without ``mem_free`` the
    device has no ``mem_info`` (the free-memory check is skipped); with it, the device has
    that many bytes free. ``stream`` is the one current :class:`HostStream`."""

    ndarray = HostArray
    float16, float32, float64, uint16 = np.float16, np.float32, np.float64, np.uint16

    def __init__(self, sanitizer="env", poison: bool = True, mem_free: int | None = None,
                 arch: int | None = None, sms: int = 132):
        self.sanitizer = sanitizer_from_env() if sanitizer == "env" else sanitizer
        self.poison = poison
        self.stream = HostStream()
        self.launches: list = []
        self.arch = arch
        device = _DEVICE if mem_free is None else types.SimpleNamespace(
            id=0, mem_info=(int(mem_free), 80 << 30))
        if arch is not None:  # a device with attributes (opt-in shared memory, SM count)
            if arch not in MAX_SHARED_OPTIN:
                raise ValueError(f"arch must be one of {sorted(MAX_SHARED_OPTIN)}, got {arch}")
            device = types.SimpleNamespace(**vars(device), compute_capability=str(arch),
                                           attributes={
                                               "MaxSharedMemoryPerBlockOptin":
                                                   MAX_SHARED_OPTIN[arch],
                                               "MultiProcessorCount": int(sms)})
        self.cuda = types.SimpleNamespace(Device=lambda *a: device,
                                          get_current_stream=lambda: self.stream)

    @staticmethod
    def get_default_memory_pool():
        return types.SimpleNamespace(free_bytes=lambda: 0)

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def asarray(a, dtype=None):
        return _host(np.array(a, dtype))

    @staticmethod
    def empty(shape, dtype=np.float64):
        return _host(np.empty(shape, dtype))

    @staticmethod
    def zeros(shape, dtype=np.float64):
        return _host(np.zeros(shape, dtype))

    @staticmethod
    def ascontiguousarray(a):
        return _host(np.ascontiguousarray(a))

    def RawModule(self, code: str, options=(), name_expressions=()):  # noqa: N802 (CuPy's name)
        module = emulated_module(code, options, name_expressions, self.sanitizer)
        optin = MAX_SHARED_OPTIN[self.arch] if self.arch is not None else MAX_SHARED_DEFAULT
        if self.poison or optin > MAX_SHARED_DEFAULT:
            return _PoisonedModule(module, self.launches, self.poison, optin)
        return module


def expand_module(half: bool, sanitizer="env", version: int = 1) -> EmulatedModule:
    """The emulated counterpart of the CuPy backend's module: :func:`compile_module` with the
    stand-in ``cupy`` (same source, options and name expressions; ``version`` 2:
    expand_v2.cu)."""
    return compile_module(HostCupy(sanitizer, poison=False), half, version)


def prebuild(configs) -> list[Build]:
    """Build several (half, sanitizer[, version]) variants of expand.cu / expand_v2.cu in
    parallel (one g++ each)."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(configs), os.cpu_count() or 1))) as ex:
        mods = list(ex.map(lambda c: expand_module(*c), configs))
    return [m.build for m in mods]


# ---- CupyExpander on the CPU ---------------------------------------------------------------------

def bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """Raw bfloat16 bits (uint16) → float32."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _device(x):
    """NumPy arrays in: viewed as :class:`HostArray` (anything else goes to the backend's own
    type check)."""
    return x.view(HostArray) if isinstance(x, np.ndarray) else x


class CpuExpander(CupyExpander):
    """:class:`~cupysteer.backends.cupy_backend.CupyExpander` running the emulated kernels:
    NumPy arrays in, NumPy arrays out (``out_dtype`` 'bfloat16' gives the raw uint16 bits).

    ``method`` defaults to ``"fused_v1"`` (expand.cu: the suites written for it keep testing
    it); the v2 suites (tests/backends/test_kernels_v2*.py) pass ``method="fused"``.

    Only the runtime is replaced (:class:`HostCupy`, the emulated module); ``shared_limit`` /
    ``threads`` (None: the backend's) may be lowered, also after construction (``shared_limit``
    lowers both versions' limits, ``shared_limit_v2`` the v2 one alone); ``arch`` / ``sms``:
    the emulated device (opt-in shared memory per block as CUDA's
    MaxSharedMemoryPerBlockOptin: sm_75 64 KiB, sm_80 163 KiB, sm_90 227 KiB);
    ``half_module`` runs every kernel from the ``HALF_OPTIONS`` build; ``last_config`` (the
    backend's own) is the launch configuration of the latest launch; ``tables`` the uploaded
    plan tables.
    """

    def __init__(self, plans, dtype=np.float32, method: str = "fused_v1", padded_blocks=None,
                 *, shared_limit: int | None = None, threads: int | None = None,
                 sanitizer="env", poison: bool = True, half_module: bool = False,
                 mem_free: int | None = None, arch: int = 90, sms: int = 132):
        super().__init__(plans, dtype, method, padded_blocks)
        if shared_limit is not None:
            self.shared_limit = shared_limit
            self.shared_limit_v2 = shared_limit
        if threads is not None:
            self.threads = threads
        self.cupy = HostCupy(sanitizer, poison, mem_free, arch, sms)
        self.sanitizer = self.cupy.sanitizer
        self.half_module = half_module

    # the runtime
    def _cupy(self):
        return self.cupy

    def _module(self, half: bool, version: int = 1):
        """Memoised per stand-in device (its ``HostCupy``), options and version, as the real
        backend memoises one module per device: kernel attributes (the shared-memory opt-in)
        live on that one module."""
        modules = self.cupy.__dict__.setdefault("_expand_modules", {})
        key = (half or self.half_module, version)
        if key not in modules:
            modules[key] = compile_module(self.cupy, key[0], version)
        return modules[key]

    @property
    def tables(self) -> dict:
        """The plan tables as uploaded (fieldpairs, blocks, positions, basis, cob)."""
        return {k: np.asarray(v) for k, v in self._tables().items() if k != "padded"}

    # NumPy in and out
    def expand(self, weights, out_dtype=None, out=None):
        got = super().expand(_device(weights), out_dtype, _device(out))
        return out if out is not None else np.asarray(got)

    def adjoint(self, grad_filter, out=None):
        got = super().adjoint(_device(grad_filter), _device(out))
        return out if out is not None else np.asarray(got)
