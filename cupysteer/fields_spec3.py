"""Parsing and formatting of the spellings of groups acting on R³ (:mod:`cupysteer.r3`,
escnn's gspaces) and of their fields, e.g. ``O``, ``SO3:3``, ``D4z:axis=0.0``; ``std``,
``irrep:1,-1``, ``quotient:(False,4)``.

The spellings are listed in :mod:`cupysteer.fields_spec`, which dispatches here for groups
with ``space_dimension == 3``; use its functions (``parse_group``, ``parse_field_type``,
``format_group``, …) rather than these.
"""
from __future__ import annotations

import ast
import re

from .fields_spec_common import field_error, group_error, int_arg, parse_axis, parse_nonneg_int
from .groups import DEFAULT_AXIS
from .representation import Representation

__all__ = ["parse_group3", "format_group3", "parse_field3", "format_field3"]

# (head pattern, constructor name, N from the pattern?, options: F (max frequency) / axis)
_GROUPS3 = [(r"so3", "SO3", False, "F"), (r"o3", "O3", False, "F"), (r"o", "Octahedral", False, ""),
            (r"oh", "FullOctahedral", False, ""), (r"i", "Icosahedral", False, ""),
            (r"ih", "FullIcosahedral", False, ""), (r"c(\d+)z", "RotationsZ", True, ""),
            (r"so2z", "RotationsZ", None, "F"), (r"d(\d+)z", "DihedralZ", True, "axis"),
            (r"o2z", "DihedralZ", None, "F axis"), (r"conical(\d+)", "Conical", True, "axis"),
            (r"conicalo2", "Conical", None, "F axis"), (r"cyl(\d+)", "Cylindrical", True, ""),
            (r"cylso2", "Cylindrical", None, "F"), (r"fullcyl(\d+)", "FullCylindrical", True, "axis"),
            (r"fullcylo2", "FullCylindrical", None, "F axis"), (r"inv", "Inversion", False, ""),
            (r"mir", "Mirror", False, "axis"), (r"trivial3", "Trivial3", False, "")]


def parse_group3(head: str, rest: list, spec: str):
    """A group acting on R³, or None when ``head`` is no 3D spelling."""
    for pattern, cls, with_n, options in _GROUPS3:
        m = re.fullmatch(pattern, head)
        if m:
            break
    else:
        return None
    from . import r3
    args, kw = [], {}
    if with_n is not None and with_n:
        args.append(int(m.group(1)))
    elif with_n is None:
        args.append(-1)
    for p in rest:
        if p.lower().startswith("axis") and "axis" in options:
            kw["axis"] = parse_axis(p, spec)
        elif "F" in options and not p.lower().startswith("axis"):
            kw["maximum_frequency"] = parse_nonneg_int(p, spec, "the maximum frequency")
        else:
            allowed = {"": "no options", "F": "only :<max frequency>",
                       "axis": "only :axis=<radians>"}.get(options, ":<max frequency> and "
                                                                  ":axis=<radians>")
            raise group_error(spec, f"{spec.split(':')[0].strip()} takes {allowed}")
    try:
        return getattr(r3, cls)(*args, **kw)
    except ValueError as exc:
        raise group_error(spec, str(exc)) from None


def format_group3(group) -> str:
    """The spelling of a group acting on R³."""
    kind = group.kind
    axis = getattr(group, "axis", DEFAULT_AXIS)
    axis = "" if axis == DEFAULT_AXIS else f":axis={axis!r}"
    if kind in ("SO3", "O3"):
        return f"{kind}:{group.maximum_frequency}"
    if kind in ("O", "Oh", "I", "Ih"):
        return kind
    simple = {"inv": "inv", "trivial": "trivial3", "mirror": f"mir{axis}"}
    if kind in simple:
        return simple[kind]
    finite = {"CN": "C{}z", "DN": "D{}z", "conical": "conical{}", "cyl": "cyl{}",
              "fullcyl": "fullcyl{}"}
    continuous = {"CN": "SO2z", "DN": "O2z", "conical": "conicalO2", "cyl": "cylSO2",
                  "fullcyl": "fullcylO2"}
    if kind not in finite:
        raise ValueError(f"no spelling for group {group!r}")
    if group.N == -1:
        return f"{continuous[kind]}:{group.maximum_frequency}{axis}"
    return finite[kind].format(group.N) + axis


# ---- fields ----------------------------------------------------------------------------
def _literal(text, spec, group, what):
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise field_error(spec, group, f"{what} must be Python literals, got {text!r}") from None


def _irrep_id3(group, body, spec):
    body = body.strip()
    if body.startswith("("):
        ident = _literal(body, spec, group, "irrep ids")
        return ident if isinstance(ident, tuple) else (ident,)
    ints = [int_arg(a, spec, group, "an irrep index") for a in body.split(",")]
    if hasattr(group, "factor"):  # C2 × H: inversion sign a, then H's id
        if len(ints) < 2:
            raise field_error(spec, group, f"{group.name} irreps are irrep:a,<id of "
                                           f"{group.factor.name}> (a = 0 or 1)")
        return ((ints[0],), tuple(ints[1:]), 0)
    return tuple(ints)


def _subgroup_id3(group, body, spec):
    body = body.strip()
    if body.startswith("("):
        return _literal(body, spec, group, "subgroup ids")
    vals = tuple(_literal(a, spec, group, "subgroup ids") for a in body.split(","))
    return vals[0] if len(vals) == 1 else vals


def parse_field3(group, kind: str, body: str, spec: str) -> Representation:
    """The field ``kind:body`` of a group acting on R³ (``kind`` lower-case)."""
    if kind in ("regular", "trivial", "std", "standard") and not body:
        return (group.regular_representation if kind == "regular" else
                group.trivial_representation if kind == "trivial" else
                group.standard_representation)
    if kind == "irrep" and body:
        return group.irrep(*_irrep_id3(group, body, spec)).representation
    if kind == "quotient" and body:
        return group.quotient_representation(_subgroup_id3(group, body, spec))
    raise field_error(spec, group)


def format_field3(rep: Representation) -> str:
    """The spelling of one field of a group acting on R³ (``rep.name`` when it has none)."""
    name = rep.name
    if name in ("regular", "standard"):
        return {"regular": "regular", "standard": "std"}[name]
    if name.startswith("quotient[") and name.endswith("]"):
        return "quotient:" + name[len("quotient["):-1].replace(" ", "")
    if len(rep.irreps) == 1 and name == rep.irreps[0].name and rep.is_identity_basis:
        psi = rep.irreps[0]
        if psi.is_trivial:
            return "trivial"
        ident = psi.id
        if hasattr(rep.group, "factor"):
            ident = (ident[0][0],) + tuple(ident[1])
        return "irrep:" + ",".join(map(str, ident))
    return name
