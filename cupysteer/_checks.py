"""The one argument-checking policy of cupysteer: integers, angles, float arrays, frozen copies.

Every public entry point validates its arguments with these functions, so that the same kind
of bad input gets the same kind of error everywhere: a ``ValueError`` (``TypeError`` for an
array of a foreign library) whose message names the argument, says what was expected, and
says how to fix it.

* integers: Python or NumPy integers, never ``bool`` and never floats (``5.0`` is refused:
  a silent ``int()`` would hide a unit mistake);
* angles: anything ``float()`` accepts, finite;
* float arrays (weights, filter gradients, biases): NumPy float32/float64 in any layout and
  byte order; integers and bools are converted exactly (refused beyond 2**53); complex, other
  float widths, NaN and infinity are refused;
* frozen copies: float64 (or the given dtype), C-contiguous, read-only.
"""
from __future__ import annotations

import math

import numpy as np

from ._memory import check_host

__all__ = ["integer", "angle", "positive_float", "real_array", "float_array", "frozen",
           "freeze", "is_cupy", "check_cupy_dtype", "sequence", "method", "distinct_values"]


def integer(x, name: str, minimum: int | None = None, hint: str = "") -> int:
    """``x`` as a Python int; a bool, a float or anything else is refused."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        if minimum is None:
            raise ValueError(f"{name} must be an integer, got {x!r}")
        raise ValueError(f"{name} must be an integer >= {minimum}{hint}, got {x!r}")
    if minimum is not None and x < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{hint}, got {x!r}")
    return int(x)


def angle(x, name: str, finite: bool = True) -> float:
    """``x`` as a float angle in radians."""
    try:
        a = float(x)
    except (TypeError, ValueError):
        what = "a real angle" if finite else "an angle"
        raise ValueError(f"{name} must be {what} in radians, got {x!r}") from None
    if finite and not math.isfinite(a):
        raise ValueError(f"{name} must be a finite angle in radians, got {x!r}")
    return a


def positive_float(x, name: str, hint: str = "") -> float:
    """``x`` as a finite float > 0 (a bool, a string, None or a complex number is refused)."""
    if isinstance(x, (bool, np.bool_, str, bytes)) or x is None or np.iscomplexobj(x):
        raise ValueError(f"{name} must be a finite number > 0{hint}, got {x!r}")
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0{hint}, got {x!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0{hint}, got {x!r}")
    return v


def real_array(x, name: str, what: str = "real numbers") -> np.ndarray:
    """``x`` (a number, a list or an array of real numbers) as a float64 array; None, strings,
    bools, complex numbers, objects and arrays of another library are refused naming ``name``
    (the shape and finiteness are the caller's to check)."""
    if x is None or isinstance(x, (str, bytes)):
        raise ValueError(f"{name} must be {what}, got {x!r}")
    mod = type(x).__module__.split(".")[0]
    if mod not in ("numpy", "builtins"):
        raise TypeError(f"{name}: expected {what} (a list or a NumPy array), got "
                        f"{type(x).__module__}.{type(x).__name__}; convert it with "
                        f"np.asarray first")
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be {what}, got {x!r} ({exc})") from None
    if a.dtype.kind == "c":
        raise ValueError(f"{name} must be real, got complex values ({a.dtype}); pass "
                         f"{name}.real if the imaginary part is 0")
    if a.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be {what}, got an array of dtype {a.dtype} "
                         f"({x!r:.80})")
    return a.astype(np.float64)


def sequence(x, name: str, what: str) -> tuple:
    """``x`` (a list, tuple or other non-string iterable) as a tuple; None, strings and
    non-iterables are refused naming ``name``."""
    if x is None or isinstance(x, (str, bytes, dict)) or not hasattr(x, "__iter__"):
        raise ValueError(f"{name} must be a list of {what}, got {x!r:.80}")
    return tuple(x)


def method(x, name: str, allowed: tuple) -> str:
    """``x`` when it is one of the strings ``allowed``; else an error listing them."""
    if not isinstance(x, str) or x not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {x!r}")
    return x


def float_array(x, name: str) -> np.ndarray:
    """A float32/float64 NumPy array of finite values (integers converted exactly)."""
    if type(x).__module__.split(".")[0] not in ("numpy", "builtins"):
        raise TypeError(f"{name}: expected a NumPy array, got {type(x).__module__}."
                        f"{type(x).__name__}; CuPy/torch/JAX inputs go through their adapters")
    a = np.asarray(x)
    if a.dtype.kind in "iub":
        values = distinct_values(a)
        if a.dtype.kind in "iu" and a.size and max(int(values.max()),
                                                   -int(values.min())) > 2 ** 53:
            raise ValueError(f"{name}: integer values beyond 2**53 are not exactly "
                             f"representable in float64; convert them yourself "
                             f"(.astype(np.float64)) if rounding is intended")
        _check_copy(a, 8, name)
        a = a.astype(np.float64)
    if a.dtype.kind == "f" and not a.dtype.isnative and a.dtype.itemsize in (4, 8):
        _check_copy(a, a.dtype.itemsize, name)
        a = a.astype(a.dtype.newbyteorder("="))  # same values, native byte order
    if a.dtype.kind == "c":
        raise ValueError(f"{name} must be real (float32 or float64), got {a.dtype}; the "
                         f"filters are real-valued: pass {name}.real if its imaginary part is 0")
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {a.dtype}; cast it with "
                         f".astype(np.float32)")
    values = distinct_values(a)
    if not np.isfinite(values).all():
        bad = np.unravel_index(int(np.flatnonzero(~np.isfinite(values.ravel()))[0]),
                               values.shape)
        index = tuple(int(i) for i in bad)  # the same index in ``a`` (broadcast axes: 0)
        flat = int(np.ravel_multi_index(index, a.shape)) if a.ndim else 0
        raise ValueError(f"{name} contains NaN or infinity (at flat index {flat}); the NumPy "
                         f"backend rejects non-finite input, fix the producer of {name}")
    return a


def distinct_values(a: np.ndarray) -> np.ndarray:
    """The part of ``a`` that holds all its values: a broadcast (zero-stride) axis taken at
    index 0, so that value checks on a broadcast batch cost its memory, not its size."""
    if not a.size:
        return a
    return a[tuple(slice(0, 1) if st == 0 and n > 1 else slice(None)
                   for st, n in zip(a.strides, a.shape))]


def _check_copy(a: np.ndarray, itemsize: int, name: str) -> None:
    """Size check before a converting copy of ``a`` (e.g. a broadcast integer batch)."""
    check_host(a.size * itemsize, lambda: f"{name}: a converted copy of shape {a.shape}",
               f"pass {name} as float32/float64 in native byte order, or fewer batch items")


def frozen(a, dtype=np.float64) -> np.ndarray:
    """A read-only C-contiguous copy of ``a``."""
    out = np.array(a, dtype=dtype, copy=True, order="C")
    out.setflags(write=False)
    return out


def freeze(*arrays) -> None:
    """Make arrays read-only in place (arrays a function has just created)."""
    for a in arrays:
        a.setflags(write=False)


def is_cupy(x) -> bool:
    return type(x).__module__.split(".")[0] == "cupy"


def check_cupy_dtype(x, name: str) -> None:
    """The CUDA kernels take float32/float64 only (no silent cast on the device)."""
    if np.dtype(x.dtype) not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64 for the CUDA kernels, got "
                         f"{np.dtype(x.dtype)}; cast it with .astype(cupy.float32)")
