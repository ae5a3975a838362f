"""What the layer sub-commands of ``cupysteer`` share: the one-line usage error, progress
output, and the LayerBasis (and weights) built from the layer arguments."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


class UsageError(Exception):
    """Bad input for one argument (exit status 2)."""

    def __init__(self, argument: str, message: str):
        super().__init__(f"argument {argument}: {message}")


def dest(option: str) -> str:
    """The argparse attribute of an option: ``--max-columns`` → ``max_columns``."""
    return option.lstrip("-").replace("-", "_")


def require_min(args, minimum: int, *options: str) -> None:
    """UsageError for the first of ``options`` whose value is below ``minimum``."""
    for option in options:
        value = getattr(args, dest(option))
        if value < minimum:
            raise UsageError(option, f"must be >= {minimum}, got {value}")


def say(args, *msg):
    if not getattr(args, "quiet", False):
        print(*msg, file=sys.stderr, flush=True)


# ---- building a basis from the arguments -------------------------------------------------
def _floats(text, argument):
    try:
        vals = [float(x) for x in str(text).replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise UsageError(argument, f"expected comma-separated numbers, got {text!r}") from None
    if not vals:
        raise UsageError(argument, f"expected at least one number, got {text!r}")
    return vals


def _setting_argument(message: str) -> str:
    for prefix, arg in (("rings", "--rings"), ("sigma", "--sigma"),
                        ("frequencies_cutoff", "--cutoff"), ("maximum_offset", "--max-offset"),
                        ("kernel_size", "--size"), ("dilation", "--dilation")):
        if message.startswith(prefix):
            return arg
    return "--in/--out/--size"


def resolved_kwargs(args, group=None) -> dict:
    kw = dict(kernel_size=args.size, dilation=args.dilation)
    if args.size < 1:
        raise UsageError("--size", f"the kernel size must be >= 1, got {args.size}")
    if args.dilation < 1:
        raise UsageError("--dilation", f"the dilation must be >= 1, got {args.dilation}")
    kw["rings"] = None if args.rings is None else _floats(args.rings, "--rings")
    if args.sigma is None:
        kw["sigma"] = None
    else:
        s = _floats(args.sigma, "--sigma")
        kw["sigma"] = s[0] if len(s) == 1 else s
    kw["frequencies_cutoff"] = None
    if args.cutoff is not None:
        c = _floats(args.cutoff, "--cutoff")
        if len(c) != 1:
            raise UsageError("--cutoff", f"expected one number, got {args.cutoff!r}")
        kw["frequencies_cutoff"] = c[0]
    kw["maximum_offset"] = args.max_offset
    if group is not None and group.space_dimension == 3:
        if args.max_offset is not None:
            raise UsageError("--max-offset", "is a planar (2D) setting; groups acting on R³ "
                                             "have no alias offsets")
        c = kw["frequencies_cutoff"]
        if c is not None and c < 0:  # the planar policies -1, -2, -3 by escnn's names
            names = {-1.0: None, -2.0: "default2", -3.0: "default3"}
            if c not in names:
                raise UsageError("--cutoff", f"expected a positive float c (F(R) = c·R) or a "
                                             f"policy -1, -2, -3, got {args.cutoff!r}")
            kw["frequencies_cutoff"] = names[c]
    return kw


def build_basis(args, progress: bool | None = None):
    """(LayerBasis, seconds) from parsed layer arguments; UsageError names the argument."""
    from .basis import EmptyBasisError, LayerBasis
    from .cache import default_cache
    from .field_type import FieldType
    from .fields_spec import parse_fields, parse_group
    from .r3.settings import grid_points3, resolve_settings3
    from .settings import grid_points, resolve_settings

    try:
        group = parse_group(args.group)
    except ValueError as exc:
        raise UsageError("--group", str(exc)) from None
    types = {}
    for argument, spec in (("--in", args.in_fields), ("--out", args.out_fields or args.in_fields)):
        try:
            types[argument] = FieldType(group, parse_fields(group, spec))
        except ValueError as exc:
            raise UsageError(argument, str(exc)) from None
    kw = resolved_kwargs(args, group)
    t0 = time.perf_counter()
    try:
        if group.space_dimension == 3:
            settings = resolve_settings3(kw["kernel_size"], kw["dilation"], kw["rings"],
                                         kw["sigma"], kw["frequencies_cutoff"])
        else:
            settings = resolve_settings(kw["kernel_size"], kw["dilation"], kw["rings"],
                                        kw["sigma"], kw["frequencies_cutoff"],
                                        kw["maximum_offset"])
    except ValueError as exc:
        raise UsageError(_setting_argument(str(exc)), str(exc)) from None
    # Sample the irreps-pair bases first (into the process cache), with progress lines.
    points = (grid_points3 if group.space_dimension == 3 else grid_points)(args.size,
                                                                           args.dilation)
    ins = list(dict.fromkeys(types["--in"].irreps))
    outs = list(dict.fromkeys(types["--out"].irreps))
    pairs = [(a, b) for a in ins for b in outs]
    progress = sys.stderr.isatty() if progress is None else progress
    cache = default_cache()
    for i, (a, b) in enumerate(pairs):
        pb = cache.pair_basis(a, b, settings, points)
        if progress and not args.quiet:
            print(f"\r  sampling irreps pairs: {i + 1}/{len(pairs)} ({a.name} → {b.name}: "
                  f"{len(pb)} elements)   ", end="", file=sys.stderr, flush=True)
    if progress and not args.quiet and pairs:
        print(file=sys.stderr)
    try:
        basis = LayerBasis(types["--in"], types["--out"], **kw)
    except EmptyBasisError as exc:
        raise UsageError("--in/--out/--size/--cutoff", str(exc)) from None
    except ValueError as exc:
        raise UsageError(_setting_argument(str(exc)), str(exc)) from None
    return basis, time.perf_counter() - t0


def describe(basis) -> str:
    from .fields_spec import format_field_type, format_group
    fs = "×".join(str(s) for s in basis.filter_shape)
    return (f"{format_group(basis.in_type.group)}: {format_field_type(basis.in_type)} → "
            f"{format_field_type(basis.out_type)}, {fs} filter, {basis.dim} weights")


def load_weights(spec: str, basis, seed: int, dtype) -> tuple[np.ndarray, str]:
    if spec == "random":
        return np.random.default_rng(seed).standard_normal(basis.dim).astype(dtype), \
            f"standard normal weights (seed {seed})"
    if spec == "he":
        return basis.init_weights(np.random.default_rng(seed), dtype=dtype), \
            f"generalised He weights (seed {seed})"
    path = Path(spec)
    if path.suffix not in (".npy", ".npz"):
        raise UsageError("--weights", f"expected random, he or a .npy/.npz file, got {spec!r}")
    if not path.is_file():
        raise UsageError("--weights", f"no such file: {spec}")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                keys = list(data.keys())
                if "weights" in keys:
                    w = data["weights"]
                elif len(keys) == 1:
                    w = data[keys[0]]
                else:
                    raise UsageError("--weights", f"{spec} holds {keys}; name the array "
                                                  f"'weights'")
        else:
            w = data
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError("--weights", f"cannot read {spec}: {exc}") from None
    w = np.asarray(w)
    if w.dtype.kind not in "fiu":
        raise UsageError("--weights", f"{spec}: expected real numbers, got dtype {w.dtype}")
    if w.shape != (basis.dim,):
        raise UsageError("--weights", f"{spec}: expected shape ({basis.dim},) for this basis, "
                                      f"got {w.shape}")
    if not np.isfinite(w).all():
        raise UsageError("--weights", f"{spec} contains NaN or infinity")
    return w.astype(dtype), f"weights from {spec}"
