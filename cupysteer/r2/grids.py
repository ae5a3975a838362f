r"""Grids of planar group elements for Fourier transforms on the group (escnn's ``grid``).

:func:`grid` is what :func:`cupysteer.fourier.group_grid` asks a planar group for (through
``group._grids``); the arguments follow escnn 1.0.11:

* SO(2) / O(2): ``grid(N, type='regular', seed=None)``; ``'regular'``: the rotations by
  2πi/N (i < N), for O(2) followed by the same N elements with a flip (escnn's order);
  ``'rand'``: N elements drawn with ``numpy.random.RandomState(seed)`` exactly as escnn
  (the same seed gives the same grid);
* C_N / D_N: ``grid(type='regular', N=None)``; ``'regular'``: every (N_rot/N)-th rotation
  (N must divide the rotation order; default: all of them), for D_N followed by the same
  rotations with a flip — escnn's order; ``grid()`` is every element.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["grid"]

TWO_PI = 2.0 * math.pi


def _continuous(group, N, type, seed) -> list:
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1:
        raise ValueError(f"N must be a positive integer (the number of rotations of the grid "
                         f"of {group.name}), got {N!r}")
    N = int(N)
    flips = (0, 1) if group.has_reflections else (0,)
    if type == "regular":
        return [group._join(f, i * TWO_PI / N) for f in flips for i in range(N)]
    if type == "rand":
        if seed is None or isinstance(seed, (int, np.integer)):
            rng = np.random.RandomState(seed)
        elif isinstance(seed, np.random.RandomState):
            rng = seed
        else:
            raise ValueError(f"seed must be None, an int or a numpy.random.RandomState, got "
                             f"{seed!r}")
        if group.has_reflections:
            return [group._join(int(rng.randint(0, 2)), rng.random() * TWO_PI)
                    for _ in range(N)]
        return [group._join(0, rng.random() * TWO_PI) for _ in range(N)]
    raise ValueError(f"type must be 'regular' or 'rand' for {group.name}, got {type!r}")


def _finite(group, type, N) -> list:
    order = group.rotation_order
    if type != "regular":
        raise ValueError(f"type must be 'regular' for the finite group {group.name} (escnn's "
                         f"'rand' draws unseeded samples; pass elements= for your own grid), "
                         f"got {type!r}")
    N = order if N is None else N
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1 or order % N:
        raise ValueError(f"N must be a positive divisor of the rotation order {order} of "
                         f"{group.name}, got {N!r}")
    step = order // int(N)
    flips = (0, 1) if group.has_reflections else (0,)
    return [group._join(f, i * step) for f in flips for i in range(int(N))]


def grid(group, *args, **kwargs) -> list:
    """The grid of ``group`` (see the module docstring for the arguments)."""
    if group.is_finite:
        names = ("type", "N")
        defaults = {"type": "regular", "N": None}
    else:
        names = ("N", "type", "seed")
        defaults = {"type": "regular", "seed": None}
    if len(args) > len(names):
        raise ValueError(f"the grid of {group.name} takes at most {len(names)} arguments "
                         f"({', '.join(names)}), got {len(args)}")
    params = dict(defaults)
    params.update(zip(names, args))
    for k, v in kwargs.items():
        if k not in names:
            raise ValueError(f"unknown grid argument {k!r} for {group.name}; it takes "
                             f"{', '.join(names)}")
        params[k] = v
    if group.is_finite:
        return _finite(group, params["type"], params["N"])
    if "N" not in params:
        raise ValueError(f"the grid of {group.name} needs N (the number of rotations), e.g. "
                         f"grid_args=(8,) or N=8")
    return _continuous(group, params["N"], params["type"], params["seed"])
