"""The module paths of cupysteer 0.1 that the restructure into ``r2/``, ``r3/`` and ``backends/``
moved, kept working in one place.

Old code (``import cupysteer.groups``, ``from cupysteer.packed import launch_config``) and old
pickles (a pickled ``CyclicGroup`` names ``cupysteer.groups.CyclicGroup``; ``torch.save`` of
a whole model pickles its field types) keep loading: each old module path is registered in
``sys.modules`` as the module that now holds its names (or, where the names moved to several
modules or were renamed, a small module made of them). New code should import from the new
homes listed here. ``tests/contracts/test_public_api.py`` freezes 0.1's public surface.
"""
from __future__ import annotations

import sys
import types

from . import settings as _core_settings
from .backends import launch, packing
from .group import GroupBase, IrrepBase
from .r2 import groups, harmonics, irreps, subgroups
from .r2 import settings as r2_settings
from .r3 import irreps as r3_irreps
from .r3 import spelling as r3_spelling
from .r3._base import Group3

__all__ = ["MOVED"]


def _module(name: str, doc: str, **names) -> types.ModuleType:
    m = types.ModuleType(name, doc)
    m.__dict__.update(names)
    m.__all__ = sorted(names)
    return m


def _make_subgroup(group, sid):
    return group.subgroup(sid)


#: old module path → the module now answering for it
MOVED = {
    "cupysteer.groups": groups,
    "cupysteer.irreps": irreps,
    "cupysteer.harmonics": harmonics,
    "cupysteer._subgroups": _module(
        "cupysteer._subgroups", "Moved: cupysteer.r2.groups (subgroups), cupysteer.r2.subgroups.",
        make_subgroup=_make_subgroup, restrict_irrep=subgroups.restrict_irrep),
    "cupysteer._base": _module("cupysteer._base", "Moved: cupysteer.group.",
                               GroupBase=GroupBase, IrrepBase=IrrepBase),
    "cupysteer.packed": _module(
        "cupysteer.packed", "Moved: cupysteer.backends.packing and cupysteer.backends.launch.",
        PackedPlan=packing.PackedPlan, pack_plans=packing.pack_plans,
        FP_FIELDS=packing.FP_FIELDS, BLK_FIELDS=packing.BLK_FIELDS,
        LaunchConfig=launch.LaunchConfig, launch_config=launch.launch_config,
        SHARED_MEMORY_LIMIT=launch.SHARED_MEMORY_LIMIT, THREADS=launch.THREADS,
        MIN_TILE=launch.MIN_TILE),
    "cupysteer.fields_spec3": _module(
        "cupysteer.fields_spec3", "Moved: cupysteer.r3.spelling (without the 3 suffix).",
        parse_group3=r3_spelling.parse_group, format_group3=r3_spelling.format_group,
        parse_field3=r3_spelling.parse_field, format_field3=r3_spelling.format_field),
    "cupysteer.r3._group3": _module("cupysteer.r3._group3",
                                    "Moved: cupysteer.r3._base and cupysteer.r3.irreps.",
                                    Group3=Group3, Irrep3=r3_irreps.Irrep3),
}

# names that left a module which still exists: cupysteer.settings was the planar settings
_PLANAR_SETTINGS = ("grid_points", "resolve_settings", "polar")


def install() -> None:
    """Register the old paths (idempotent; called once by ``import cupysteer``)."""
    for name, module in MOVED.items():
        sys.modules.setdefault(name, module)
        parent, _, child = name.rpartition(".")
        if not hasattr(sys.modules[parent], child):  # `import cupysteer.groups` binds it
            setattr(sys.modules[parent], child, sys.modules[name])
    for name in _PLANAR_SETTINGS:
        if not hasattr(_core_settings, name):
            setattr(_core_settings, name, getattr(r2_settings, name))
