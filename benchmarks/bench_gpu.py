"""GPU benchmark of cupysteer's fused CUDA expansion (issue: CUDA RawKernels through CuPy).

    python3 benchmarks/bench_gpu.py [--json out.json] [--jsonl out.jsonl] [--quick] [--repeats N]
                                    [--batch B]
    python3 benchmarks/bench_gpu.py --layers-only    # no GPU needed: build the layers, print sizes

Per layer (float32 weights → float32 filters), all measured in the same run on the same device:

* fused:   ``CupyExpander(plan)`` — one launch of kernels/expand_v2.cu (block filling + change
           of basis), forward, and forward + adjoint (weight gradient of ⟨K(w), G⟩); the
           ``fused_v1_*`` columns: ``method="fused_v1"`` (kernels/expand.cu) beside it;
* padded:  ``CupyExpander(plan, method='padded')`` — e2cnn's storage (one padded basis per
           pair of representation names), one cuBLAS GEMM per block and a scatter (the
           baseline of the seed);
* e2cnn:   e2cnn's block expansion reimplemented here in PyTorch (one sampled basis per
           representation pair, ``einsum("boi...,kb->koi...")`` per pair, then a scatter into the
           filter with index tensors, as ``e2cnn.nn.modules.r2_conv.BlocksBasisExpansion`` does),
           forward, and forward + autograd backward. Checked against the fused result first;
* kernel:  the fused forward kernel alone (arguments and output prepared once: the launch and
           the kernel, without CupyExpander's Python checks and allocation);
* floor:   max(launch latency of an empty kernel, bytes the fused kernel must move / device copy
           bandwidth measured with ``cupy`` device-to-device copies);
* memory:  device bytes of the plan tables (fused) vs the padded basis (float32);
* grouped: for the network, one launch for all layers (``CupyExpander`` over every plan, what
           ``cupysteer.torch.grouped.expand_together`` and ``LayerBasis`` users get) against one
           launch per layer (one expander per layer, called in turn), forward and
           forward + adjoint.

``--jsonl`` appends one JSON line per layer as soon as it is measured (the environment
first), flushed to disk: a run killed by a timeout keeps every finished layer.

Layers: C8 regular×16 5×5, C16 regular×8 7×7, D4 regular×24 5×5, SO(2) irreps 0–3 ×8 7×7,
C8 regular×64 7×7 (wide), and a 10-layer C8 network expanded in one launch (compared with
its largest layer alone). Times come from CUDA events around ``--iters`` back-to-back calls
(median of ``--repeats`` such runs), after ``--warmup`` calls that are not timed.

Targets (issue): fused ≥5× faster than the e2cnn-style expansion, ≥1.5× faster than padded,
within 2× of the floor; whole network ≤1.5× its largest layer.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SRC = os.path.abspath(os.environ.get("CUPYSTEER_SRC") or ROOT)
if SRC not in sys.path:
    sys.path.insert(0, SRC)

import numpy as np  # noqa: E402

import cupysteer as cs  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.backends import cupy_backend as cb  # noqa: E402
from cupysteer.backends.launch import launch_config  # noqa: E402
from cupysteer.backends.packing import pack_plans  # noqa: E402

TARGETS = {"vs_e2cnn": 5.0, "vs_padded": 1.5, "vs_floor": 2.0, "network_vs_largest": 1.5}

LAYERS = [  # name, group, N, fields, multiplicity, kernel size
    ("C8 regular x16 5x5", "C", 8, "regular", 16, 5),
    ("C16 regular x8 7x7", "C", 16, "regular", 8, 7),
    ("D4 regular x24 5x5", "D", 4, "regular", 24, 5),
    ("SO2 irreps 0-3 x8 7x7", "SO2", 3, "irreps:3", 8, 7),
    ("C8 regular x64 7x7", "C", 8, "regular", 64, 7),
    # groups acting on R³ (filters k×k×k)
    ("O regular x4 5x5x5", "O", 0, "regular", 4, 5),
    ("I regular x2 3x3x3", "I", 0, "regular", 2, 3),
    ("SO3 irreps 0-3 x4 7x7x7", "SO3", 3, "irreps:3", 4, 7),
]
# 10-layer C8 network: (in fields, out fields, kernel size); 'trivial:3' = an RGB input
NETWORK = [("trivial:3", "regular:16", 7), ("regular:16", "regular:16", 5),
           ("regular:16", "regular:24", 5), ("regular:24", "regular:24", 5),
           ("regular:24", "regular:32", 5), ("regular:32", "regular:32", 3),
           ("regular:32", "regular:48", 3), ("regular:48", "regular:48", 3),
           ("regular:48", "regular:64", 3), ("regular:64", "trivial:10", 1)]


# ---- layers (CPU only) -------------------------------------------------------------------------

def group(kind, N):
    if kind in ("O", "I"):
        return {"O": r3.Octahedral, "I": r3.Icosahedral}[kind]()
    return {"C": cs.CyclicGroup, "D": cs.DihedralGroup, "SO2": cs.SO2,
            "SO3": r3.SO3}[kind](N)


def field_type(G, fields, mult):
    if fields == "regular":
        reps = [G.regular_representation] * mult
    elif fields.startswith("irreps:"):
        reps = [G.irrep(k).representation for k in range(int(fields.split(":")[1]) + 1)] * mult
    elif fields == "trivial":
        reps = [G.trivial_representation] * mult
    else:
        raise ValueError(fields)
    return cs.FieldType(G, reps)


def build_layers(quick=False):
    """{name: [LayerBasis, ...]}: the single layers and the 10-layer network."""
    out = {}
    for name, kind, N, fields, mult, k in LAYERS:
        if quick and "x64" in name:
            continue
        G = group(kind, N)
        t = field_type(G, fields, mult)
        out[name] = [cs.LayerBasis(t, t, k)]
    G = group("C", 8)
    net = []
    for fin, fout, k in NETWORK[:4] if quick else NETWORK:
        a, m = fin.split(":")
        b, n = fout.split(":")
        net.append(cs.LayerBasis(field_type(G, a, int(m)), field_type(G, b, int(n)), k))
    out["10-layer C8 network" if not quick else "4-layer C8 network"] = net
    return out


def describe(layers) -> dict:
    p = pack_plans([L.plan for L in layers])
    fcfg = launch_config(p, "forward", 1, 4)
    acfg = launch_config(p, "adjoint", 1, 4)
    plan_bytes = int(p.fieldpairs.nbytes + p.blocks.nbytes + p.positions.nbytes
                     + 4 * (len(p.basis) + len(p.cob)))
    return {"layers": len(layers), "dim": p.dim, "filter_size": p.filter_size,
            "field_pairs": p.num_fieldpairs, "blocks": len(p.blocks),
            "forward_launch": {"grid": fcfg.grid, "block": fcfg.block, "tile": fcfg.tile,
                               "shared_mem": fcfg.shared_mem},
            "adjoint_launch": {"grid": acfg.grid, "block": acfg.block, "tile": acfg.tile,
                               "shared_mem": acfg.shared_mem},
            "plan_device_bytes": plan_bytes,
            "padded_basis_bytes": int(sum(L.padded_bytes for L in layers)),
            "e2cnn_basis_bytes": int(sum(L.padded_bytes for L in layers))}


# ---- e2cnn-style expansion (PyTorch) -------------------------------------------------------------

class E2cnnStyle:
    """e2cnn's BlocksBasisExpansion, reimplemented: per (in repr, out repr) block one sampled
    basis (d, size_out, size_in, P), an einsum with the block's (n_out·n_in, d) coefficients and
    a scatter of the result into the filter through index tensors."""

    def __init__(self, layer, device, dtype):
        import torch
        self.torch = torch
        self.shape = layer.shape
        P = int(np.prod(layer.filter_shape))
        tin, tout = layer.in_type, layer.out_type
        G = tin.group

        def fields(ft, name):
            return [i for i, r in enumerate(ft.representations) if r.name == name]

        def channels(ft, fs):
            off = ft.field_offsets
            return np.concatenate([np.arange(off[f], off[f] + ft.representations[f].size)
                                   for f in fs])

        self.blocks = []
        for in_name, out_name, lo, hi, n_out, n_in, d in layer.weight_blocks:
            fo, fi = fields(tout, out_name), fields(tin, in_name)
            # the block's sampled basis (d, size_out, size_in, P): the dense basis of the
            # one-field layer rin -> rout (same kernel size and default settings, same
            # element order as every field pair of the block)
            one = cs.LayerBasis(cs.FieldType(G, [tin.representations[fi[0]]]),
                                cs.FieldType(G, [tout.representations[fo[0]]]),
                                layer.filter_shape[0])
            assert one.dim == d, (one.dim, d)
            basis = one.dense(np.float64).reshape(d, one.shape[0], one.shape[1], P)
            oo, ii = np.meshgrid(channels(tout, fo), channels(tin, fi), indexing="ij")
            self.blocks.append((lo, hi, n_out, n_in, d,
                                torch.tensor(basis, dtype=dtype, device=device),
                                torch.tensor(oo.ravel(), device=device),
                                torch.tensor(ii.ravel(), device=device)))
        self.P, self.device, self.dtype = P, device, dtype

    def __call__(self, w):
        torch = self.torch
        C_out, C_in = self.shape[:2]
        filt = torch.zeros((C_out, C_in, self.P), dtype=self.dtype, device=self.device)
        for lo, hi, n_out, n_in, d, basis, oo, ii in self.blocks:
            coeff = w[lo:hi].view(-1, d)
            e = torch.einsum("boip,kb->koip", basis, coeff)
            _, o, i, p = e.shape
            e = e.reshape(n_out, n_in, o, i, p).transpose(1, 2).reshape(-1, p)
            filt[oo, ii, :] = e
        return filt.reshape(self.shape)


# ---- timing --------------------------------------------------------------------------------------

def cupy_time(cupy, fn, warmup, iters, repeats) -> float:
    """Median over ``repeats`` of (CUDA-event time of ``iters`` calls) / iters, in seconds."""
    for _ in range(warmup):
        fn()
    cupy.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(repeats):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end) / 1e3 / iters)
    return statistics.median(times)


def torch_time(torch, fn, warmup, iters, repeats) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / iters)
    return statistics.median(times)


def floors(cupy, args):
    """(launch latency s, device copy bandwidth B/s)."""
    noop = cupy.RawKernel(r'extern "C" __global__ void cupysteer_noop() {}', "cupysteer_noop")
    latency = cupy_time(cupy, lambda: noop((1,), (32,), ()), args.warmup, 200, args.repeats)
    n = 64 * 1024 * 1024 // 4  # 64 MiB
    a = cupy.ones(n, cupy.float32)
    b = cupy.empty_like(a)
    t = cupy_time(cupy, lambda: cupy.copyto(b, a), args.warmup, 20, args.repeats)
    return latency, 2 * a.nbytes / t


def bench(name, layers, cupy, torch, args, latency, bandwidth):
    info = describe(layers)
    plans = [L.plan for L in layers]
    fused = cb.CupyExpander(plans, np.float32)
    padded = None
    if info["padded_basis_bytes"] <= args.padded_max_gb * 2 ** 30:
        padded = cb.CupyExpander(plans, np.float32, method="padded",
                              padded_blocks=[L.padded_blocks(np.float32) for L in layers])
    p = fused.packed
    rng = np.random.default_rng(0)
    shape = (args.batch, p.dim) if args.batch > 1 else (p.dim,)
    w = cupy.asarray(rng.standard_normal(shape).astype(np.float32))
    G = cupy.asarray(rng.standard_normal(shape[:-1] + (p.filter_size,)).astype(np.float32))
    # correctness first: fused vs padded vs NumPy
    ref = np.concatenate([L.expand(cupy.asnumpy(w)[..., o:o + L.dim].astype(np.float64))
                          .reshape(shape[:-1] + (-1,))
                          for L, o in zip(layers, p.weight_offsets)], -1)
    kf = cupy.asnumpy(fused.expand(w))
    err = float(np.abs(kf - ref).max() / np.abs(ref).max())
    T = dict(warmup=args.warmup, iters=args.iters, repeats=args.repeats)
    r = {"name": name, **info, "rel_err_fused": err,
         "fused_fwd_s": cupy_time(cupy, lambda: fused.expand(w), **T),
         "fused_fwd_adj_s": cupy_time(cupy, lambda: (fused.expand(w), fused.adjoint(G)), **T),
         "plan_device_bytes": fused.device_bytes}
    # the forward kernel alone: arguments, output and launch configuration prepared once (what
    # remains is the launch and the kernel; CupyExpander.expand adds checks and an allocation)
    # (the backend's PreparedLaunch: the kernel call with its argument tuple, v1 or v2)
    out = cupy.empty((args.batch, p.filter_size), cupy.float32)
    launch = fused._launch("forward", None, args.batch, cupy.cuda.Device().id)
    r["fused_kernel_s"] = cupy_time(cupy, lambda: launch(w, out), **T)
    assert float(cupy.abs(out.reshape(kf.shape) - cupy.asarray(kf)).max()) == 0.0
    # the v1 kernels (method="fused_v1", kernels/expand.cu) measured beside v2 (issue 14)
    v1 = cb.CupyExpander(plans, np.float32, method="fused_v1")
    r["rel_err_v1_v2"] = float(np.abs(cupy.asnumpy(v1.expand(w)) - kf).max()
                               / np.abs(ref).max())
    r["fused_v1_fwd_s"] = cupy_time(cupy, lambda: v1.expand(w), **T)
    r["fused_v1_fwd_adj_s"] = cupy_time(cupy, lambda: (v1.expand(w), v1.adjoint(G)), **T)
    r["v1_over_v2_fwd"] = r["fused_v1_fwd_s"] / r["fused_fwd_s"]
    r["v1_over_v2_fwd_adj"] = r["fused_v1_fwd_adj_s"] / r["fused_fwd_adj_s"]
    if padded is not None:
        r["rel_err_padded"] = float(np.abs(cupy.asnumpy(padded.expand(w)) - ref).max()
                                    / np.abs(ref).max())
        r["padded_fwd_s"] = cupy_time(cupy, lambda: padded.expand(w), **T)
        r["padded_fwd_adj_s"] = cupy_time(cupy, lambda: (padded.expand(w), padded.adjoint(G)),
                                          **T)
        r["padded_over_fused"] = r["padded_fwd_s"] / r["fused_fwd_s"]
        r["padded_over_fused_fwd_adj"] = r["padded_fwd_adj_s"] / r["fused_fwd_adj_s"]
        del padded
    else:
        r["padded_skipped"] = (f"padded basis of {info['padded_basis_bytes'] / 2 ** 30:.1f} GiB "
                               f"> --padded-max-gb {args.padded_max_gb}")
    moved = 4 * (p.dim * args.batch + len(p.basis) + len(p.cob) + p.filter_size * args.batch) \
        + p.fieldpairs.nbytes + p.blocks.nbytes + p.positions.nbytes
    r["bytes_moved"] = int(moved)
    r["floor_s"] = max(latency, moved / bandwidth)
    r["fused_vs_floor"] = r["fused_fwd_s"] / r["floor_s"]
    r["fused_kernel_vs_floor"] = r["fused_kernel_s"] / r["floor_s"]
    if torch is not None and args.batch == 1:
        dev = torch.device("cuda", cupy.cuda.Device().id)
        exps = [E2cnnStyle(L, dev, torch.float32) for L in layers]
        wt = torch.from_dlpack(w)
        Gt = torch.from_dlpack(G)

        def e2_fwd(wt=wt):
            return [e(wt[o:o + L.dim]) for e, L, o in zip(exps, layers, p.weight_offsets)]

        ke = torch.cat([k.reshape(-1) for k in e2_fwd()]).cpu().numpy()
        r["rel_err_e2cnn_style"] = float(np.abs(ke - ref).max() / np.abs(ref).max())
        wg = wt.clone().requires_grad_(True)

        def e2_fwd_bwd():
            wg.grad = None
            K = torch.cat([k.reshape(-1) for k in e2_fwd(wg)])
            K.backward(Gt)

        with torch.no_grad():
            r["e2cnn_fwd_s"] = torch_time(torch, e2_fwd, **T)
        r["e2cnn_fwd_adj_s"] = torch_time(torch, e2_fwd_bwd, **T)
        r["e2cnn_over_fused"] = r["e2cnn_fwd_s"] / r["fused_fwd_s"]
        r["e2cnn_over_fused_fwd_adj"] = r["e2cnn_fwd_adj_s"] / r["fused_fwd_adj_s"]
        del exps, wt, Gt, wg
        torch.cuda.empty_cache()
    return r


def bench_per_layer(r, layers, cupy, args):
    """Add to ``r`` (the grouped result of ``layers``) the time of one launch per layer."""
    exs = [cb.CupyExpander(L.plan, np.float32) for L in layers]
    rng = np.random.default_rng(1)
    ws = [cupy.asarray(rng.standard_normal(L.dim).astype(np.float32)) for L in layers]
    gs = [cupy.asarray(rng.standard_normal(ex.packed.filter_size).astype(np.float32))
          for ex in exs]
    T = dict(warmup=args.warmup, iters=args.iters, repeats=args.repeats)
    r["per_layer_fwd_s"] = cupy_time(cupy, lambda: [e.expand(w) for e, w in zip(exs, ws)], **T)
    r["per_layer_fwd_adj_s"] = cupy_time(
        cupy, lambda: [(e.expand(w), e.adjoint(g)) for e, w, g in zip(exs, ws, gs)], **T)
    r["per_layer_over_grouped_fwd"] = r["per_layer_fwd_s"] / r["fused_fwd_s"]
    r["per_layer_over_grouped_fwd_adj"] = r["per_layer_fwd_adj_s"] / r["fused_fwd_adj_s"]
    return r


def print_predicted(device_name, results, quick) -> dict:
    """Print benchmarks/cost_model.py's predictions (v1 / v2 kernel time, forward and adjoint,
    µs) beside the measured fused times, so that a device run also tests the model; returns
    {layer: {column: seconds}} for the JSON."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    try:
        import cost_model  # benchmarks/cost_model.py (no GPU needed)
        dev = cost_model.DEVICES["h100" if "H100" in str(device_name) else "h200"]
        rows = {r["name"]: r for r in cost_model.predict_all(dev, quick)}
    except Exception as exc:  # the model is an aid: never lose the measurements over it
        print(f"cost model unavailable ({type(exc).__name__}: {exc})")
        return {}
    cols = ("v1_forward", "v1_adjoint", "v2_forward", "v2_adjoint")
    print(f"\npredicted by benchmarks/cost_model.py for {dev.name} (kernel + launch, us) "
          f"beside measured fused (us)")
    print("%-30s %9s %9s %9s %9s | %9s %9s %9s %9s" % (
        "layer", "pred v1 f", "pred v1 a", "pred v2 f", "pred v2 a", "meas v1 f", "meas v1 fa",
        "meas v2 f", "meas v2 fa"))
    out = {}
    for r in results:
        p = rows.get(r["name"])
        if p is None:
            continue
        out[r["name"]] = {c: p[c]["s"] for c in cols}
        meas = [r.get(k) for k in ("fused_v1_fwd_s", "fused_v1_fwd_adj_s", "fused_fwd_s",
                                   "fused_fwd_adj_s")]
        print("%-30s %9.1f %9.1f %9.1f %9.1f | %9s %9s %9s %9s" % (
            r["name"][:30], *(1e6 * p[c]["s"] for c in cols),
            *("-" if m is None else f"{1e6 * m:.1f}" for m in meas)))
    print("(predicted adjoint alone; measured: forward, and forward + adjoint)")
    return out


