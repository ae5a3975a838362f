"""``cupysteer demo``: a tour of a planar group: its irreps, the decomposition of its regular
representation, and a regular → regular layer built, expanded and checked."""
from __future__ import annotations

import numpy as np

from ..basis import LayerBasis
from ..equivariance import equivariance_errors
from ..field_type import FieldType
from ..r2 import CyclicGroup, DihedralGroup
from ._common import require_min


def cmd_demo(args) -> int:
    """Print a group's irreps and a layer's sizes and grid equivariance error."""
    require_min(args, 1, "--N", "--fields", "--size")
    G = CyclicGroup(args.N) if not args.dihedral else DihedralGroup(args.N)
    print(f"group {G.name}: {G.order} elements")
    for psi in G.irreps():
        print(f"  {psi.name:12s} dim {psi.dim}  frequency {psi.frequency}  "
              f"flip frequency {psi.flip_frequency}")
    reg = G.regular_representation
    print(f"regular representation (size {reg.size}) = "
          + " ⊕ ".join(f"{m}×{psi.name}" for psi, m in reg.multiplicities().items()))
    ftype = FieldType(G, [reg] * args.fields)
    basis = LayerBasis(ftype, ftype, kernel_size=args.size)
    w = basis.init_weights(np.random.default_rng(args.seed), dtype=np.float64)
    filt = basis.expand(w)
    print(f"layer {args.fields}×regular → {args.fields}×regular, {args.size}×{args.size}: "
          f"{basis.dim} weights, filter {filt.shape}, stored basis {basis.stored_bytes} B "
          f"(e2cnn-style padded basis: {basis.padded_bytes} B)")
    errs = equivariance_errors(basis, filt)
    print(f"equivariance on the {len(errs)} grid symmetries: max relative error "
          f"{max(errs.values()):.2e}")
    return 0
