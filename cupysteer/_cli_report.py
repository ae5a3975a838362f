"""``cupysteer info``, ``bench`` and ``demo``: a layer's sizes and settings, timings, a tour."""
from __future__ import annotations

import json
import time

import numpy as np

from ._cli_common import build_basis, describe, require_min, resolved_kwargs


# ---- info -------------------------------------------------------------------------------
def _info_dict(basis, secs) -> dict:
    from .fields_spec import format_field_type, format_group
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
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MiB"


def cmd_info(args) -> int:
    basis, secs = build_basis(args)
    d = _info_dict(basis, secs)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
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
    return 0


# ---- bench ------------------------------------------------------------------------------
def _time(fn, repeat, sync=lambda: None):
    fn()
    sync()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), float(np.min(ts))


def cmd_bench(args) -> int:
    from .basis import LayerBasis
    require_min(args, 1, "--repeat", "--batch")
    dtype = np.dtype(args.dtype)
    basis, secs = build_basis(args)
    t = time.perf_counter()
    LayerBasis(basis.in_type, basis.out_type, cache=False,
               **resolved_kwargs(args, basis.in_type.group))
    cold = time.perf_counter() - t
    shape = (args.batch, basis.dim) if args.batch > 1 else (basis.dim,)
    rng = np.random.default_rng(args.seed)
    w = rng.standard_normal(shape).astype(dtype)
    G = rng.standard_normal(shape[:-1] + basis.shape).astype(dtype)
    rows = [("numpy", "expand", *_time(lambda: basis.expand(w), args.repeat)),
            ("numpy", "adjoint", *_time(lambda: basis.adjoint(G), args.repeat))]
    cupy_note = None
    try:
        from .backends import cupy_backend
        available = cupy_backend.is_available()
    except Exception as exc:  # pragma: no cover - broken optional backend
        available, cupy_note = False, f"CuPy backend not importable ({exc})"
    if available:
        cp = cupy_backend.import_cupy()
        wd, Gd = cp.asarray(w), cp.asarray(G)
        sync = cp.cuda.get_current_stream().synchronize
        rows += [("cupy", "expand", *_time(lambda: basis.expand(wd), args.repeat, sync)),
                 ("cupy", "adjoint", *_time(lambda: basis.adjoint(Gd), args.repeat, sync))]
    elif cupy_note is None:
        cupy_note = "CuPy: not available (no CuPy or no CUDA device), skipped"
    result = dict(layer=describe(basis), dtype=str(dtype), batch=args.batch,
                  repeat=args.repeat, basis_build_seconds=cold,
                  timings=[dict(backend=b, op=o, median_ms=m * 1e3, min_ms=n * 1e3)
                           for b, o, m, n in rows], note=cupy_note)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"bench {result['layer']}, {dtype}, batch {args.batch}, {args.repeat} repeats")
    print(f"  basis build (no cache): {cold * 1e3:9.2f} ms")
    for b, o, m, n in rows:
        print(f"  {b:6s} {o:8s} median {m * 1e3:9.3f} ms   min {n * 1e3:9.3f} ms")
    if cupy_note:
        print(f"  {cupy_note}")
    return 0


# ---- demo -------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    import cupysteer as cs
    from cupysteer.equivariance import equivariance_errors

    require_min(args, 1, "--N", "--fields", "--size")
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
