"""Run CUDA kernels built by :mod:`toolchain` on the CPU, with CuPy's calling convention.

:class:`EmulatedModule` / :class:`EmulatedFunction` mirror ``cupy.RawModule`` /
``get_function``: ``kern(grid, block, args, shared_mem=...)``. Argument passing follows CUDA's
``kernelParams`` convention (one pointer per parameter), and every argument is checked against
the kernel's real parameter types before the launch (pointer vs value, element type,
const-ness, byte size), which CuPy does not do.

Kernels run in a worker subprocess (``python -m cuda_emulation.emulator --worker``: an
out-of-bounds write can corrupt or hang the interpreter that runs it; this module and
:mod:`toolchain` import nothing of cupysteer, so the worker stays small) and every launch has
a timeout. What a pass means for the GPU path is :mod:`harness`'s business.

Environment variables (and those of :mod:`toolchain`):

``CUPYSTEER_EMU_TIMEOUT``   seconds per launch (default 20, 120 for sanitizer builds; a test
                           launch takes well under a second).
``CUPYSTEER_EMU_INPROCESS=1``  run kernels in this process (debugging only; no timeout).
"""
from __future__ import annotations

import atexit
import ctypes
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .toolchain import _RUNTIME, EmulationError, build, gxx, sanitizer_from_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "WARNING: ThreadSanitizer",
                     "ERROR: ThreadSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                     "SUMMARY: UndefinedBehaviorSanitizer")
_ERRORS = {1: "invalid block (0 or > 1024 threads, or a dimension over its limit)",
           2: "invalid grid (0 blocks, or grid.y / grid.z > 65535)",
           3: "more dynamic shared memory than the kernel's limit (48 KiB without opt-in)"}
#: dynamic shared memory per CUDA block without opting in, and the most a kernel may opt in
#: to (cudaDevAttrMaxSharedMemoryPerBlockOptin) per compute capability
MAX_SHARED_DEFAULT = 48 * 1024
MAX_SHARED_OPTIN = {75: 64 * 1024, 80: 163 * 1024, 86: 99 * 1024, 89: 99 * 1024,
                    90: 227 * 1024}


class LaunchError(EmulationError):
    """The launch was refused: the same configuration would fail on a GPU."""


class EmulationTimeout(EmulationError):
    """The launch did not finish in time (deadlock, or a hang after memory corruption)."""


class SanitizerError(EmulationError):
    """A sanitizer reported an error during the launch."""


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
            raise TypeError(f"{name}: parameter {i} has a type the emulator does not know ({code})")
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

    def launch(self, i: int, grid, block, shared_mem: int, args,
               shared_limit: int | None = None) -> int:
        sig = parse_signature(self.signature(i))
        holders, ptrs = _marshal(sig, args)
        setter = getattr(self.lib, "cudashim_set_max_dynamic_shared", None)
        if setter is not None:  # the opt-in limit of this launch (48 KiB without one)
            setter.restype, setter.argtypes = None, [ctypes.c_size_t]
            setter(int(shared_limit or MAX_SHARED_DEFAULT))
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
            rc = lib.launch(req["index"], req["grid"], req["block"], req["shared_mem"], args,
                            req.get("shared_limit"))
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
        # the worker imports this module as cuda_emulation.emulator (tests/ on the path)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent)] + (
            [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
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
                [sys.executable, "-m", "cuda_emulation.emulator", "--worker"],
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
                raise kind(f"the emulation worker died (exit code {code}):\n"
                           f"{_first_report(log)}{log[-8000:]}") from None
            log = self._log_since()
            if any(m in log for m in SANITIZER_MARKERS):
                self.close()
                raise SanitizerError(f"sanitizer report:\n{_first_report(log)}{log[-8000:]}")
            if "error" in reply:
                raise EmulationError(reply["error"])
            return reply


def _first_report(log: str) -> str:
    """The first line of the log naming a sanitizer finding (kept in the error message even
    when a long stack trace pushes it out of the message's tail), or ''."""
    for line in log.splitlines():
        if any(m in line for m in SANITIZER_MARKERS):
            return f"first report: {line.strip()[:500]}\n...\n"
    return ""


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

    def __call__(self, grid, block, args, *, shared_mem: int = 0, stream=None,
                 shared_limit: int | None = None):
        """``shared_limit``: the kernel's opt-in limit of dynamic shared memory (None: 48 KiB,
        CUDA's default); a launch above it is refused, as on a GPU."""
        grid, block = _dim3(grid), _dim3(block)
        args = tuple(args)
        outputs = check_args(self.name, self.signature, args)
        self.launches.append((grid, block, int(shared_mem)))
        rc = self.module._launch(self.index, grid, block, int(shared_mem), args, outputs,
                                 shared_limit)
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

    def _launch(self, i, grid, block, shared_mem, args, outputs, shared_limit=None) -> int:
        if self._lib is not None:
            return self._lib.launch(i, grid, block, shared_mem, args, shared_limit)
        plain = [np.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
        reply = worker(self.sanitizer).request(
            {"op": "launch", "so": str(self.build.so), "index": i, "grid": grid,
             "block": block, "shared_mem": shared_mem, "args": plain, "outputs": outputs,
             "shared_limit": shared_limit}, self.timeout)
        for j, a in reply["outputs"].items():
            np.copyto(args[j], a)
        return reply["ok"]


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        _worker_main()
    else:
        print("usage: python -m cuda_emulation.emulator --worker  (started by the "
              "emulator itself)", file=sys.stderr)
        sys.exit(2)
