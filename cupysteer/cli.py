"""The ``cupysteer`` command (also ``python -m cupysteer``)."""
from __future__ import annotations

import argparse
import sys

import numpy as np

__all__ = ["main"]


def _demo(args) -> int:
    import cupysteer as cs
    from cupysteer.equivariance import equivariance_errors

    G = cs.CyclicGroup(args.N) if not args.dihedral else cs.DihedralGroup(args.N)
    print(f"group {G.name}: {G.order} elements")
    for psi in G.irreps():
        print(f"  {psi.name:12s} dim {psi.dim}  frequency {psi.frequency}  "
              f"flip frequency {psi.flip_frequency}")
    reg = G.regular_representation
    print(f"regular representation (size {reg.size}) = "
          + " ⊕ ".join(f"{m}×{psi.name}" for psi, m in reg.multiplicities().items()))
    ftype = cs.FieldType(G, [reg] * args.fields)
    basis = cs.LayerBasis(ftype, ftype, kernel_size=args.size)
    w = basis.init_weights(np.random.default_rng(args.seed), dtype=np.float64)
    filt = basis.expand(w)
    print(f"layer {args.fields}×regular → {args.fields}×regular, {args.size}×{args.size}: "
          f"{basis.dim} weights, filter {filt.shape}, stored basis {basis.stored_bytes} B "
          f"(e2cnn-style padded basis: {basis.padded_bytes} B)")
    errs = equivariance_errors(basis, filt)
    print(f"equivariance on the {len(errs)} grid symmetries: max relative error "
          f"{max(errs.values()):.2e}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="cupysteer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="print a group's irreps, the regular representation's "
                                       "decomposition, and build, expand and check a layer")
    demo.add_argument("--N", type=int, default=8, help="rotation order (default 8)")
    demo.add_argument("--dihedral", action="store_true", help="use D_N instead of C_N")
    demo.add_argument("--fields", type=int, default=4, help="regular fields in and out")
    demo.add_argument("--size", type=int, default=5, help="kernel size")
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        return {"demo": _demo}[args.command](args)
    except ValueError as exc:
        print(f"cupysteer: error: {exc}", file=sys.stderr)
        return 2
