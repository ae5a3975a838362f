"""CPU emulation of cupysteer's CUDA kernels: the same .cu text, built with g++ and a shim.

What is shared with the CuPy backend (so that a pass here says something about the GPU path):

* the source text, ``kernel_source("expand.cu")``, compiled unchanged except for the one line
  per ``extern __shared__`` array, which becomes a pointer into the launch's dynamic shared
  memory (see ``cuda_cpu_shim.h``);
* the template instantiations, from the same ``name_expression(...)`` strings CuPy passes as
  ``name_expressions`` (one generated ``extern "C"`` launcher each);
* the ``-D`` options of ``COMPILE_OPTIONS`` / ``HALF_OPTIONS``;
* the launch: :class:`CpuExpander` is :class:`~cupysteer.backends.cupy_backend.CupyExpander`
  with NumPy arrays (same :func:`~cupysteer.packed.pack_plans`, same
  :func:`~cupysteer.packed.launch_config`, same ``forward_args`` / ``adjoint_args``);
* argument passing: CUDA's ``kernelParams`` convention (one pointer per parameter), and every
  argument is checked against the kernel's real parameter types before the launch (pointer vs
  value, element type, const-ness, byte size), which CuPy does not do.

Kernels run in a worker subprocess (an out-of-bounds write can corrupt or hang the
interpreter that runs it) and every launch has a timeout.

Environment variables:

``CUPYSTEER_EMU_SANITIZE``  ``address`` (ASan + UBSan) or ``thread`` (TSan): build the kernels
                           with that sanitizer and run the worker with its runtime preloaded;
                           any sanitizer report fails the launch (:class:`SanitizerError`).
``CUPYSTEER_EMU_CACHE``     cache folder of the built modules (default
                           ``$TMPDIR/cupysteer-emu-<uid>``).
``CUPYSTEER_EMU_TIMEOUT``   seconds per launch (default 20, 120 for sanitizer builds; a test
                           launch takes well under a second).
``CUPYSTEER_EMU_CUDA_INCLUDE``  CUDA include folder(s), ``:``-separated (default: the
                           ``nvidia-cuda-runtime``/``-crt``/``-cccl`` wheels, else a toolkit).
``CUPYSTEER_EMU_INPROCESS=1``  run kernels in this process (debugging only; no timeout).
"""
from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import pickle
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

SHIM = HERE / "cuda_cpu_shim.h"
SANITIZERS = {
    None: ["-O2"],
    # -O0: quickest to build here, and the clearest reports
    "address": ["-O0", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                "-fno-sanitize-recover=undefined"],
    "thread": ["-O0", "-g", "-fsanitize=thread"],
}
_RUNTIME = {"address": "libasan.so", "thread": "libtsan.so"}
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "WARNING: ThreadSanitizer",
                     "ERROR: ThreadSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                     "SUMMARY: UndefinedBehaviorSanitizer")
_ERRORS = {1: "invalid block (0 or > 1024 threads, or a dimension over its limit)",
           2: "invalid grid (0 blocks, or grid.y / grid.z > 65535)",
           3: "more than 48 KiB of dynamic shared memory"}


class EmulationError(RuntimeError):
    """The kernel could not be built, launched, or it crashed."""


class LaunchError(EmulationError):
    """The launch was refused: the same configuration would fail on a GPU."""


class EmulationTimeout(EmulationError):
    """The launch did not finish in time (deadlock, or a hang after memory corruption)."""


class SanitizerError(EmulationError):
    """A sanitizer reported an error during the launch."""


# ---- toolchain --------------------------------------------------------------------------------

def gxx() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++")) or shutil.which("g++")


def sanitizer_from_env() -> str | None:
    s = os.environ.get("CUPYSTEER_EMU_SANITIZE", "").strip().lower() or None
    if s in ("asan", "ubsan", "address,undefined"):
        s = "address"
    if s in ("tsan",):
        s = "thread"
    if s not in SANITIZERS:
        raise ValueError(f"CUPYSTEER_EMU_SANITIZE must be 'address' or 'thread', got {s!r}")
    return s


