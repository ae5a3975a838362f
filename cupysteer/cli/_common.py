"""What the layer sub-commands of ``cupysteer`` share: the one-line usage error
(:class:`UsageError`), argument checks, progress output, and the LayerBasis (``build_basis``,
``describe``) and weights (``load_weights``) built from the layer arguments."""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np

from .._checks import float_array
from .._spelling import NUM, ArgumentError
from ..basis import EmptyBasisError, LayerBasis
from ..cache import default_cache
from ..field_type import FieldType
from ..fields_spec import cli_settings, format_field_type, format_group, parse_fields, parse_group


class UsageError(Exception):
    """Bad input for one argument (exit status 2)."""

    def __init__(self, argument: str, message: str):
        super().__init__(f"argument {argument}: {message}")


def dest(option: str) -> str:
    """The argparse attribute of an option: ``--max-columns`` → ``max_columns``."""
    return option.lstrip("-").replace("-", "_")


def require_min(args, minimum: int, *options: str) -> None:
    """UsageError for the first of ``options`` whose value (or one of whose values, for a
    per-axis option such as ``--size 5,5,3``) is below ``minimum``."""
    for option in options:
        value = getattr(args, dest(option))
        if min(value if isinstance(value, tuple) else (value,)) < minimum:
            raise UsageError(option, f"must be >= {minimum}, got {_spelled(value)}")


