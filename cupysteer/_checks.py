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

__all__ = ["integer", "angle", "float_array", "frozen", "freeze", "is_cupy",
           "check_cupy_dtype"]


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


def float_array(x, name: str) -> np.ndarray:
    """A float32/float64 NumPy array of finite values (integers converted exactly)."""
    if type(x).__module__.split(".")[0] not in ("numpy", "builtins"):
        raise TypeError(f"{name}: expected a NumPy array, got {type(x).__module__}."
                        f"{type(x).__name__}; CuPy/torch/JAX inputs go through their adapters")
    a = np.asarray(x)
    if a.dtype.kind in "iub":
        if a.dtype.kind in "iu" and a.size and max(int(a.max()), -int(a.min())) > 2 ** 53:
            raise ValueError(f"{name}: integer values beyond 2**53 are not exactly "
                             f"representable in float64; convert them yourself "
                             f"(.astype(np.float64)) if rounding is intended")
        a = a.astype(np.float64)
    if a.dtype.kind == "f" and not a.dtype.isnative and a.dtype.itemsize in (4, 8):
        a = a.astype(a.dtype.newbyteorder("="))  # same values, native byte order
    if a.dtype.kind == "c":
        raise ValueError(f"{name} must be real (float32 or float64), got {a.dtype}; the "
                         f"filters are real-valued: pass {name}.real if its imaginary part is 0")
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {a.dtype}; cast it with "
                         f".astype(np.float32)")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinity (at flat index "
                         f"{int(np.flatnonzero(~np.isfinite(a.ravel()))[0])}); the NumPy "
                         f"backend rejects non-finite input, fix the producer of {name}")
    return a


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