def _has_headers(d: Path) -> bool:
    return (d / "cuda_fp16.h").is_file() and (d / "crt" / "host_defines.h").is_file()


def cuda_include_dirs() -> list[str]:
    """Folders holding CUDA's host-usable headers (cuda_fp16.h, cuda_bf16.h, vector_types.h,
    crt/host_defines.h and CCCL's nv/target), or [] if none is found."""
    env = os.environ.get("CUPYSTEER_EMU_CUDA_INCLUDE")
    cands: list[Path] = [Path(p) for p in env.split(os.pathsep) if p] if env else []
    try:
        import nvidia  # namespace package of the nvidia-cuda-* wheels
        for base in nvidia.__path__:
            cands += [Path(base) / "cu13" / "include", Path(base) / "cuda_runtime" / "include"]
    except ImportError:
        pass
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            cands.append(Path(os.environ[var]) / "include")
    cands += [Path("/usr/local/cuda/include")] + sorted(Path("/usr/local").glob("cuda-*/include"),
                                                         reverse=True)
    for d in cands:
        if not _has_headers(d):
            continue
        dirs = [d]
        if not (d / "nv" / "target").is_file():
            for extra in (d / "cccl", d.parent / "cccl" / "include"):
                if (extra / "nv" / "target").is_file():
                    dirs.append(extra)
                    break
            else:
                continue
        return [str(x) for x in dirs]
    return []


# ---- source generation ------------------------------------------------------------------------

_EXTERN_SHARED = re.compile(
    r"^(?P<indent>[ \t]*)extern[ \t]+__shared__[ \t]+(?:__align__\(\s*\d+\s*\)[ \t]+)?"
    r"(?P<type>[A-Za-z_][\w: ]*?)[ \t]+(?P<name>[A-Za-z_]\w*)[ \t]*\[[ \t]*\][ \t]*;",
    re.M)
_EXTERN_C_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?'
                              r'([A-Za-z_]\w*)\s*\(')


def rewrite_extern_shared(code: str) -> tuple[str, int]:
    """``extern __shared__ T name[];`` → ``T* name = cudashim::dynamic_shared<T>();``
    (the only change made to the kernel text). Returns the text and the number of lines."""
    return _EXTERN_SHARED.subn(
        lambda m: f"{m['indent']}{m['type']}* {m['name']} = "
                  f"cudashim::dynamic_shared<{m['type']}>();", code)


def emulation_source(code: str, name_expressions) -> tuple[str, list[str]]:
    """The translation unit g++ compiles: the rewritten kernel text followed by one
    ``cudashim_launch_<i>`` / ``cudashim_signature_<i>`` pair per kernel. Kernels are the
    name expressions (templates, in the given order) and any ``extern "C" __global__``."""
    text, _ = rewrite_extern_shared(code)
    names = list(dict.fromkeys(list(name_expressions) + _EXTERN_C_KERNEL.findall(code)))
    parts = [text, "\n\n// ---- generated by tests/cuda_emulation/harness.py ----\n"]
    for i, n in enumerate(names):
        parts.append(
            f'extern "C" int cudashim_launch_{i}(unsigned gx, unsigned gy, unsigned gz, '
            f"unsigned bx, unsigned by, unsigned bz, std::size_t smem, void** args) {{\n"
            f"    return cudashim::launch(&{n}, dim3(gx, gy, gz), dim3(bx, by, bz), smem, args);\n"
            f"}}\n"
            f'extern "C" int cudashim_signature_{i}(char* buf, std::size_t n) {{\n'
            f"    return cudashim::signature(&{n}, buf, n);\n}}\n")
    return "".join(parts), names