def _spelled(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def say(args, *msg):
    """Progress on stderr unless --quiet."""
    if not getattr(args, "quiet", False):
        print(*msg, file=sys.stderr, flush=True)


def shows_progress(args, stream=None) -> bool:
    """Progress bars only on a terminal and without --quiet."""
    stream = sys.stderr if stream is None else stream
    return not getattr(args, "quiet", False) and bool(getattr(stream, "isatty", bool)())


class _PlainBar:
    """The fallback bar without tqdm: one rewritten line on the terminal."""

    def __init__(self, total, desc, stream):
        self.total, self.desc, self.stream, self.n = total, desc, stream, 0

    def update(self, n=1, note=""):
        self.n += n
        total = "?" if self.total is None else self.total
        print(f"\r  {self.desc}: {self.n}/{total} {note}   ", end="", file=self.stream,
              flush=True)

    def close(self):
        if self.n:
            print(file=self.stream, flush=True)


def progress_bar(args, total, desc: str, stream=None):
    """A bar with ``update(n)`` and ``close()``: tqdm's (``pip install tqdm``)
    or a plain one-line counter, on a terminal only (None when no progress is shown)."""
    stream = sys.stderr if stream is None else stream
    if not shows_progress(args, stream):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainBar(total, desc, stream)
    return _TqdmBar(tqdm(total=total, desc=f"  {desc}", file=stream, leave=False,
                         dynamic_ncols=True))


class _TqdmBar:
    """tqdm's bar with the interface of :class:`_PlainBar`."""

    def __init__(self, bar):
        self.bar = bar

    def update(self, n=1, note=""):
        if note:
            self.bar.set_postfix_str(note, refresh=False)
        self.bar.update(n)

    def close(self):
        self.bar.close()


def with_progress(args, items, desc: str, note=None):
    """Iterate ``items`` (a sized iterable) with a progress bar on a terminal."""
    items = list(items)
    bar = progress_bar(args, len(items), desc)
    try:
        for item in items:
            yield item
            if bar is not None:
                bar.update(1, note(item) if note else "")
    finally:
        if bar is not None:
            bar.close()


# ---- building a basis from the arguments -------------------------------------------------
def _floats(text, argument):
    parts = [x for x in str(text).replace(" ", "").split(",") if x != ""]
    if not all(re.fullmatch(NUM, x) for x in parts):
        raise UsageError(argument, f"expected comma-separated numbers (ASCII digits, e.g. "
                                   f"0,1.5,3), got {text!r}")
    vals = [float(x) for x in parts]
    if not vals:
        raise UsageError(argument, f"expected at least one number, got {text!r}")
    return vals


def _setting_argument(message: str) -> str:
    for prefix, arg in (("rings", "--rings"), ("sigma", "--sigma"),
                        ("frequencies_cutoff", "--cutoff"), ("maximum_offset", "--max-offset"),
                        ("kernel_size", "--size"), ("dilation", "--dilation"),
                        ("spacing", "--spacing")):
        if message.startswith(prefix):
            return arg
    return "--in/--out/--size"


def resolved_kwargs(args, group=None) -> dict:
    """The LayerBasis settings of the layer arguments, translated for the space of ``group``
    (when given) by its spelling's ``cli_settings``."""
    kw = dict(kernel_size=args.size, dilation=args.dilation)
    if min(args.size if isinstance(args.size, tuple) else (args.size,)) < 1:
        raise UsageError("--size", f"the kernel size must be >= 1, got {_spelled(args.size)}")
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
    spacing = getattr(args, "spacing", None)
    if spacing is not None:
        s = _floats(spacing, "--spacing")
        kw["spacing"] = s[0] if len(s) == 1 else s
    if group is None:
        return kw
    try:  # what the group's space makes of them (R³: no --max-offset, escnn's policy names)
        return cli_settings(group, kw, {"frequencies_cutoff": args.cutoff})
    except ArgumentError as exc:
        raise UsageError(exc.argument, str(exc)) from None


def _group_and_types(args):
    """(group, {"--in": FieldType, "--out": FieldType}) of --group, --in and --out."""
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
    return group, types


def _sample_pairs(args, types, settings, kw) -> None:
    """Sample the irreps-pair bases into the process cache, with a progress bar on a
    terminal."""
    points = types["--in"].group.space.grid_points(kw["kernel_size"], kw["dilation"],
                                                   kw.get("spacing"))
    ins = list(dict.fromkeys(types["--in"].irreps))
    outs = list(dict.fromkeys(types["--out"].irreps))
    cache = default_cache()
    for a, b in with_progress(args, [(a, b) for a in ins for b in outs],
                              "sampling irreps pairs", lambda p: f"{p[0].name} → {p[1].name}"):
        cache.pair_basis(a, b, settings, points)


def build_basis(args, progress: bool | None = None):
    """(LayerBasis, seconds) from parsed layer arguments; UsageError names the argument.
    ``progress``: False hides the bar (default: shown on a terminal unless --quiet)."""
    group, types = _group_and_types(args)
    kw = resolved_kwargs(args, group)
    t0 = time.perf_counter()
    try:
        settings = group.space.resolve_settings(**kw)
    except ValueError as exc:
        raise UsageError(_setting_argument(str(exc)), str(exc)) from None
    if progress is False:
        args = _Quiet(args)
    _sample_pairs(args, types, settings, kw)
    try:
        basis = LayerBasis(types["--in"], types["--out"], **kw)
    except EmptyBasisError as exc:
        raise UsageError("--in/--out/--size/--cutoff", str(exc)) from None
    except ValueError as exc:
        raise UsageError(_setting_argument(str(exc)), str(exc)) from None
    return basis, time.perf_counter() - t0


class _Quiet:
    """``args`` with ``quiet`` set (the other attributes read through)."""

    quiet = True

    def __init__(self, args):
        self._args = args

    def __getattr__(self, name):
        return getattr(self._args, name)


def describe(basis) -> str:
    """One line: 'C8: regular → regular,irrep:1, 7×7 filter, 96 weights'."""
    fs = "×".join(str(s) for s in basis.filter_shape)
    if basis.spacing is not None:
        fs += " (spacing " + "×".join(f"{s:g}" for s in basis.spacing) + ")"
    return (f"{format_group(basis.in_type.group)}: {format_field_type(basis.in_type)} → "
            f"{format_field_type(basis.out_type)}, {fs} filter, {basis.dim} weights")


def _read_weights(spec: str) -> np.ndarray:
    """The array of the .npy / .npz file ``spec`` (an .npz's 'weights' or only array)."""
    path = Path(spec)
    if path.suffix not in (".npy", ".npz"):
        raise UsageError("--weights", f"expected random, he or a .npy/.npz file, got {spec!r}")
    if not path.is_file():
        raise UsageError("--weights", f"no such file: {spec}")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            return np.asarray(data)
        with data:
            keys = list(data.keys())
            if "weights" in keys:
                return np.asarray(data["weights"])
            if len(keys) == 1:
                return np.asarray(data[keys[0]])
            raise UsageError("--weights", f"{spec} holds {keys}; name the array 'weights'")
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError("--weights", f"cannot read {spec}: {exc}") from None


def load_weights(spec: str, basis, seed: int, dtype) -> tuple[np.ndarray, str]:
    """(weights, how): 'random', 'he' or a .npy / .npz file (array 'weights') of shape
    (basis.dim,), as ``dtype``."""
    if spec == "random":
        return np.random.default_rng(seed).standard_normal(basis.dim).astype(dtype), \
            f"standard normal weights (seed {seed})"
    if spec == "he":
        return basis.init_weights(np.random.default_rng(seed), dtype=dtype), \
            f"generalised He weights (seed {seed})"
    w = _read_weights(spec)
    if w.shape != (basis.dim,):
        raise UsageError("--weights", f"{spec}: expected shape ({basis.dim},) for this basis, "
                                      f"got {w.shape}")
    try:  # the API's rule: float32/float64, integers and bools converted exactly
        w = float_array(w, f"the weights in {spec}")
    except (ValueError, TypeError) as exc:
        raise UsageError("--weights", str(exc)) from None
    return w.astype(dtype), f"weights from {spec}"
