"""``cupysteer info``: a layer's dimension, weight blocks, irreps pairs, memory and resolved
settings, as text or JSON."""
from __future__ import annotations

import json

import numpy as np

from ..fields_spec import format_field_type, format_group
from ._common import build_basis, describe


def _info_dict(basis, secs) -> dict:
    """Everything ``info`` reports, JSON-ready."""
    s = basis.settings
    pairs = []
    blocks_per_pair = np.bincount(basis.plan.block_pair, minlength=len(basis.irreps_pairs))
    for t, (a, b) in enumerate(basis.irreps_pairs):
        pb = basis.pair_basis(a, b)
        pairs.append(dict(in_irrep=a.name, out_irrep=b.name, shape=list(pb.shape),
                          elements=len(pb), blocks=int(blocks_per_pair[t]),
                          frequencies=sorted({int(x) for x in pb.frequency})))
    return dict(
        group=format_group(basis.in_type.group), in_fields=format_field_type(basis.in_type),
        out_fields=format_field_type(basis.out_type), filter_shape=list(basis.filter_shape),
        spacing=None if basis.spacing is None else list(basis.spacing),
        filter=list(basis.shape), dim=basis.dim, num_bias=basis.num_bias,
        weight_blocks=[dict(in_field=b[0], out_field=b[1], weights=b[3] - b[2],
                            fields=[b[4], b[5]], elements=b[6]) for b in basis.weight_blocks],
        irreps_pairs=pairs, stored_bytes=basis.stored_bytes, padded_bytes=basis.padded_bytes,
        plan_bytes=basis.plan.nbytes,
        settings=dict(rings=list(s.rings), sigma=list(s.sigma),
                      cutoff_per_ring=list(s.cutoff_per_ring),
                      maximum_frequency=s.maximum_frequency, maximum_offset=s.maximum_offset),
        build_seconds=secs)


def _kib(n):
    """Bytes as KiB (below 1 MiB) or MiB."""
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MiB"


def cmd_info(args) -> int:
    """Print the layer's report (--json: as JSON)."""
    basis, secs = build_basis(args)
    d = _info_dict(basis, secs)
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        _print_info(d, basis, secs)
    return 0


def _print_info(d, basis, secs) -> None:
    s = d["settings"]
    print(describe(basis))
    axes = ", ".join("k" * len(basis.filter_shape))
    print(f"  filter shape (C_out, C_in, {axes}): {tuple(d['filter'])}; bias parameters: "
          f"{d['num_bias']}")
    print(f"  rings {s['rings']}\n  sigma {s['sigma']}\n  frequency cut-off per ring "
          f"{s['cutoff_per_ring']} (maximum frequency {s['maximum_frequency']}, maximum "
          f"offset {s['maximum_offset']})")
    ref = "escnn" if len(basis.filter_shape) == 3 else "e2cnn"
    print(f"  memory: irreps-level basis {_kib(d['stored_bytes'])} vs {ref}-style padded "
          f"basis {_kib(d['padded_bytes'])} ({d['padded_bytes'] / max(d['stored_bytes'], 1):.1f}"
          f"×); whole plan {_kib(d['plan_bytes'])}")
    print(f"  {len(d['irreps_pairs'])} irreps pairs (elements per pair × blocks using it):")
    for p in d["irreps_pairs"]:
        print(f"    {p['in_irrep']:>12} → {p['out_irrep']:<12} {p['shape'][0]}×{p['shape'][1]}"
              f"  {p['elements']:3d} elements × {p['blocks']:4d} blocks  frequencies "
              f"{p['frequencies']}")
    print(f"  {len(d['weight_blocks'])} weight blocks ({ref} order):")
    for b in d["weight_blocks"]:
        print(f"    {b['in_field']:>22} → {b['out_field']:<22} {b['fields'][0]}×"
              f"{b['fields'][1]} fields × {b['elements']} = {b['weights']} weights")
    print(f"  built in {secs:.3f} s")