def _gxx_options(options) -> list[str]:
    """The preprocessor options of an NVRTC option list (-D, -U, -I); the rest (-std,
    -arch, -ftz, …) has no meaning for the host compiler."""
    out, it = [], iter(options)
    for o in it:
        if o in ("-D", "-U", "-I"):
            out += [o, next(it)]
        elif o.startswith(("-D", "-U", "-I", "--define-macro=", "--undefine-macro=")):
            out.append(o.replace("--define-macro=", "-D").replace("--undefine-macro=", "-U"))
    return out


def cache_dir() -> Path:
    d = os.environ.get("CUPYSTEER_EMU_CACHE")
    if d:
        p = Path(d)
    else:
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        p = Path(tempfile.gettempdir()) / f"cupysteer-emu-{uid}"
    p.mkdir(parents=True, exist_ok=True)
    return p


_GXX_VERSION: dict = {}


def _gxx_version(cxx: str) -> str:
    if cxx not in _GXX_VERSION:
        _GXX_VERSION[cxx] = subprocess.run([cxx, "--version"], capture_output=True,
                                           text=True).stdout
    return _GXX_VERSION[cxx]


@dataclass(frozen=True)
class Build:
    so: Path
    names: tuple  # kernel names, index i ↔ cudashim_launch_<i>
    sanitizer: str | None
    seconds: float  # 0.0 when it came from the cache


def build(code: str, options=(), name_expressions=(), sanitizer: str | None = None) -> Build:
    """Compile ``code`` for the CPU (cached by content, compiler, flags and shim)."""
    cxx = gxx()
    if cxx is None:
        raise EmulationError("g++ not found (set CXX)")
    if sanitizer not in SANITIZERS:
        raise ValueError(f"sanitizer must be None, 'address' or 'thread', got {sanitizer!r}")
    src, names = emulation_source(code, name_expressions)
    inc = cuda_include_dirs()
    flags = (["-std=c++20", "-fPIC", "-shared", "-pthread", "-ffp-contract=off", "-w"]
             + SANITIZERS[sanitizer] + [f"-I{d}" for d in inc] + _gxx_options(options)
             + ["-include", str(SHIM)])
    shim = SHIM.read_text()
    key = hashlib.sha256("\0".join([src, shim, " ".join(flags), _gxx_version(cxx)])
                         .encode()).hexdigest()[:24]
    d = cache_dir()
    so = d / f"expand-{key}{'-' + sanitizer if sanitizer else ''}.so"
    if so.is_file():
        return Build(so, tuple(names), sanitizer, 0.0)
    # private names while building: concurrent test runs may build the same key
    tag = f"{os.getpid()}.{threading.get_ident()}"
    cpp = d / f".expand-{key}.{tag}.cpp"
    tmp = d / f".{so.name}.{tag}.tmp"
    cpp.write_text(src)
    t0 = time.perf_counter()
    r = subprocess.run([cxx, *flags, "-o", str(tmp), str(cpp)], capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise EmulationError(f"g++ failed ({' '.join(flags)}, source {cpp}):\n"
                             f"{r.stderr[-6000:]}")
    os.replace(tmp, so)
    os.replace(cpp, d / f"expand-{key}.cpp")  # kept for debugging
    return Build(so, tuple(names), sanitizer, time.perf_counter() - t0)


# ---- argument marshalling (shared by the in-process and the worker path) ---------------------

_CODE_DTYPE = {"f4": np.float32, "f8": np.float64, "f2": np.float16, "bf2": np.uint16,
               "i1": np.int8, "i2": np.int16, "i4": np.int32, "i8": np.int64,
               "u1": np.uint8, "u2": np.uint16, "u4": np.uint32, "u8": np.uint64,
               "b1": np.bool_}
_CTYPE = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double,
          np.dtype(np.int8): ctypes.c_int8, np.dtype(np.int16): ctypes.c_int16,
          np.dtype(np.int32): ctypes.c_int32, np.dtype(np.int64): ctypes.c_int64,
          np.dtype(np.uint8): ctypes.c_uint8, np.dtype(np.uint16): ctypes.c_uint16,
          np.dtype(np.uint32): ctypes.c_uint32, np.dtype(np.uint64): ctypes.c_uint64,
          np.dtype(np.bool_): ctypes.c_bool}


