"""``cupysteer demo``: a tour of a group: its irreps, the decomposition of its regular
representation, and a layer built, expanded and checked on the grid. It takes the layer
options of the other commands (``--group``, ``--in``, ``--out``, ``--size``, ``--weights``,
…; default C8, 4*regular → 4*regular, 5×5) and the older shorthands ``--N``, ``--dihedral``
and ``--fields``."""
from __future__ import annotations

import numpy as np

from ..equivariance import equivariance_errors
from ._common import build_basis, describe, load_weights, require_min

#: irreps listed one per line (larger groups: their number only); regular representations
#: decomposed up to this order
MAX_LISTED_IRREPS, MAX_REGULAR_ORDER = 32, 4096


def _apply_shorthands(args) -> None:
    """--N/--dihedral → --group, --fields → --in (and --out when not given)."""
    require_min(args, 1, *(o for o in ("--N", "--fields") if getattr(args, o[2:]) is not None))
    if args.N is not None:
        args.group = f"{'D' if args.dihedral else 'C'}{args.N}"
    if args.fields is not None:
        args.in_fields = f"{args.fields}*regular"


def _print_group(G) -> None:
    """The irreps and, for a finite group of moderate order, the regular decomposition."""
    print(f"group {G.name}: " + (f"{G.order} elements" if G.is_finite else "continuous"))
    n = getattr(G, "num_irreps", None)
    if n is not None and n > MAX_LISTED_IRREPS:
        print(f"  {n} irreps (not listed)")
    else:
        for psi in G.irreps():
            print(f"  {psi.name:24s} dim {psi.dim}")
    if G.is_finite and G.order <= MAX_REGULAR_ORDER:
        reg = G.regular_representation
        print(f"regular representation (size {reg.size}) = "
              + " ⊕ ".join(f"{m}×{psi.name}" for psi, m in reg.multiplicities().items()))


def cmd_demo(args) -> int:
    """Print a group's irreps and a layer's sizes and grid equivariance error."""
    _apply_shorthands(args)
    require_min(args, 1, "--size")
    basis, secs = build_basis(args)
    _print_group(basis.in_type.group)
    w, how = load_weights(args.weights, basis, args.seed, np.dtype(args.dtype))
    filt = basis.expand(w)
    print(f"layer {describe(basis)} (built in {secs:.2f} s): filter {filt.shape}, {how}; "
          f"stored basis {basis.stored_bytes} B (e2cnn-style padded basis: "
          f"{basis.padded_bytes} B)")
    errs = equivariance_errors(basis, filt)
    worst = max(errs.values(), default=0.0)
    print(f"equivariance on the {len(errs)} grid symmetries: max relative error {worst:.2e}")
    return 0
