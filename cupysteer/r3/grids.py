r"""Grids of elements of the groups on R³ for Fourier transforms on the group (escnn's
``grid``), asked for by :func:`cupysteer.fourier.group_grid` through ``group._grids``.

* SO(3): ``grid(type, *args)`` with escnn's types ``'cube'`` (the 24 rotations of the cube),
  ``'ico'`` (the 60 of the icosahedron), ``'tetra'`` (the 12 of the tetrahedron) — in SciPy's
  order, as escnn — and ``'rand'`` (``grid('rand', N, seed)``: SciPy's
  ``Rotation.random(N, seed)``, as escnn: the same seed gives the same grid);
* O(3): the SO(3) grid followed by the same rotations times the inversion −I (escnn's order;
  ``'rand'`` is not offered: escnn's O(3) ``'rand'`` grid is built differently);
* finite groups: every element (``grid()`` or ``grid('regular')``).

escnn's ``'thomson'``, ``'thomson_cube'``, ``'hopf'`` and ``'fibonacci'`` grids come from a
numerical optimisation or a sphere grid whose result is not reproduced here: build the grid
in escnn and pass its matrices as ``elements=``.
"""
from __future__ import annotations

import numpy as np

from ._finite import icosahedral_elements, octahedral_elements

__all__ = ["grid"]

_NOT_HERE = ("thomson", "thomson_cube", "hopf", "fibonacci")


def _so3(type, args, kwargs) -> np.ndarray:
    if type in ("cube", "ico", "tetra") and (args or kwargs):
        raise ValueError(f"the {type!r} grid takes no further arguments, got {args!r} "
                         f"{kwargs!r}")
    if type == "cube":
        return np.array(octahedral_elements())
    if type == "ico":
        return np.array(icosahedral_elements())
    if type == "tetra":
        from scipy.spatial.transform import Rotation
        return Rotation.create_group("T").as_matrix()
    if type == "rand":
        params = dict(zip(("N", "seed"), args))
        params.update(kwargs)
        N = params.get("N")
        if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1:
            raise ValueError(f"the 'rand' grid needs N, a positive integer, got {N!r}")
        from scipy.spatial.transform import Rotation
        return Rotation.random(int(N), params.get("seed")).as_matrix().reshape(-1, 3, 3)
    if type in _NOT_HERE:
        raise ValueError(f"escnn's {type!r} grid is not reproduced by cupysteer (a numerical "
                         f"optimisation or a sphere grid); build it in escnn and pass its "
                         f"matrices as elements=, or use 'cube', 'ico', 'tetra' or 'rand'")
    raise ValueError(f"type must be one of 'cube', 'ico', 'tetra', 'rand' for SO(3)/O(3), got "
                     f"{type!r}")


def grid(group, *args, **kwargs) -> np.ndarray:
    """The (n, 3, 3) grid of ``group`` (see the module docstring for the arguments)."""
    type_ = args[0] if args else kwargs.pop("type", None)
    args = args[1:]
    if group.is_finite:
        if type_ not in (None, "regular") or args or kwargs:
            raise ValueError(f"the finite group {group.name} has one grid, all its elements "
                             f"(grid() or grid('regular')), got {(type_,) + args!r} {kwargs!r}")
        return np.array(group.elements())
    if group.kind not in ("SO3", "O3"):
        raise ValueError(f"grids are available for SO(3), O(3) and the finite groups on R³, "
                         f"not for {group.name}; pass the grid's matrices as elements=")
    if type_ is None:
        raise ValueError(f"the grid of {group.name} needs a type: 'cube', 'ico', 'tetra' or "
                         f"'rand' (escnn's grid(type, ...))")
    if group.kind == "O3" and type_ == "rand":
        raise ValueError("the 'rand' grid is not offered for O(3); use 'cube', 'ico' or "
                         "'tetra' (doubled by the inversion) or pass elements=")
    rot = _so3(type_, args, kwargs)
    return rot if group.kind == "SO3" else np.concatenate([rot, -rot])
