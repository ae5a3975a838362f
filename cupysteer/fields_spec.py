"""One spelling of groups and fields for the command line, the examples and the gallery.

Groups (case-insensitive)::

    C8            cyclic group C_N (rotations by multiples of 2π/N)
    D4            dihedral group D_N, reflection axis π/2: (x, y) ↦ (−x, y)
    D4:axis=0.0   D_N with another reflection axis (radians)
    SO2, SO2:6    all rotations; irreps up to frequency 6 (the default)
    O2, O2:4      rotations and reflections; O2:4:axis=0.0 sets the axis too
    flip          the reflection group {e, R}; flip:axis=0.0
    trivial       the trivial group C1

Groups acting on R³ (:mod:`cupysteer.r3`, escnn's gspaces; ``axis`` in radians as escnn's)::

    SO3, SO3:3        all rotations (rot3dOnR3); irreps up to degree 3 (default 2)
    O3, O3:3          rotations and inversions (flipRot3dOnR3)
    O, Oh             octahedral (24 cube rotations) / full octahedral (48)
    I, Ih             icosahedral (60) / full icosahedral (120)
    C8z, SO2z:3       rotations about z (rot2dOnR3(8) / rot2dOnR3(-1))
    D4z, O2z:3        rotations about z and π-rotations about in-plane axes
                      (dihedralOnR3); D4z:axis=0.0, O2z:3:axis=0.0
    conical4          rotations about z and mirrors through planes containing z
                      (conicalOnR3(4)); conicalO2:3, conical4:axis=0.0
    cyl4, cylSO2:3    rotations about z with and without inversion (cylindricalOnR3)
    fullcyl4          dihedral about z with and without inversion (fullCylindricalOnR3);
                      fullcylO2:3, fullcyl4:axis=0.0
    inv, mir          {e, p ↦ −p} / {e, mirror x ↦ −x} (mir:axis=0.0 for another plane)
    trivial3          the trivial group acting on R³

Fields (one representation each), comma-separated, with optional repetition::

    regular               the regular representation (finite groups)
    trivial               the trivial irrep
    irrep:k               irrep of frequency k (C_N, SO2) or flip frequency k (flip)
    irrep:j,k             irrep (j, k) of D_N / O2 (flip frequency j, frequency k)
    quotient:M            G/C_M for C_N (M divides N); quotient:1 / quotient:2 for flip
    quotient:None,M       G/C_M for D_N; quotient:None,-1 is O(2)/SO(2)
    quotient:a,M          G/H for the dihedral (M > 1) or flip (M = 1) subgroup H of D_N
                          (a: reflection index, 0 <= a < N/M)
    regular*4, 4*regular  four copies

Fields of groups acting on R³ (escnn ids)::

    trivial, regular, std     trivial, regular (finite groups), standard (the 3×3 action)
    irrep:l / irrep:j,l       SO3 degree l / O3 parity j and degree l (irrep:1,1 = vector)
    irrep:k                   O, I: escnn's id (O: 0, 1, -1, 2, 3); C<N>z, inv, mir: k
    irrep:j,k                 D<N>z, conical<N> (and their O(2) versions)
    irrep:a,<id of H>         C2 × H groups (Oh, Ih, cyl, fullcyl): inversion sign a, e.g.
                              irrep:1,-1 = ((1,), (-1,), 0); the tuple also works:
                              irrep:((1,),(-1,),0)
    quotient:<subgroup id>    escnn's subgroup id as a Python literal, e.g. quotient:(False,4)
                              (O: the 6 cube faces), quotient:(2,(False,4)) (Oh)

>>> from cupysteer.fields_spec import parse_group, parse_field_type
>>> G = parse_group("D4")
>>> t = parse_field_type(G, "regular*2,irrep:1,1,trivial")
>>> t.size, format_field_type(t)
(19, '2*regular,irrep:1,1,trivial')
>>> O = parse_group("O")
>>> t3 = parse_field_type(O, "regular,quotient:(False,4),irrep:-1")
>>> t3.size, format_group(O), format_field_type(t3)
(33, 'O', 'regular,quotient:(False,4),irrep:-1')

Every malformed spelling raises :class:`ValueError` that lists the accepted spellings.
"""
from __future__ import annotations

import re

from ._base import GroupBase
from .field_type import FieldType
from .fields_spec3 import format_field3, format_group3, parse_field3, parse_group3
from .fields_spec_common import (FIELD_SPELLINGS, FIELD_SPELLINGS_3D, GROUP_SPELLINGS,
                                 GROUP_SPELLINGS_3D, NUM, field_error, group_error, int_arg,
                                 parse_axis, parse_nonneg_int)
from .groups import (DEFAULT_AXIS, DEFAULT_MAXIMUM_FREQUENCY, CyclicGroup, DihedralGroup,
                     FlipGroup, O2, PlanarGroup, SO2)
from .representation import Representation

