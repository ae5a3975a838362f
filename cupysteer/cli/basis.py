"""``cupysteer basis``: the basis, plan and filter bank as plain arrays in .npz (the format of
:mod:`cupysteer.io`), and PNG pictures of the basis and the filters (:mod:`cupysteer.gallery`).

Every file is written to exactly the path given (no suffix is appended), atomically (a
temporary file renamed over it); a path that names a directory, lies in a missing directory
or is taken by something other than a regular file is refused (exit 2) before any work.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from .. import gallery
from ..io import basis_arrays, save_bank
from ._common import UsageError, build_basis, describe, dest, load_weights, require_min, say

#: the filter picture shows at most this many output × input channels
FILTER_ROWS, FILTER_COLUMNS = 16, 32


def check_output_path(path, option: str) -> Path:
    """``path`` if a file can be written there: not a directory, its directory exists, and
    whatever is there now is a regular file (a FIFO or device is never opened)."""
    p = Path(path)
    if str(path).endswith(os.sep) or p.is_dir():
        raise UsageError(option, f"{path} is a directory; give a file name, e.g. "
                                 f"{p / ('bank.npz' if option.startswith('-o') else 'basis.png')}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(option, f"cannot write {path}: the directory {parent} does not exist")
    try:
        mode = os.lstat(p).st_mode
    except FileNotFoundError:
        return p
    except OSError as exc:
        raise UsageError(option, f"cannot write {path}: {exc}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise UsageError(option, f"{path} exists and is not a regular file; give another name")
    return p


def _check_outputs(args) -> None:
    """Refuse bad output paths (and two options naming one file) before any work."""
    seen = {}
    for option in ("-o/--output", "--png", "--filters-png"):
        path = getattr(args, dest(option.split("/")[-1]))
        if path:
            p = check_output_path(path, option)
            key = os.path.abspath(p)
            if key in seen:
                raise UsageError(option, f"{path} is also the file of {seen[key]}; give "
                                         f"distinct names")
            seen[key] = option


def cmd_basis(args) -> int:
    """Build the layer, expand --weights, write -o, --png and --filters-png."""
    dtype = np.dtype(args.dtype)
    require_min(args, 1, "--max-columns")
    if args.filters_png and not args.weights:
        raise UsageError("--filters-png", "needs --weights (random, he or a file)")
    _check_outputs(args)
    basis, secs = build_basis(args)
    if args.weights:  # bad weights fail before anything is printed or written
        w, how = load_weights(args.weights, basis, args.seed, dtype)
    say(args, f"cupysteer: built {describe(basis)} in {secs:.2f} s")
    arrays = basis_arrays(basis, args.dilation)
    filters = None
    if args.weights:
        filters = basis.expand(w)
        arrays.update(weights=w, filters=filters, bias_expansion=basis.bias_expansion(),
                      weights_source=np.array(how))
        say(args, f"cupysteer: expanded {how} to filters {filters.shape} {dtype}")
    if args.output:
        try:
            save_bank(args.output, arrays)
        except OSError as exc:
            raise UsageError("-o/--output", f"cannot write {args.output}: {exc}") from None
        say(args, f"cupysteer: wrote {args.output} ({len(arrays)} arrays, "
                   f"{Path(args.output).stat().st_size / 1024:.1f} KiB)")
    if args.png:
        _write_png(args, "--png", lambda g: g.plot_basis(basis, max_columns=args.max_columns),
                   lambda g: g.write_png(args.png, g.basis_image(basis, args.max_columns)))
    if args.filters_png:
        F, title = _shown_filters(filters, describe(basis))
        _write_png(args, "--filters-png", lambda g: g.plot_filters(F, title=title),
                   lambda g: g.write_png(args.filters_png, g.filters_image(F)))
    if not (args.output or args.png or args.filters_png):
        say(args, "cupysteer: nothing written (give -o FILE.npz and/or --png FILE.png)")
    return 0


def _shown_filters(filters, title: str):
    """The channels the filter picture shows (at most FILTER_ROWS × FILTER_COLUMNS; R³: the
    first 8 × 8) and its title, which says when channels are left out."""
    F = np.asarray(filters)
    co, ci = F.shape[:2]
    rows, cols = (8, 8) if F.ndim == 5 else (FILTER_ROWS, FILTER_COLUMNS)
    if ci == 1 and F.ndim == 4:  # one input channel: the outputs are laid out in rows of 8
        rows = FILTER_ROWS * 8
    F = np.asarray(F[:rows, :cols], np.float64)
    if F.ndim == 5:
        title += "; central slices z=0 | y=0 | x=0"
    if F.shape[:2] != (co, ci) or F.ndim == 5:
        title += f" of channels [:{F.shape[0]}, :{F.shape[1]}] of ({co}, {ci})"
    return F, title


def _write_png(args, argument, with_matplotlib, without):
    """Draw with matplotlib (saved to exactly the path), or without titles when it is
    missing; UsageError on OSError or a picture too large to draw."""
    path = getattr(args, dest(argument))
    try:
        try:
            fig = with_matplotlib(gallery)
        except ImportError:
            without(gallery)
            say(args, f"cupysteer: matplotlib is not installed: wrote {path} without titles "
                       f"(for the titled gallery: {gallery.PLOT_EXTRA_HINT})")
            return
        import matplotlib.pyplot as plt
        try:
            gallery.save_figure(fig, path)
        finally:
            plt.close(fig)
    except OSError as exc:
        raise UsageError(argument, f"cannot write {path}: {exc}") from None
    except ValueError as exc:
        raise UsageError(argument, str(exc)) from None
    say(args, f"cupysteer: wrote {path}")