def parse_signature(sig: str) -> list[tuple]:
    """'P:f4,s:i8/8,…' → [('P', 'f4', None), ('s', 'i8', 8), …]."""
    out = []
    for part in sig.split(",") if sig else []:
        kind, rest = part.split(":", 1)
        code, _, size = rest.partition("/")
        out.append((kind, code, int(size) if size else None))
    return out


def _scalar_dtype(a) -> np.dtype:
    """The type CuPy gives a by-value argument: NumPy scalars keep theirs; Python bool, int
    and float become bool, long long and double."""
    if isinstance(a, np.generic):
        return a.dtype
    if isinstance(a, bool):
        return np.dtype(np.bool_)
    if isinstance(a, int):
        return np.dtype(np.int64)
    if isinstance(a, float):
        return np.dtype(np.float64)
    raise TypeError(f"unsupported kernel argument of type {type(a).__name__}")


def check_args(name: str, sig: list[tuple], args) -> list[int]:
    """Raise TypeError unless ``args`` match the kernel parameters exactly; return the
    indices of writable pointer parameters (the kernel's outputs)."""
    if len(args) != len(sig):
        raise TypeError(f"{name}: {len(args)} arguments for {len(sig)} parameters")
    outputs = []
    for i, ((kind, code, size), a) in enumerate(zip(sig, args)):
        if code not in _CODE_DTYPE:
            raise TypeError(f"{name}: parameter {i} has a type the harness does not know ({code})")
        want = np.dtype(_CODE_DTYPE[code])
        if kind in ("p", "P"):
            if not isinstance(a, np.ndarray):
                raise TypeError(f"{name}: parameter {i} is a pointer to {want}, got "
                                f"{type(a).__name__}")
            if a.dtype != want:
                raise TypeError(f"{name}: parameter {i} points to {code}, got an array of "
                                f"{a.dtype}")
            if not a.flags.c_contiguous:
                raise TypeError(f"{name}: parameter {i} is not C-contiguous (a raw kernel "
                                f"would read it as if it were)")
            if kind == "p":
                if not a.flags.writeable:
                    raise TypeError(f"{name}: parameter {i} is written by the kernel but the "
                                    f"array is read-only")
                outputs.append(i)
        else:
            if isinstance(a, np.ndarray):
                raise TypeError(f"{name}: parameter {i} is a {code} by value, got an array")
            got = _scalar_dtype(a)
            if got != want or got.itemsize != size:
                raise TypeError(f"{name}: parameter {i} is a {want} ({size} bytes) by value, "
                                f"got {got} ({got.itemsize} bytes): CuPy would pass the wrong "
                                f"bytes")
    return outputs


def _marshal(sig, args):
    holders = []
    for (kind, code, _), a in zip(sig, args):
        if kind in ("p", "P"):
            holders.append(ctypes.c_void_p(a.ctypes.data if a.size else 0))
        else:
            dt = _scalar_dtype(a)
            holders.append(_CTYPE[dt](a.item() if isinstance(a, np.generic) else a))
    ptrs = (ctypes.c_void_p * max(len(holders), 1))(
        *[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in holders])
    return holders, ptrs


class _Library:
    """A loaded module (in this process)."""

    def __init__(self, so: Path):
        self.lib = ctypes.CDLL(str(so))
        self._sig: dict = {}

    def signature(self, i: int) -> str:
        if i not in self._sig:
            f = getattr(self.lib, f"cudashim_signature_{i}")
            f.restype, f.argtypes = ctypes.c_int, [ctypes.c_char_p, ctypes.c_size_t]
            buf = ctypes.create_string_buffer(4096)
            if f(buf, len(buf)) < 0:
                raise EmulationError("kernel signature longer than 4096 characters")
            self._sig[i] = buf.value.decode()
        return self._sig[i]

    def launch(self, i: int, grid, block, shared_mem: int, args) -> int:
        sig = parse_signature(self.signature(i))
        holders, ptrs = _marshal(sig, args)
        f = getattr(self.lib, f"cudashim_launch_{i}")
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_size_t, ctypes.c_void_p]
        rc = f(*grid, *block, shared_mem, ptrs)
        del holders
        return rc


