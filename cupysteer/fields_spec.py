"""One spelling of groups and fields of every space, for the command line, the examples and
the gallery (a front end: the spellings themselves live in :mod:`cupysteer.r2.spelling` and
:mod:`cupysteer.r3.spelling`).

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

Group elements are written by :func:`format_element` ("#3", "(1, 0.7854)") and described by
:func:`describe_element` ("rotation by  90.00°", "mirror, normal (1, 0, 0)");
:func:`cli_settings` translates the basis settings of the command line for a group's space.
"""
from __future__ import annotations

import re

from ._spelling import NUM, UnknownGroup, field_error, group_error
from .field_type import FieldType
from .group import GroupBase
from .r2 import spelling as _r2_spelling
from .r2.space import SPACE as _PLANE
from .r3 import spelling as _r3_spelling
from .r3.space import SPACE as _SPACE3
from .representation import Representation

__all__ = ["GROUP_SPELLINGS", "FIELD_SPELLINGS", "GROUP_SPELLINGS_3D", "FIELD_SPELLINGS_3D",
           "parse_group", "parse_field",
           "parse_fields", "parse_field_type", "format_group", "format_field",
           "format_field_type", "describe_element", "format_element", "cli_settings"]

GROUP_SPELLINGS, FIELD_SPELLINGS = _PLANE.group_spellings, _PLANE.field_spellings
GROUP_SPELLINGS_3D, FIELD_SPELLINGS_3D = _SPACE3.group_spellings, _SPACE3.field_spellings
# R³ first: its spellings ("O", "C8z", …) are tried before the planar ones ("O2", "C8", …)
_SPELLINGS = {"r3": _r3_spelling, "r2": _r2_spelling}


def parse_group(spec) -> GroupBase:
    """The group named by ``spec`` (see the module docstring); a group passes through."""
    if isinstance(spec, GroupBase):
        return spec
    try:
        if not isinstance(spec, str) or not spec.strip():
            raise group_error(spec, "empty")
        parts = [p.strip() for p in spec.strip().split(":")]
        head = parts[0].lower().replace("(", "").replace(")", "")
        for spelling in _SPELLINGS.values():
            group = spelling.parse_group(head, parts[1:], spec)
            if group is not None:
                return group
        raise group_error(spec)
    except UnknownGroup as exc:
        why = f" ({exc.why})" if exc.why else ""
        raise ValueError(f"unknown group {exc.spec!r}{why}; accepted: {GROUP_SPELLINGS}; "
                         f"acting on R³: {GROUP_SPELLINGS_3D}") from None


def format_group(group) -> str:
    """The spelling of ``group`` that :func:`parse_group` reads back."""
    return _SPELLINGS[group.space.name].format_group(group)


def parse_field(group: GroupBase, spec: str) -> Representation:
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
        return _SPELLINGS[group.space.name].parse_field(group, kind, body, s)
    except ValueError as exc:
        if str(exc).startswith("unknown field"):
            raise
        raise field_error(s, group, str(exc)) from None


_REPEAT = re.compile(r"^\s*(?:([0-9]+)\s*\*\s*(.+?)|(.+?)\s*\*\s*([0-9]+))\s*$")
# a token that continues the previous field's arguments ("irrep:1", "1" -> "irrep:1,1")
_CONTINUATION = re.compile(rf"^\s*(?:{NUM}|none)\)?\s*(?:\*\s*[0-9]+)?\s*$", re.IGNORECASE)


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


def parse_fields(group: GroupBase, spec) -> list[Representation]:
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
    return _SPELLINGS[rep.group.space.name].format_field(rep)


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


# ---- elements and command-line settings, by the group's space ------------------------
def describe_element(group, g) -> str:
    """What the element ``g`` of ``group`` does to its space, e.g. 'rotation by  90.00°',
    'reflection, axis  45.00°', 'inversion ∘ rotation by  90.00° about (0, 0, 1)'."""
    return _SPELLINGS[group.space.name].describe_element(group, g)


def format_element(group, g) -> str:
    """The element ``g`` of ``group`` in a few characters (a finite group's own spelling or
    index, a continuous group's parameters rounded)."""
    return _SPELLINGS[group.space.name].format_element(group, g)


def cli_settings(group, kw: dict, spelled: dict | None = None) -> dict:
    """The basis settings ``kw`` of the command line (``kernel_size``, ``rings``,
    ``frequencies_cutoff``, ``maximum_offset``, …) translated for the space of ``group``;
    ``spelled`` maps a setting to the text it was given as (for the messages). Raises
    :class:`cupysteer._spelling.ArgumentError` (a ValueError naming the argument)."""
    return _SPELLINGS[group.space.name].cli_settings(kw, spelled)