__all__ = ["GROUP_SPELLINGS", "FIELD_SPELLINGS", "GROUP_SPELLINGS_3D", "FIELD_SPELLINGS_3D",
           "parse_group", "parse_field",
           "parse_fields", "parse_field_type", "format_group", "format_field",
           "format_field_type"]


def parse_group(spec) -> PlanarGroup:
    """The group named by ``spec`` (see the module docstring); a group passes through."""
    if isinstance(spec, GroupBase):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise group_error(spec, "empty")
    parts = [p.strip() for p in spec.strip().split(":")]
    head = parts[0].lower().replace("(", "").replace(")", "")
    rest = parts[1:]
    g3 = parse_group3(head, rest, spec)
    if g3 is not None:
        return g3
    m = re.fullmatch(r"([cd])(\d+)", head)
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
    raise group_error(spec)


def format_group(group) -> str:
    """The spelling of ``group`` that :func:`parse_group` reads back."""
    if group.space_dimension == 3:
        return format_group3(group)
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
        try:
            return (float(a), M)
        except ValueError:
            raise field_error(spec, group, f"a must be None or an angle, got {a!r}") from None
    return (int_arg(a, spec, group, "a"), M)


def parse_field(group: PlanarGroup, spec: str) -> Representation:
    """One field (no repetition) of ``group``."""
    if isinstance(spec, Representation):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise field_error(spec, group, "empty")
    s = spec.strip()
    while s.startswith("(") and s.endswith(")"):
        s = s[1:-1].strip()
    kind, _, body = s.partition(":")
    kind = kind.strip().lower()
    try:
        if group.space_dimension == 3:
            return parse_field3(group, kind, body, s)
        if kind in ("regular", "trivial") and not body:
            return (group.regular_representation if kind == "regular"
                    else group.trivial_representation)
        if kind == "irrep" and body:
            return group.irrep(*_irrep_id(group, _args(body), s)).representation
        if kind == "quotient" and body:
            return group.quotient_representation(_subgroup_id(group, _args(body), s))
    except ValueError as exc:
        if str(exc).startswith("unknown field"):
            raise
        raise field_error(s, group, str(exc)) from None
    raise field_error(s, group)


_REPEAT = re.compile(r"^\s*(?:(\d+)\s*\*\s*(.+?)|(.+?)\s*\*\s*(\d+))\s*$")
# a token that continues the previous field's arguments ("irrep:1", "1" -> "irrep:1,1")
_CONTINUATION = re.compile(rf"^\s*(?:{NUM}|none)\)?\s*(?:\*\s*\d+)?\s*$", re.IGNORECASE)


def _split_fields(spec: str) -> list[str]:
    tokens, depth, cur = [], 0, ""
    for ch in spec:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch in ",;+" and depth == 0:
            tokens.append(cur)
            cur = ""
        else:
            cur += ch
    tokens.append(cur)
    out: list[str] = []
    for t in tokens:
        if out and ":" in out[-1] and _CONTINUATION.match(t):
            out[-1] += "," + t.strip()
        else:
            out.append(t.strip())
    return out


def parse_fields(group: PlanarGroup, spec) -> list[Representation]:
    """A comma-separated list of fields, e.g. ``"regular*4,irrep:1"``, as representations.

    A list or tuple of spellings (or Representations) is accepted too.
    """
    if isinstance(spec, (list, tuple)):
        items = list(spec)
    elif isinstance(spec, str):
        if not spec.strip():
            raise field_error(spec, group, "empty")
        items = _split_fields(spec)
    else:
        raise field_error(spec, group, "expected a string")
    reps: list[Representation] = []
    for item in items:
        if isinstance(item, Representation):
            reps.append(item)
            continue
        if not isinstance(item, str) or not item.strip():
            raise field_error(spec, group, "empty field in the list")
        m = _REPEAT.match(item)
        count, body = 1, item
        if m:
            count = int(m.group(1) or m.group(4))
            body = m.group(2) or m.group(3)
            if count < 1:
                raise field_error(item, group, "the repetition count must be >= 1")
        reps += [parse_field(group, body)] * count
    return reps


def parse_field_type(group, spec) -> FieldType:
    """A :class:`~cupysteer.FieldType` of the group (or group spelling) ``group``."""
    group = parse_group(group)
    return FieldType(group, parse_fields(group, spec))


def format_field(rep: Representation) -> str:
    """The spelling of one field (``rep.name`` when it has no spelling)."""
    name = rep.name
    if rep.group.space_dimension == 3:
        return format_field3(rep)
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


def format_field_type(ftype: FieldType) -> str:
    """The spelling of a field type, runs of equal fields as ``count*name``."""
    out, prev, n = [], None, 0
    for r in list(ftype.representations) + [None]:
        if r is not None and prev is not None and r == prev:
            n += 1
            continue
        if prev is not None:
            s = format_field(prev)
            out.append(s if n == 1 else f"{n}*{s}")
        prev, n = r, 1
    return ",".join(out)