# ---- worker subprocess ---------------------------------------------------------------------------

def _send(fd: int, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    data = struct.pack("<Q", len(data)) + data
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _recv(fd: int, deadline: float | None = None):
    def read(n):
        chunks, left = [], n
        while left:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                    raise EmulationTimeout("timed out")
            b = os.read(fd, min(left, 1 << 20))
            if not b:
                raise EOFError
            chunks.append(b)
            left -= len(b)
        return b"".join(chunks)

    (n,) = struct.unpack("<Q", read(8))
    return pickle.loads(read(n))


def _worker_main() -> None:
    """Serve launch requests on stdin; replies go to the original stdout, which is then
    pointed at stderr so nothing else can write into the protocol stream."""
    out_fd = os.dup(1)
    os.dup2(2, 1)
    libs: dict = {}
    while True:
        try:
            req = _recv(0)
        except EOFError:
            return
        try:
            lib = libs.get(req["so"])
            if lib is None:
                lib = libs[req["so"]] = _Library(Path(req["so"]))
            if req["op"] == "signature":
                _send(out_fd, {"ok": lib.signature(req["index"])})
                continue
            args = req["args"]
            rc = lib.launch(req["index"], req["grid"], req["block"], req["shared_mem"], args)
            _send(out_fd, {"ok": rc, "outputs": {i: args[i] for i in req["outputs"]}})
        except Exception as exc:  # reported to the parent, which raises it
            _send(out_fd, {"error": f"{type(exc).__name__}: {exc}"})


class Worker:
    """One subprocess running kernels, with a timeout per request; restarted after a failure."""

    def __init__(self, sanitizer: str | None = None):
        self.sanitizer = sanitizer
        self.proc = None
        self.log = None
        self._lock = threading.Lock()

    def _env(self) -> dict:
        env = dict(os.environ)
        env.pop("CUPYSTEER_EMU_INPROCESS", None)
        if self.sanitizer:
            cxx = gxx()
            lib = subprocess.run([cxx, f"-print-file-name={_RUNTIME[self.sanitizer]}"],
                                 capture_output=True, text=True).stdout.strip()
            if not lib or not os.path.isabs(lib) or not os.path.exists(lib):
                raise EmulationError(f"{_RUNTIME[self.sanitizer]} not found for {cxx}")
            env["LD_PRELOAD"] = lib
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:halt_on_error=1"
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
            env["TSAN_OPTIONS"] = "halt_on_error=0:report_signal_unsafe=0"
        return env

    def _start(self):
        fd, self.log_path = tempfile.mkstemp(prefix="cupysteer-emu-worker-", suffix=".log")
        os.close(fd)
        # the child appends (O_APPEND); this process reads through its own handle
        with open(self.log_path, "ab") as child_err:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=child_err,
                env=self._env(), cwd=str(ROOT))
        self.log = open(self.log_path, "rb")
        self._log_pos = 0

    def _log_since(self) -> str:
        """Worker stderr written since the current request began."""
        if self.log is None:
            return ""
        self.log.seek(self._log_pos)
        return self.log.read().decode(errors="replace")

    def close(self):
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(5)
            except Exception:
                pass
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except Exception:
                    pass
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None
            try:
                os.unlink(self.log_path)
            except OSError:
                pass

    def request(self, req: dict, timeout: float):
        with self._lock:
            if self.proc is None or self.proc.poll() is not None:
                self.close()
                self._start()
            self._log_pos = os.path.getsize(self.log_path)
            try:
                _send(self.proc.stdin.fileno(), req)
                reply = _recv(self.proc.stdout.fileno(), time.monotonic() + timeout)
            except EmulationTimeout:
                log = self._log_since()
                self.close()
                raise EmulationTimeout(f"kernel launch did not finish within {timeout:.0f} s "
                                       f"(deadlock or memory corruption); worker killed."
                                       f"\n{log[-4000:]}") from None
            except (EOFError, BrokenPipeError, OSError):
                time.sleep(0.05)
                code = self.proc.poll()
                log = self._log_since()
                self.close()
                kind = SanitizerError if any(m in log for m in SANITIZER_MARKERS) \
                    else EmulationError
                raise kind(f"the emulation worker died (exit code {code}):\n{log[-8000:]}") \
                    from None
            log = self._log_since()
            if any(m in log for m in SANITIZER_MARKERS):
                self.close()
                raise SanitizerError(f"sanitizer report:\n{log[-8000:]}")
            if "error" in reply:
                raise EmulationError(reply["error"])
            return reply


