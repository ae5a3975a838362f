"""``cupysteer basis``: the basis, plan and filter bank as plain arrays in .npz, and PNGs."""
from __future__ import annotations

from dataclasses import fields as dc_fields
from pathlib import Path

import numpy as np

from ._cli_common import UsageError, build_basis, describe, dest, load_weights, require_min, say

NPZ_FORMAT = "cupysteer.basis/1"


def basis_arrays(basis, dilation: int = 1) -> dict:
    """Every array written by ``cupysteer basis`` except the weights and filters: plain
    NumPy arrays (numbers and unicode strings), loadable with ``allow_pickle=False``."""
    from . import __version__
    from .fields_spec import format_field_type, format_group

    s = basis.settings
    kh = basis.filter_shape
    out = {
        "format": np.array(NPZ_FORMAT), "cupysteer_version": np.array(__version__),
        "group": np.array(format_group(basis.in_type.group)),
        "in_fields": np.array(format_field_type(basis.in_type)),
        "out_fields": np.array(format_field_type(basis.out_type)),
        "kernel_size": np.array(kh[0] if len(kh) in (2, 3) else -1),
        "dilation": np.array(dilation),
        "dim": np.array(basis.dim), "filter_shape": np.array(kh, np.int64),
        "num_bias": np.array(basis.num_bias), "points": np.asarray(basis.points),
        "settings_rings": np.asarray(s.rings), "settings_sigma": np.asarray(s.sigma),
        "settings_cutoff_per_ring": np.asarray(s.cutoff_per_ring),
        "settings_maximum_frequency": np.array(s.maximum_frequency),
        "settings_maximum_offset": np.array(-1 if s.maximum_offset is None else
                                            s.maximum_offset),
        "in_field_names": np.array([r.name for r in basis.in_type.representations]),
        "out_field_names": np.array([r.name for r in basis.out_type.representations]),
        "in_change_of_basis": np.asarray(basis.in_type.change_of_basis),
        "out_change_of_basis": np.asarray(basis.out_type.change_of_basis),
        "pair_in_irrep": np.array([a.name for a, _ in basis.irreps_pairs]),
        "pair_out_irrep": np.array([b.name for _, b in basis.irreps_pairs]),
        "pair_count": np.array([len(basis.pair_basis(*p)) for p in basis.irreps_pairs],
                               np.int64),
        "weight_block_in": np.array([b[0] for b in basis.weight_blocks]),
        "weight_block_out": np.array([b[1] for b in basis.weight_blocks]),
        "weight_block_range": np.array([b[2:] for b in basis.weight_blocks], np.int64)
        .reshape(-1, 5),
        "he_std": basis.he_std(),
    }
    rings = np.asarray(s.rings)
    for t, p in enumerate(basis.irreps_pairs):
        pb = basis.pair_basis(*p)
        out[f"pair{t}_values"] = np.asarray(pb.values).reshape(pb.values.shape[:3] + kh)
        out[f"pair{t}_radius"] = rings[np.asarray(pb.ring)]
        for key in ("ring", "frequency", "gamma", "s", "offset", "scale"):
            out[f"pair{t}_{key}"] = np.asarray(getattr(pb, key))
    plan = basis.plan
    for f in dc_fields(plan):
        v = getattr(plan, f.name)
        out[f"plan_{f.name}"] = np.asarray(v)
    for key, v in basis.element_attributes.items():
        out[f"element_{key}"] = np.asarray(v.astype(str) if v.dtype == object else v)
    return out


def cmd_basis(args) -> int:
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
            np.savez(args.output, **arrays)
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
    from . import gallery
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
