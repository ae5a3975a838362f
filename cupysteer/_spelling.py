"""What the spellings of every space share (:mod:`cupysteer.r2.spelling`,
:mod:`cupysteer.r3.spelling`): the errors that quote the accepted spellings, the parsing of
numbers and ``axis=<radians>`` options, and :class:`ArgumentError` (a command-line setting
that a space rejects, raised by the spellings' ``cli_settings``). Internal; the public entry
points are in :mod:`cupysteer.fields_spec`, which tries every space.
"""
from __future__ import annotations

import math
import re

NUM = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_AXIS = re.compile(rf"^axis=({NUM})$")


class UnknownGroup(ValueError):
    """A group spelling that no space reads; :mod:`cupysteer.fields_spec` adds the lists of
    accepted spellings of every space to the message."""

    def __init__(self, spec, why=""):
        self.spec, self.why = spec, why
        super().__init__(f"unknown group {spec!r}" + (f" ({why})" if why else ""))


class ArgumentError(ValueError):
    """A value that one command-line argument cannot take for the group's space; the command
    line reports it as ``argument <argument>: <message>``."""

    def __init__(self, argument: str, message: str):
        self.argument = argument
        super().__init__(message)


def group_error(spec, why=""):
    return UnknownGroup(spec, why)


def parse_axis(part: str, spec: str) -> float:
    m = _AXIS.match(part.strip().lower())
    if not m:
        raise group_error(spec, f"expected axis=<radians>, got {part!r}")
    a = float(m.group(1))
    if not math.isfinite(a):
        raise group_error(spec, "the axis must be finite")
    return a


def parse_nonneg_int(text: str, spec: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]+", text.strip()):
        raise group_error(spec, f"{what} must be an integer >= 0, got {text!r}")
    return int(text)


def field_error(spec, group, why=""):
    why = f" ({why})" if why else ""
    gname = f" of {group.name}" if group is not None else ""
    accepted = group.space.field_spellings if group is not None else "see cupysteer.fields_spec"
    return ValueError(f"unknown field {spec!r}{gname}{why}; accepted: {accepted}")


def int_arg(text, spec, group, what):
    t = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]+", t):
        raise field_error(spec, group, f"{what} must be an integer, got {t!r}")
    return int(t)