_WORKERS: dict = {}


def worker(sanitizer: str | None) -> Worker:
    if sanitizer not in _WORKERS:
        _WORKERS[sanitizer] = Worker(sanitizer)
    return _WORKERS[sanitizer]


@atexit.register
def _close_workers():
    for w in _WORKERS.values():
        w.close()


# ---- CuPy-like front end ------------------------------------------------------------------------

def _dim3(v) -> tuple:
    v = (v,) if isinstance(v, (int, np.integer)) else tuple(v)
    if not 1 <= len(v) <= 3:
        raise ValueError(f"grid/block must have 1 to 3 dimensions, got {v}")
    return tuple(int(x) for x in v) + (1,) * (3 - len(v))


class EmulatedFunction:
    """``kern(grid, block, args, shared_mem=0)`` like ``cupy.RawKernel`` / ``get_function``."""

    def __init__(self, module: "EmulatedModule", index: int, name: str):
        self.module, self.index, self.name = module, index, name
        self._sig = None
        self.launches = []  # (grid, block, shared_mem) of every launch, for tests

    @property
    def signature(self) -> list[tuple]:
        if self._sig is None:
            self._sig = parse_signature(self.module._signature(self.index))
        return self._sig

    def __call__(self, grid, block, args, *, shared_mem: int = 0, stream=None):
        grid, block = _dim3(grid), _dim3(block)
        args = tuple(args)
        outputs = check_args(self.name, self.signature, args)
        self.launches.append((grid, block, int(shared_mem)))
        rc = self.module._launch(self.index, grid, block, int(shared_mem), args, outputs)
        if rc != 0:
            raise LaunchError(f"{self.name}: launch refused, {_ERRORS.get(rc, rc)} "
                              f"(grid={grid}, block={block}, shared_mem={shared_mem})")


