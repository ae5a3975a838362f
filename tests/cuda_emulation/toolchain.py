"""Build CUDA C++ for the CPU: the g++ toolchain, the CUDA headers, the source rewrite and
the (cached) shared library of one .cu text. Knows nothing of cupysteer.

* the source text is compiled unchanged except for the one line per ``extern __shared__``
  array, which becomes a pointer into the launch's dynamic shared memory (see
  ``cuda_cpu_shim.h``);
* every template instantiation in ``name_expressions`` (CuPy's ``RawModule`` argument) and
  every ``extern "C" __global__`` kernel gets a generated ``extern "C"`` launcher and a
  signature function;
* the ``-D`` / ``-U`` / ``-I`` options of an NVRTC option list are passed to g++.

Environment variables:

``CUPYSTEER_EMU_SANITIZE``  ``address`` (ASan + UBSan) or ``thread`` (TSan): build the kernels
                           with that sanitizer (:mod:`emulator` then runs the worker with its
                           runtime preloaded).
``CUPYSTEER_EMU_CACHE``     cache folder of the built modules (default
                           ``$TMPDIR/cupysteer-emu-<uid>``).
``CUPYSTEER_EMU_CUDA_INCLUDE``  CUDA include folder(s), ``:``-separated (default: the
                           ``nvidia-cuda-runtime``/``-crt``/``-cccl`` wheels, else a toolkit).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHIM = HERE / "cuda_cpu_shim.h"
SANITIZERS = {
    None: ["-O2"],
    # -O0: quickest to build here, and the clearest reports
    "address": ["-O0", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                "-fno-sanitize-recover=undefined"],
    "thread": ["-O0", "-g", "-fsanitize=thread"],
}
#: the runtime library a sanitizer build needs preloaded
_RUNTIME = {"address": "libasan.so", "thread": "libtsan.so"}


class EmulationError(RuntimeError):
    """The kernel could not be built, launched, or it crashed."""


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
_EXTERN_C_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+'
                              r'(?:__launch_bounds__\([^)]*\)\s+)?([A-Za-z_]\w*)\s*\(')


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
    parts = [text, "\n\n// ---- generated by tests/cuda_emulation/toolchain.py ----\n"]
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
