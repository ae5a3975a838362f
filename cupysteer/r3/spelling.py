"""Parsing and formatting of the spellings of groups acting on R³ (:mod:`cupysteer.r3`,
escnn's gspaces) and of their fields, e.g. ``O``, ``SO3:3``, ``D4z:axis=0.0``; ``std``,
``irrep:1,-1``, ``quotient:(False,4)``; the words for a group element (``describe_element``,
``format_element``) and the command-line settings of R³ (``cli_settings``).

The spellings are listed in :mod:`cupysteer.fields_spec`, which tries every space's
``parse_group`` and dispatches fields by ``group.space``; use its functions
(``parse_group``, ``parse_field_type``, ``format_group``, …) rather than these.
"""
from __future__ import annotations

import ast
import math
import re

import numpy as np

from .._spelling import (
    ArgumentError,
    field_error,
    group_error,
    int_arg,
    parse_axis,
    parse_nonneg_int,
)
from ..representation import Representation
from . import groups
from ._base import DEFAULT_AXIS

__all__ = ["parse_group", "format_group", "parse_field", "format_field", "describe_element",
           "format_element", "cli_settings"]

# (head pattern, constructor name, N from the pattern?, options: F (max frequency) / axis)
_GROUPS3 = [(r"so3", "SO3", False, "F"), (r"o3", "O3", False, "F"), (r"o", "Octahedral", False, ""),
            (r"oh", "FullOctahedral", False, ""), (r"i", "Icosahedral", False, ""),
            (r"ih", "FullIcosahedral", False, ""), (r"c([0-9]+)z", "RotationsZ", True, ""),
            (r"so2z", "RotationsZ", None, "F"), (r"d([0-9]+)z", "DihedralZ", True, "axis"),
            (r"o2z", "DihedralZ", None, "F axis"), (r"conical([0-9]+)", "Conical", True, "axis"),
            (r"conicalo2", "Conical", None, "F axis"), (r"cyl([0-9]+)", "Cylindrical", True, ""),
            (r"cylso2", "Cylindrical", None, "F"),
            (r"fullcyl([0-9]+)", "FullCylindrical", True, "axis"),
            (r"fullcylo2", "FullCylindrical", None, "F axis"), (r"inv", "Inversion", False, ""),
            (r"mir", "Mirror", False, "axis"), (r"trivial3", "Trivial3", False, "")]


def parse_group(head: str, rest: list, spec: str):
    """A group acting on R³, or None when ``head`` is no 3D spelling."""
    for pattern, cls, with_n, options in _GROUPS3:
        m = re.fullmatch(pattern, head)
        if m:
            break
    else:
        return None
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
        return getattr(groups, cls)(*args, **kw)
    except ValueError as exc:
        raise group_error(spec, str(exc)) from None


def format_group(group) -> str:
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


def _irrep_id(group, body, spec):
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


def _subgroup_id(group, body, spec):
    body = body.strip()
    if body.startswith("("):
        return _literal(body, spec, group, "subgroup ids")
    vals = tuple(_literal(a, spec, group, "subgroup ids") for a in body.split(","))
    return vals[0] if len(vals) == 1 else vals


def parse_field(group, kind: str, body: str, spec: str) -> Representation:
    """The field ``kind:body`` of a group acting on R³ (``kind`` lower-case)."""
    if kind in ("regular", "trivial", "std", "standard") and not body:
        return (group.regular_representation if kind == "regular" else
                group.trivial_representation if kind == "trivial" else
                group.standard_representation)
    if kind == "irrep" and body:
        return group.irrep(*_irrep_id(group, body, spec)).representation
    if kind == "quotient" and body:
        return group.quotient_representation(_subgroup_id(group, body, spec))
    raise field_error(spec, group)


def format_field(rep: Representation) -> str:
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


# ---- elements and command-line settings ------------------------------------------------
def _axis_text(R, half: bool) -> str:
    """The unit rotation axis of the rotation matrix ``R``, e.g. '0, 0, 1'."""
    if half:  # the axis spans the columns of R + I; its sign is arbitrary: first entry > 0
        B = R + np.eye(3)
        axis = B[:, np.argmax(np.linalg.norm(B, axis=0))]
        axis = axis * (-1.0 if axis[np.argmax(np.abs(axis) > 1e-9)] < 0 else 1.0)
    else:
        axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    axis = axis / np.linalg.norm(axis) + 0.0
    return ", ".join(str(int(round(v))) if abs(v - round(v)) < 1e-9 else f"{v:.3g}"
                     for v in axis)


def describe_element(group, g) -> str:
    """What the element ``g`` (a 3×3 matrix) does to R³: 'rotation by  90.00° about (0, 0,
    1)', 'inversion', 'mirror, normal (1, 0, 0)', 'inversion ∘ rotation by …'."""
    M = np.asarray(g, np.float64)
    d = 1.0 if np.linalg.det(M) > 0 else -1.0
    R = d * M
    ang = math.degrees(math.acos(min(1.0, max(-1.0, (np.trace(R) - 1) / 2))))
    if ang < 1e-6:
        return "identity" if d > 0 else "inversion"
    half = ang > 180 - 1e-6
    a = _axis_text(R, half)
    if d < 0 and half:
        return f"mirror, normal ({a})"
    return f"{'inversion ∘ ' if d < 0 else ''}rotation by {ang:6.2f}° about ({a})"


def format_element(group, g) -> str:
    """The element ``g``: '#i', its position in the group's (escnn's) element order, for a
    finite group; the matrix rounded to 4 decimals otherwise."""
    if group.is_finite:
        d = np.abs(group.elements() - np.asarray(g, np.float64)).max(axis=(1, 2))
        return f"#{int(np.argmin(d))}"
    m = np.round(np.asarray(g, np.float64), 4) + 0.0
    return "[" + ",".join("[" + ",".join(f"{v:g}" for v in row) + "]" for row in m) + "]"


_CUTOFF_POLICIES = {-1.0: None, -2.0: "default2", -3.0: "default3"}


def cli_settings(kw: dict, spelled: dict | None = None) -> dict:
    """The basis settings ``kw`` given on the command line, for a group acting on R³: no
    ``maximum_offset``; the planar cut-off policies -1, -2, -3 by escnn's names (None,
    'default2', 'default3'). ``spelled`` maps a setting to its text on the command line (for
    the messages). :class:`ArgumentError` names the rejected argument."""
    spelled = spelled or {}
    if kw.get("maximum_offset") is not None:
        raise ArgumentError("--max-offset", "is a planar (2D) setting; groups acting on R³ "
                                            "have no alias offsets")
    c = kw.get("frequencies_cutoff")
    if c is None or isinstance(c, str) or c >= 0:
        return kw
    if c not in _CUTOFF_POLICIES:
        given = spelled.get("frequencies_cutoff", c)
        raise ArgumentError("--cutoff", f"expected a positive float c (F(R) = c·R) or a "
                                        f"policy -1, -2, -3, got {given!r}")
    return dict(kw, frequencies_cutoff=_CUTOFF_POLICIES[c])