class EmulatedModule:
    """``cupy.RawModule(code=, options=, name_expressions=)`` for the CPU."""

    def __init__(self, code: str, options=(), name_expressions=(), sanitizer="env",
                 timeout: float | None = None, in_process: bool | None = None):
        self.sanitizer = sanitizer_from_env() if sanitizer == "env" else sanitizer
        self.build = build(code, options, name_expressions, self.sanitizer)
        self.timeout = timeout or float(os.environ.get("CUPYSTEER_EMU_TIMEOUT",
                                                       "120" if self.sanitizer else "20"))
        if in_process is None:
            in_process = os.environ.get("CUPYSTEER_EMU_INPROCESS") == "1"
        if in_process and self.sanitizer:
            raise EmulationError("a sanitizer build needs the worker (its runtime must be "
                                 "preloaded)")
        self._lib = _Library(self.build.so) if in_process else None
        self._functions: dict = {}

    def get_function(self, name: str) -> EmulatedFunction:
        if name not in self._functions:
            try:
                i = self.build.names.index(name)
            except ValueError:
                raise KeyError(f"{name!r} is not one of the module's kernels "
                               f"{self.build.names}") from None
            self._functions[name] = EmulatedFunction(self, i, name)
        return self._functions[name]

    def _signature(self, i: int) -> str:
        if self._lib is not None:
            return self._lib.signature(i)
        reply = worker(self.sanitizer).request(
            {"op": "signature", "so": str(self.build.so), "index": i}, self.timeout)
        return reply["ok"]

    def _launch(self, i, grid, block, shared_mem, args, outputs) -> int:
        if self._lib is not None:
            return self._lib.launch(i, grid, block, shared_mem, args)
        plain = [np.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
        reply = worker(self.sanitizer).request(
            {"op": "launch", "so": str(self.build.so), "index": i, "grid": grid,
             "block": block, "shared_mem": shared_mem, "args": plain, "outputs": outputs},
            self.timeout)
        for j, a in reply["outputs"].items():
            np.copyto(args[j], a)
        return reply["ok"]


_MODULES: dict = {}


def prebuild(configs) -> list[Build]:
    """Build several (half, sanitizer) variants of expand.cu in parallel (one g++ each)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=max(1, min(len(configs), os.cpu_count() or 1))) as ex:
        mods = list(ex.map(lambda c: expand_module(*c), configs))
    return [m.build for m in mods]


def expand_module(half: bool, sanitizer="env") -> EmulatedModule:
    """The emulated counterpart of ``cupy_backend._module(half)``: same source, options and
    name expressions."""
    from cupysteer.backends.kernel_source import (COMPILE_OPTIONS, HALF_OPTIONS,
                                                  all_name_expressions, kernel_source)
    s = sanitizer_from_env() if sanitizer == "env" else sanitizer
    key = (half, s)
    if key not in _MODULES:
        _MODULES[key] = EmulatedModule(kernel_source("expand.cu"),
                                       HALF_OPTIONS if half else COMPILE_OPTIONS,
                                       all_name_expressions(half), sanitizer=s)
    return _MODULES[key]


# ---- CupyExpander on NumPy arrays ------------------------------------------------------------------

_OUT_DTYPES = {"float16": "__half", "bfloat16": "__nv_bfloat16"}


def bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """Raw bfloat16 bits (uint16) → float32."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


class CpuExpander:
    """:class:`~cupysteer.backends.cupy_backend.CupyExpander` (method='fused') with NumPy
    arrays and the emulated kernels: same packing, launch configuration and arguments.

    Two deliberate differences, both making the check stricter: outputs are filled with NaN
    before the launch (CuPy: ``empty`` for the filter, ``zeros`` for the weight gradient), so
    any element the kernel fails to write shows up; and ``shared_limit`` / ``threads`` can be
    lowered to force several point tiles per field pair.
    """

    def __init__(self, plans, dtype=np.float32, *, shared_limit: int | None = None,
                 threads: int | None = None, sanitizer="env", poison: bool = True,
                 half_module: bool = False):
        from cupysteer.packed import SHARED_MEMORY_LIMIT, THREADS, pack_plans
        from cupysteer.plan import ExpansionPlan
        plans = [plans] if isinstance(plans, ExpansionPlan) else list(plans)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.plans = plans
        self.packed = pack_plans(plans)
        self.shared_limit = SHARED_MEMORY_LIMIT if shared_limit is None else shared_limit
        self.threads = THREADS if threads is None else threads
        self.sanitizer = sanitizer
        self.poison = poison
        self.half_module = half_module  # run every kernel from the HALF_OPTIONS build
        p = self.packed
        self.tables = dict(fieldpairs=p.fieldpairs, blocks=p.blocks, positions=p.positions,
                           basis=p.basis.astype(self.dtype), cob=p.cob.astype(self.dtype))
        self.last_config = None

    def _config(self, kind, batch):
        from cupysteer.packed import launch_config
        cfg = launch_config(self.packed, kind, batch, self.dtype.itemsize, threads=self.threads,
                            shared_limit=self.shared_limit)
        self.last_config = cfg
        return cfg

    def _check(self, x, name, shape_tail):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name}: expected numpy.ndarray, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise ValueError(f"{name} has dtype {x.dtype}, expected {self.dtype}")
        if x.shape[-len(shape_tail):] != shape_tail or x.ndim not in (len(shape_tail),
                                                                        len(shape_tail) + 1):
            raise ValueError(f"{name} must have shape {shape_tail} or (batch, *{shape_tail}), "
                             f"got {x.shape}")
        return np.ascontiguousarray(x)

    def expand(self, weights, out_dtype=None):
        """Weights (dim,) or (b, dim) → flat filters (filter_size,) or (b, filter_size);
        ``out_dtype`` 'float16' → float16 array, 'bfloat16' → raw uint16 bits."""
        from cupysteer.backends.kernel_source import forward_args, name_expression
        p, t = self.packed, self.tables
        w = self._check(weights, "weights", (p.dim,))
        batch = 1 if w.ndim == 1 else w.shape[0]
        out_name = None
        if out_dtype is not None:
            key = np.dtype(out_dtype).name if out_dtype != "bfloat16" else "bfloat16"
            if key not in _OUT_DTYPES or self.dtype != np.float32:
                raise ValueError(f"out_dtype must be 'float16' or 'bfloat16' with float32 "
                                 f"weights, got {out_dtype!r}")
            out_name = _OUT_DTYPES[key]
        cfg = self._config("forward", batch)
        if out_name is None:
            out = np.empty((batch, p.filter_size), self.dtype)
            fill = np.nan
        elif out_name == "__half":
            out = np.empty((batch, p.filter_size), np.float16)
            fill = np.nan
        else:
            out = np.empty((batch, p.filter_size), np.uint16)
            fill = 0x7FC0  # bfloat16 NaN
        if self.poison:
            out.fill(fill)
        kern = expand_module(out_name is not None or self.half_module,
                             self.sanitizer).get_function(
            name_expression("forward", self.dtype, out_name))
        kern(cfg.grid, cfg.block, forward_args(w, p.dim, t["basis"], t["cob"], t["fieldpairs"],
                                               t["blocks"], t["positions"], out,
                                               p.filter_size, cfg), shared_mem=cfg.shared_mem)
        return out if w.ndim == 2 else out[0]

    def adjoint(self, grad_filter):
        """Flat filter gradient (filter_size,) or (b, filter_size) → weight gradient."""
        from cupysteer.backends.kernel_source import adjoint_args, name_expression
        p, t = self.packed, self.tables
        g = self._check(grad_filter, "filter_grad", (p.filter_size,))
        batch = 1 if g.ndim == 1 else g.shape[0]
        cfg = self._config("adjoint", batch)
        out = np.full((batch, p.dim), np.nan if self.poison else 0.0, self.dtype)
        kern = expand_module(self.half_module, self.sanitizer).get_function(
            name_expression("adjoint", self.dtype))
        kern(cfg.grid, cfg.block, adjoint_args(g, p.filter_size, t["basis"], t["cob"],
                                               t["fieldpairs"], t["blocks"], t["positions"],
                                               out, p.dim, cfg, p), shared_mem=cfg.shared_mem)
        return out if g.ndim == 2 else out[0]

    def split(self, flat):
        """Views of a flat (…, filter_size) output as one (…, C_out, C_in, *k) array per plan."""
        lead = flat.shape[:-1]
        return [flat[..., o:o + int(np.prod(s))].reshape(lead + s)
                for o, s in zip(self.packed.filter_offsets, self.packed.filter_shapes)]


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        _worker_main()
    else:
        print("usage: harness.py --worker  (started by the harness itself)", file=sys.stderr)
        sys.exit(2)