class JsonLines:
    """Appends one JSON object per line to ``path`` (None: nothing), flushed and synced."""

    def __init__(self, path):
        self.path = path

    def __call__(self, obj):
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps(obj) + "\n")
                f.flush()
                os.fsync(f.fileno())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the results here (at the end)")
    ap.add_argument("--jsonl", help="append each layer's result here as soon as it is measured")
    ap.add_argument("--quick", action="store_true", help="small set, few repeats")
    ap.add_argument("--layers-only", action="store_true",
                    help="build the layers and print their sizes and launch configurations "
                         "(no GPU needed)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--padded-max-gb", type=float, default=4.0,
                    help="largest dense basis (float32, GiB) for which method='padded' is "
                         "measured; the dense basis is dim x C_out*C_in*P")
    args = ap.parse_args(argv)
    if args.quick:
        args.iters, args.repeats = 10, 3

    if not args.layers_only and not cb.is_available():
        try:
            import cupy
            cupy.cuda.runtime.getDeviceCount()
            why = "CuPy sees no CUDA device"
        except Exception as exc:
            why = f"{type(exc).__name__}: {str(exc)[:200]}"
        print(f"bench_gpu: no usable CUDA device ({why}). Nothing was measured; run this on a "
              f"machine with a GPU (scripts/gpu_check.sh). --layers-only works without one.",
              file=sys.stderr)
        return 3

    t0 = time.perf_counter()
    sets = build_layers(args.quick)
    print(f"layers built in {time.perf_counter() - t0:.1f} s (CPU)")
    if args.layers_only:
        for name, layers in sets.items():
            print(f"{name}: {json.dumps(describe(layers))}")
        return 0
    import cupy
    try:
        import torch
        if not torch.cuda.is_available():
            print("torch has no CUDA device: the e2cnn-style column is skipped", file=sys.stderr)
            torch = None
    except ImportError:
        print("torch not importable: the e2cnn-style column is skipped", file=sys.stderr)
        torch = None

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    env = {"device": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
           "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
           "cuda_driver": cupy.cuda.runtime.driverGetVersion(),
           "cupy": cupy.__version__, "torch": getattr(torch, "__version__", None),
           "numpy": np.__version__, "python": platform.python_version(),
           "batch": args.batch, "iters": args.iters, "repeats": args.repeats,
           "warmup": args.warmup}
    latency, bandwidth = floors(cupy, args)
    env["launch_latency_s"], env["copy_bandwidth_Bps"] = latency, bandwidth
    print(json.dumps(env), flush=True)
    emit = JsonLines(args.jsonl)
    emit({"env": env})
    results = []
    for name, layers in sets.items():
        r = bench(name, layers, cupy, torch, args, latency, bandwidth)
        if len(layers) > 1:
            bench_per_layer(r, layers, cupy, args)
        cupy.get_default_memory_pool().free_all_blocks()
        results.append(r)
        emit(r)
        print(json.dumps(r), flush=True)
    net = next(r for r in results if "network" in r["name"])
    net_layers = next(v for k, v in sets.items() if "network" in k)
    big = max(net_layers, key=lambda L: L.dim * int(np.prod(L.shape)))
    largest = bench("largest layer of the network", [big], cupy, torch, args, latency, bandwidth)
    results.append(largest)
    emit(largest)
    summary = {"network_over_largest_fwd": net["fused_fwd_s"] / largest["fused_fwd_s"],
               "network_over_largest_fwd_adj": net["fused_fwd_adj_s"] / largest["fused_fwd_adj_s"],
               "network_per_layer_over_grouped_fwd": net["per_layer_over_grouped_fwd"],
               "network_per_layer_over_grouped_fwd_adj": net["per_layer_over_grouped_fwd_adj"]}
    emit({"summary": summary})

    print("\n%-30s %10s %10s %10s %10s %8s %8s %8s %8s %12s %14s" % (
        "layer", "fused us", "kernel us", "padded us", "e2cnn us", "pad/fus", "e2/fus",
        "fus/flr", "krn/flr", "plan bytes", "padded bytes"))
    def opt(r, key, fmt, scale=1.0):
        return fmt % (scale * r[key]) if key in r else "-"

    for r in results:
        print("%-30s %10.1f %10.1f %10s %10s %8s %8s %8.2f %8.2f %12d %14d" % (
            r["name"][:30], 1e6 * r["fused_fwd_s"], 1e6 * r["fused_kernel_s"],
            opt(r, "padded_fwd_s", "%.1f", 1e6),
            opt(r, "e2cnn_fwd_s", "%.1f", 1e6), opt(r, "padded_over_fused", "%.2f"),
            opt(r, "e2cnn_over_fused", "%.2f"),
            r["fused_vs_floor"], r["fused_kernel_vs_floor"], r["plan_device_bytes"],
            r["padded_basis_bytes"]))
    print("\nforward+adjoint (us): " + ", ".join(
        f"{r['name']}: fused {1e6 * r['fused_fwd_adj_s']:.1f} / padded "
        f"{opt(r, 'padded_fwd_adj_s', '%.1f', 1e6)}"
        + (f" / e2cnn {1e6 * r['e2cnn_fwd_adj_s']:.1f}" if "e2cnn_fwd_adj_s" in r else "")
        for r in results))
    print("\nv1 (expand.cu) vs v2 (expand_v2.cu), measured (us): " + ", ".join(
        f"{r['name']}: fwd {1e6 * r['fused_v1_fwd_s']:.1f} / {1e6 * r['fused_fwd_s']:.1f}, "
        f"fwd+adj {1e6 * r['fused_v1_fwd_adj_s']:.1f} / {1e6 * r['fused_fwd_adj_s']:.1f}"
        for r in results))
    print(f"whole network / largest layer: forward {summary['network_over_largest_fwd']:.2f}, "
          f"forward+adjoint {summary['network_over_largest_fwd_adj']:.2f} "
          f"(target <= {TARGETS['network_vs_largest']})")
    print(f"network, one launch per layer / one grouped launch: forward "
          f"{net['per_layer_over_grouped_fwd']:.2f}, forward+adjoint "
          f"{net['per_layer_over_grouped_fwd_adj']:.2f}")
    print(f"targets: e2cnn/fused >= {TARGETS['vs_e2cnn']}, padded/fused >= "
          f"{TARGETS['vs_padded']}, fused/floor <= {TARGETS['vs_floor']}")
    predicted = print_predicted(env["device"], results, args.quick)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "results": results, "summary": summary,
                       "targets": TARGETS, "predicted": predicted}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
