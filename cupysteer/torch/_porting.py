"""Porting from e2cnn/escnn: the keywords their layers take, the positional-argument trap and
e2cnn's ``groups`` (shared by the layers of :mod:`cupysteer.torch.layers`)."""
from __future__ import annotations

from ..field_type import FieldType

__all__ = ["GUIDE", "porting_keywords", "no_positional", "group_type"]

# keyword arguments a layer hands to LayerBasis
_BASIS_SETTINGS = frozenset({"rings", "sigma", "frequencies_cutoff", "maximum_offset", "cache"})
GUIDE = {2: "docs/migrate_from_e2cnn.md", 3: "docs/migrate_from_escnn.md"}
_POSITIONAL = {2: "R2Conv", 3: "R3Conv"}


def porting_keywords(cls_name: str, ndim: int, basis_settings: dict) -> dict:
    """e2cnn's / escnn's keywords: ``basisexpansion='blocks'`` (their only algorithm, the one
    cupysteer implements) and ``recompute`` (``True``: build without the cache) are accepted;
    ``basis_filter`` is refused with the reason; anything else unknown names the guide."""
    guide = GUIDE[ndim]
    kw = dict(basis_settings)
    mode = kw.pop("basisexpansion", "blocks")
    if mode != "blocks":
        raise ValueError(f"{cls_name}: basisexpansion={mode!r} is not an algorithm of e2cnn/"
                         f"escnn; 'blocks' (their only one) is what cupysteer computes: drop "
                         f"the argument (see {guide})")
    if kw.pop("recompute", False):
        kw["cache"] = False
    if kw.get("basis_filter") is not None:
        raise TypeError(f"{cls_name}: basis_filter is not supported (it drops basis elements "
                         f"and changes the weight layout); build the layer without it or "
                         f"filter the weights yourself (see {guide})")
    kw.pop("basis_filter", None)
    unknown = sorted(set(kw) - _BASIS_SETTINGS)
    if unknown:
        raise TypeError(f"{cls_name} got unsupported keyword(s) {unknown}; basis settings are "
                        f"{sorted(_BASIS_SETTINGS)} and e2cnn/escnn's basisexpansion, "
                        f"recompute and groups (see {guide})")
    return kw


def no_positional(cls_name: str, ndim: int, args: tuple):
    if args:
        raise TypeError(
            f"{cls_name}: pass stride, padding, dilation, … as keywords (got {len(args)} "
            f"positional argument(s) after kernel_size: {args!r:.60}). e2cnn/escnn's "
            f"{_POSITIONAL[ndim]} reads the 4th positional argument as padding, torch's "
            f"Conv{ndim}d as stride, so a positional value would silently mean one or the "
            f"other: write padding=… or stride=… (see {GUIDE[ndim]})")


def group_type(ftype: FieldType, groups: int, name: str, guide: str) -> FieldType:
    """The field type of one of ``groups`` equal groups of fields (e2cnn's ``groups``)."""
    n = len(ftype)
    if n % groups:
        raise ValueError(f"groups={groups}: {name} has {n} fields, not divisible by groups "
                         f"(see {guide})")
    m = n // groups
    reps = ftype.representations
    if any(reps[i] != reps[i % m] for i in range(n)):
        raise ValueError(f"groups={groups}: {name} must be {groups} repetitions of one list of "
                         f"{m} fields (as in e2cnn/escnn), got {ftype} (see {guide})")
    return FieldType(ftype.group, reps[:m])
