"""``cupysteer basis``: the basis, plan and filter bank as plain arrays in .npz (the format of
:mod:`cupysteer.io`), and PNG pictures of the basis and the filters (:mod:`cupysteer.gallery`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import gallery
from ..io import basis_arrays, save_bank
from ._common import UsageError, build_basis, describe, dest, load_weights, require_min, say


def cmd_basis(args) -> int:
    """Build the layer, expand --weights, write -o, --png and --filters-png."""
    dtype = np.dtype(args.dtype)
    require_min(args, 1, "--max-columns")
    if args.filters_png and not args.weights:
        raise UsageError("--filters-png", "needs --weights (random, he or a file)")
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
        _write_png(args, "--png", lambda g: g.plot_basis(basis, args.png,
                                                         max_columns=args.max_columns),
                   lambda g: g.write_png(args.png, g.basis_image(basis, args.max_columns)))
    if args.filters_png:
        F, title = np.asarray(filters, np.float64), describe(basis)
        if F.ndim == 5:  # 3D: central slices of the first 8×8 channels
            F = F[:8, :8]
            title += f"; central slices z=0 | y=0 | x=0 of channels [:{len(F)}, :{F.shape[1]}]"
        _write_png(args, "--filters-png",
                   lambda g: g.plot_filters(F, args.filters_png, title=title),
                   lambda g: g.write_png(args.filters_png, g.filters_image(F)))
    if not (args.output or args.png or args.filters_png):
        say(args, "cupysteer: nothing written (give -o FILE.npz and/or --png FILE.png)")
    return 0


def _write_png(args, argument, with_matplotlib, without):
    """Draw with matplotlib, or without titles when it is missing; UsageError on OSError."""
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
        plt.close(fig)
    except OSError as exc:
        raise UsageError(argument, f"cannot write {path}: {exc}") from None
    say(args, f"cupysteer: wrote {path}")
