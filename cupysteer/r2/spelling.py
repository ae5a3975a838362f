"""Parsing and formatting of the spellings of planar groups and their fields, e.g. ``C8``,
``D4:axis=0.0``, ``SO2:6``; ``regular``, ``irrep:1,1``, ``quotient:None,2``; the words for a
group element (``describe_element``, ``format_element``) and the command-line settings of the
plane (``cli_settings``).

The spellings are listed in :mod:`cupysteer.fields_spec`, which tries every space's
``parse_group`` and dispatches fields by ``group.space``; use its functions
(``parse_group``, ``parse_field_type``, ``format_group``, …) rather than these.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .._spelling import NUM, field_error, group_error, int_arg, parse_axis, parse_nonneg_int
from ..representation import Representation
from .groups import (
    DEFAULT_MAXIMUM_FREQUENCY,
    O2,
    SO2,
    CyclicGroup,
    DihedralGroup,
    FlipGroup,
)
from .irreps import DEFAULT_AXIS

__all__ = ["parse_group", "format_group", "parse_field", "format_field", "describe_element",
           "format_element", "cli_settings"]


def parse_group(head: str, rest: list, spec: str):
    """A planar group, or None when ``head`` (lower-case, without parentheses) is no planar
    spelling; ``rest`` are the ``:``-separated options."""
    m = re.fullmatch(r"([cd])([0-9]+)", head)
    if m:
        N = int(m.group(2))
        if N < 1:
            raise group_error(spec, "the rotation order N must be >= 1")
        if m.group(1) == "c":
            if rest:
                raise group_error(spec, "C<N> takes no options")
            return CyclicGroup(N)
        if len(rest) > 1:
            raise group_error(spec, "D<N> takes at most axis=<radians>")
        return DihedralGroup(N, parse_axis(rest[0], spec) if rest else DEFAULT_AXIS)
    if head in ("so2", "o2"):
        mf, axis = DEFAULT_MAXIMUM_FREQUENCY, DEFAULT_AXIS
        for p in rest:
            if p.lower().startswith("axis"):
                if head == "so2":
                    raise group_error(spec, "SO2 has no reflection axis")
                axis = parse_axis(p, spec)
            else:
                mf = parse_nonneg_int(p, spec, "the maximum frequency")
        return SO2(mf) if head == "so2" else O2(mf, axis)
    if head == "flip":
        if len(rest) > 1:
            raise group_error(spec, "flip takes at most axis=<radians>")
        return FlipGroup(parse_axis(rest[0], spec) if rest else DEFAULT_AXIS)
    if head == "trivial":
        if rest:
            raise group_error(spec, "trivial takes no options")
        return CyclicGroup(1)
    return None


def format_group(group) -> str:
    """The spelling of a planar group."""
    axis = "" if group.reflection_axis == DEFAULT_AXIS else f":axis={group.reflection_axis!r}"
    if isinstance(group, CyclicGroup):
        return f"C{group.N}"
    if isinstance(group, DihedralGroup):
        return f"D{group.N}{axis}"
    if isinstance(group, FlipGroup):
        return f"flip{axis}"
    if isinstance(group, SO2):
        return f"SO2:{group.maximum_frequency}"
    if isinstance(group, O2):
        return f"O2:{group.maximum_frequency}{axis}"
    raise ValueError(f"no spelling for group {group!r}")


# ---- fields ----------------------------------------------------------------------------
def _args(body: str) -> list[str]:
    body = body.strip()
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1]
    return [a.strip() for a in body.split(",")]


def _irrep_id(group, args, spec):
    if group.has_reflections and not isinstance(group, FlipGroup):
        if len(args) != 2:
            raise field_error(spec, group, f"{group.name} irreps are irrep:j,k (flip "
                                            f"frequency j, frequency k)")
    elif len(args) != 1:
        raise field_error(spec, group, f"{group.name} irreps are irrep:k")
    return tuple(int_arg(a, spec, group, "an irrep index") for a in args)


def _subgroup_id(group, args, spec):
    if isinstance(group, (CyclicGroup, FlipGroup, SO2)):
        if len(args) != 1:
            raise field_error(spec, group, f"{group.name} quotients are quotient:M")
        return int_arg(args[0], spec, group, "M")
    if len(args) != 2:
        raise field_error(spec, group, f"{group.name} quotients are quotient:None,M or "
                                        f"quotient:a,M")
    a, M = args
    M = int_arg(M, spec, group, "M")
    if a.lower() == "none":
        return (None, M)
    if isinstance(group, O2):
        if not re.fullmatch(NUM, a) or not math.isfinite(float(a)):
            raise field_error(spec, group, f"a must be None or a finite angle in radians "
                                           f"(ASCII digits), got {a!r}")
        return (float(a), M)
    return (int_arg(a, spec, group, "a"), M)


def parse_field(group, kind: str, body: str, spec: str) -> Representation:
    """The field ``kind:body`` of a planar group (``kind`` lower-case)."""
    if kind in ("regular", "trivial") and not body:
        return (group.regular_representation if kind == "regular"
                else group.trivial_representation)
    if kind == "irrep" and body:
        return group.irrep(*_irrep_id(group, _args(body), spec)).representation
    if kind == "quotient" and body:
        return group.quotient_representation(_subgroup_id(group, _args(body), spec))
    raise field_error(spec, group)


def format_field(rep: Representation) -> str:
    """The spelling of one field of a planar group (``rep.name`` when it has none)."""
    name = rep.name
    if name == "regular":
        return "regular"
    if name.startswith("irrep_"):
        ids = tuple(int(i) for i in name[len("irrep_"):].split(","))
        if all(i == 0 for i in ids):
            return "trivial"
        return "irrep:" + ",".join(map(str, ids))
    m = re.fullmatch(r"quotient\[\(?([^,\]]+?)(?:, ?([^\)\]]+))?\)?\]", name)
    if m:
        return "quotient:" + ",".join(x for x in m.groups() if x is not None)
    return name


# ---- elements and command-line settings ------------------------------------------------
def describe_element(group, g) -> str:
    """What the element ``g`` does to the plane: 'rotation by  90.00°', 'reflection, axis
    45.00°'."""
    f, r = group._split(g)
    ang = float(group.rotation_angle(np.array([r]))[0])
    deg = math.degrees(ang)
    if not f:
        return f"rotation by {deg:7.2f}°"
    axis = math.degrees(group.reflection_axis + ang / 2) % 180
    return f"reflection, axis {axis:6.2f}°"


def format_element(group, g) -> str:
    """The element ``g`` as the group writes it (finite groups) or with 4 decimals."""
    if group.is_finite:
        return repr(g)
    if isinstance(g, tuple):
        return f"({g[0]}, {g[1]:.4f})"
    return f"{g:.4f}"


def cli_settings(kw: dict, spelled: dict | None = None) -> dict:
    """The basis settings ``kw`` given on the command line, for a planar group: every
    setting (``--max-offset``, the cut-off policies -1, -2, -3) is a planar one; unchanged."""
    return kw
