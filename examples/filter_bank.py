"""Scripted generation of steerable filter banks and their pictures.

For each (group, input fields, output fields, kernel size) below this builds the layer basis
from the same spellings the ``cupysteer`` command uses, writes the .npz that
``cupysteer basis`` writes (plain arrays: the irreps-level basis, the plan, He-initialised
weights and the expanded filter bank), a gallery of the basis and a picture of the filters,
and checks the filters' equivariance on the grid symmetries.

    python examples/filter_bank.py --outdir banks         # a few seconds
    python examples/filter_bank.py --quick --outdir banks # two small banks (CI smoke test)

The same, one bank at a time, from the shell:

    cupysteer basis --group C8 --in trivial --out "regular,irrep:1" --size 7 --weights he \\
        -o banks/c8_lift.npz --png banks/c8_lift_basis.png --filters-png banks/c8_lift_filters.png

Pictures need matplotlib (``pip install matplotlib``); without it they are drawn
untitled with NumPy alone.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import cupysteer as cs
from cupysteer import gallery
from cupysteer.equivariance import equivariance_errors
from cupysteer.fields_spec import format_field_type, format_group, parse_field_type, parse_group
from cupysteer.io import basis_arrays, save_bank

BANKS = [
    # name, group, in fields, out fields, kernel size
    ("c8_lift", "C8", "trivial", "regular,irrep:1", 7),
    ("c4_regular", "C4", "regular", "regular", 5),
    ("d4_mixed", "D4", "regular", "trivial,irrep:1,1,quotient:None,2", 5),
    ("so2_irreps", "SO2:3", "irrep:1", "trivial,irrep:2", 9),
]
QUICK = ("c4_regular", "d4_mixed")


def picture(draw, fallback, path: Path) -> str:
    try:
        draw()
        import matplotlib.pyplot as plt
        plt.close("all")
        return "matplotlib"
    except ImportError:
        gallery.write_png(path, fallback())
        return "NumPy only (untitled)"


def make_bank(name, group, fin, fout, size, outdir: Path, seed: int = 0) -> dict:
    G = parse_group(group)
    basis = cs.LayerBasis(parse_field_type(G, fin), parse_field_type(G, fout), size)
    weights = basis.init_weights(np.random.default_rng(seed), dtype=np.float32)
    filters = basis.expand(weights)
    arrays = basis_arrays(basis)
    arrays.update(weights=weights, filters=filters, bias_expansion=basis.bias_expansion())
    save_bank(outdir / f"{name}.npz", arrays)
    how = picture(lambda: gallery.plot_basis(basis, outdir / f"{name}_basis.png"),
                  lambda: gallery.basis_image(basis), outdir / f"{name}_basis.png")
    F = np.asarray(filters, np.float64)
    picture(lambda: gallery.plot_filters(F, outdir / f"{name}_filters.png", title=name),
            lambda: gallery.filters_image(F), outdir / f"{name}_filters.png")
    err = max(equivariance_errors(basis, filters.astype(np.float64)).values())
    print(f"{name:11s} {format_group(G)}: {format_field_type(basis.in_type)} → "
          f"{format_field_type(basis.out_type)}, {size}×{size}: {basis.dim:4d} weights, "
          f"filters {tuple(filters.shape)}, stored basis {basis.stored_bytes / 1024:.1f} KiB "
          f"(padded {basis.padded_bytes / 1024:.1f} KiB), grid equivariance error {err:.1e}; "
          f"pictures: {how}")
    return dict(basis=basis, filters=filters, error=err)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--outdir", default="filter_banks", help="output folder (default filter_banks)")
    p.add_argument("--quick", action="store_true", help="two small banks (CI smoke test)")
    args = p.parse_args(argv)
    quick = args.quick or os.environ.get("CUPYSTEER_EXAMPLES_QUICK") == "1"
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, *spec in BANKS:
        if quick and name not in QUICK:
            continue
        out[name] = make_bank(name, *spec, outdir)
    # A regular → regular filter of C4 is its own rotated copy, shifted along the diagonal:
    # K[i+1, j+1] = rot90(K[i, j]) (counter-clockwise, y up). The filters picture shows it.
    K = out["c4_regular"]["filters"]
    shift = max(np.abs(np.rot90(K[i, j], 1) - K[(i + 1) % 4, (j + 1) % 4]).max()
                for i in range(4) for j in range(4))
    print(f"C4 regular filters: max |rot90(K[i, j]) − K[i+1, j+1]| = {shift:.1e}")
    print(f"wrote {len(out)} banks to {outdir}/ (.npz, _basis.png, _filters.png)")
    return out


if __name__ == "__main__":
    main()
