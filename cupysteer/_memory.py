"""Memory checks made *before* a large allocation, so that an absurd size fails with a clear
:class:`MemoryError` naming the size instead of an opaque failure or the kernel's OOM killer
(NumPy's ``np.empty`` of a few times the free memory often succeeds lazily and the process is
killed later, when the pages are touched).

Host limit: the environment variable ``CUPYSTEER_MEMORY_LIMIT`` if set, a byte count with an
optional binary suffix (``512M``, ``16G``, ``1.5T``), ``off`` to disable the checks, or
``auto`` (the default): the memory available now (``MemAvailable`` of ``/proc/meminfo``,
capped by a cgroup v2 ``memory.max``; ``os.sysconf`` elsewhere). Below 64 MiB the system is
not asked (that read costs tens of µs per call). Device limit (CuPy), for allocations of
64 MiB or more: free device memory plus the free blocks of CuPy's default memory pool; an
explicit ``CUPYSTEER_MEMORY_LIMIT`` caps device allocations too, and ``off`` disables both.
"""
from __future__ import annotations

import os
import re

__all__ = ["ENV", "host_limit", "check_host", "check_device", "check_grid",
           "check_representation", "format_bytes", "GRID_BYTES_PER_POINT",
           "REPRESENTATION_BYTES_PER_ENTRY"]

ENV = "CUPYSTEER_MEMORY_LIMIT"
_SMALL = 64 << 20
_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover - unreachable


def _parse(env: str) -> int | None:
    """Bytes of ``CUPYSTEER_MEMORY_LIMIT`` (None: off, -1: auto)."""
    s = env.strip().lower()
    if s in ("", "auto"):
        return -1
    if s in ("off", "none", "unlimited"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([kmgtp]?)(?:i?b)?", s)
    if not m:
        raise ValueError(f"{ENV} must be a byte count such as 8G or 512M, 'auto' or 'off', "
                         f"got {env!r}")
    return int(float(m.group(1)) * _SUFFIX[m.group(2)])


def _cgroup_left() -> int | None:
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            mx = f.read().strip()
        if mx == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            return max(0, int(mx) - int(f.read().strip()))
    except (OSError, ValueError):
        return None


def _available() -> int | None:
    """Bytes of memory available now, or None if unknown."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    left = _cgroup_left()
    return avail if left is None else min(avail, left)


def host_limit(nbytes: int = _SMALL) -> tuple[int | None, str]:
    """(limit in bytes or None, what it is) for an allocation of ``nbytes``."""
    env = os.environ.get(ENV)
    parsed = _parse(env) if env is not None else -1
    if parsed is None:
        return None, f"{ENV}=off"
    if parsed >= 0:
        return parsed, f"the limit {ENV}={env.strip()}"
    if nbytes < _SMALL:
        return None, "small allocation: not checked"
    avail = _available()
    return avail, "the memory available on this machine"


def check_host(nbytes: int, what, hint: str) -> None:
    """Raise MemoryError if ``nbytes`` (for ``what``, a string or a callable returning one)
    exceed the host limit."""
    nbytes = int(nbytes)
    limit, source = host_limit(nbytes)
    if limit is not None and nbytes > limit:
        what = what() if callable(what) else what
        raise MemoryError(f"{what} needs {format_bytes(nbytes)} ({nbytes} bytes), more than "
                          f"{source} ({format_bytes(limit)}); {hint} (set {ENV}=off to skip "
                          f"this check, or {ENV}=<bytes> to set the limit)")


def check_device(cupy, nbytes: int, what, hint: str) -> None:
    """Raise MemoryError if ``nbytes`` exceed the free memory of CuPy's current device (free
    device memory plus the free blocks of CuPy's default pool; skipped when unknown) or an
    explicit ``CUPYSTEER_MEMORY_LIMIT``."""
    env = os.environ.get(ENV)
    parsed = _parse(env) if env is not None else -1
    nbytes = int(nbytes)
    if parsed is None or (parsed < 0 and nbytes < _SMALL):  # small: not worth a cudaMemGetInfo
        return
    if parsed >= 0 and nbytes > parsed:
        what = what() if callable(what) else what
        raise MemoryError(f"{what} needs {format_bytes(nbytes)} ({nbytes} bytes), more than "
                          f"the limit {ENV}={env.strip()} ({format_bytes(parsed)}); {hint}")
    try:
        dev = cupy.cuda.Device()
        free, total = dev.mem_info
        try:
            free += int(cupy.get_default_memory_pool().free_bytes())
        except Exception:
            pass
        dev_id = dev.id
    except Exception:
        return
    if nbytes > free:
        what = what() if callable(what) else what
        raise MemoryError(f"{what} needs {format_bytes(nbytes)} ({nbytes} bytes) on CUDA "
                          f"device {dev_id}, which has {format_bytes(free)} free of "
                          f"{format_bytes(total)}; {hint} (set {ENV}=off to skip this check)")


#: bytes per point of a k^d sample grid while it is built and sampled: the points (d float64),
#: the integer index temporaries, the radii, angles and masks of the samplers (about 20
#: float64 per point in all, before any basis value)
GRID_BYTES_PER_POINT = 160


def check_grid(kernel_size: int, dimension: int) -> None:
    """Refuse a k×k (k×k×k) sample grid whose points and sampling temporaries exceed the
    host limit, before anything is allocated (kernel_size 30001 in 2D: 900 million points)."""
    points = int(kernel_size) ** int(dimension)
    check_host(points * GRID_BYTES_PER_POINT,
               lambda: f"the {'×'.join([str(kernel_size)] * dimension)} sample grid of "
                       f"kernel_size {kernel_size} ({points} points, with its sampling "
                       f"temporaries)",
               "use a smaller kernel_size (or explicit points)")


#: bytes per entry of a size × size change of basis while a representation is built: Q, its
#: read-only copy, QᵀQ and the identity of the orthogonality check, the columns it is made of
REPRESENTATION_BYTES_PER_ENTRY = 40


def check_representation(size: int, what, hint: str) -> None:
    """Refuse a representation of dimension ``size`` whose (size × size) change of basis and
    its temporaries exceed the host limit (e.g. the regular representation of C_100000)."""
    check_host(REPRESENTATION_BYTES_PER_ENTRY * int(size) ** 2, what, hint)
