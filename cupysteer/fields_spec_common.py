"""What the planar (:mod:`cupysteer.fields_spec`) and the R³ (:mod:`cupysteer.fields_spec3`)
spellings share: the lists of accepted spellings, the errors that quote them, and the
parsing of numbers and ``axis=<radians>`` options. Internal; import the names from
:mod:`cupysteer.fields_spec`.
"""
from __future__ import annotations

import math
import re

GROUP_SPELLINGS = ("C<N> (e.g. C8), D<N> (e.g. D4), D<N>:axis=<radians>, SO2, SO2:<max "
                   "frequency>, O2, O2:<max frequency>[:axis=<radians>], flip, "
                   "flip:axis=<radians>, trivial")
FIELD_SPELLINGS = ("regular, trivial, irrep:k, irrep:j,k, quotient:M, quotient:None,M, "
                   "quotient:a,M; comma-separated, repeated with regular*4 or 4*regular")

GROUP_SPELLINGS_3D = ("SO3, SO3:<max degree>, O3, O3:<max degree>, O (octahedral), Oh, I "
                      "(icosahedral), Ih, C<N>z (e.g. C8z), SO2z[:<F>], D<N>z[:axis=<radians>], "
                      "O2z[:<F>][:axis=<radians>], conical<N>[:axis=<radians>], "
                      "conicalO2[:<F>][:axis=<radians>], cyl<N>, cylSO2[:<F>], "
                      "fullcyl<N>[:axis=<radians>], fullcylO2[:<F>][:axis=<radians>], inv, "
                      "mir[:axis=<radians>], trivial3")
FIELD_SPELLINGS_3D = ("trivial, regular, std, irrep:<escnn id> (irrep:l for SO3, irrep:j,l for "
                      "O3, irrep:-1 for O, irrep:a,<id of H> for Oh/Ih/cyl/fullcyl, or the tuple "
                      "irrep:((1,),(-1,),0)), quotient:<escnn subgroup id> (e.g. "
                      "quotient:(False,4)); comma-separated, repeated with regular*4 or 4*regular")

NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_AXIS = re.compile(rf"^axis=({NUM})$")


def group_error(spec, why=""):
    why = f" ({why})" if why else ""
    return ValueError(f"unknown group {spec!r}{why}; accepted: {GROUP_SPELLINGS}; acting on "
                      f"R³: {GROUP_SPELLINGS_3D}")


def parse_axis(part: str, spec: str) -> float:
    m = _AXIS.match(part.strip().lower())
    if not m:
        raise group_error(spec, f"expected axis=<radians>, got {part!r}")
    a = float(m.group(1))
    if not math.isfinite(a):
        raise group_error(spec, "the axis must be finite")
    return a


def parse_nonneg_int(text: str, spec: str, what: str) -> int:
    if not re.fullmatch(r"\d+", text.strip()):
        raise group_error(spec, f"{what} must be an integer >= 0, got {text!r}")
    return int(text)


def field_error(spec, group, why=""):
    why = f" ({why})" if why else ""
    gname = f" of {group.name}" if group is not None else ""
    accepted = (FIELD_SPELLINGS_3D if getattr(group, "space_dimension", 2) == 3
                else FIELD_SPELLINGS)
    return ValueError(f"unknown field {spec!r}{gname}{why}; accepted: {accepted}")


def int_arg(text, spec, group, what):
    t = text.strip()
    if not re.fullmatch(r"[+-]?\d+", t):
        raise field_error(spec, group, f"{what} must be an integer, got {t!r}")
    return int(t)
