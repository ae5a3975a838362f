"""CPU training step of small steerable CNNs: cupysteer.torch against e2cnn 0.2.3 and escnn 1.0.11.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benchmarks/bench_train.py \\
        [--e2cnn-python /tmp/e2cnn-venv/bin/python] [--escnn-python /tmp/escnn-venv/bin/python] \\
        [--steps 30] [--rounds 3] [--json out.json]

Two models, the same architecture on every side (weights initialised by each library, the same
fixed random batch every step; cupysteer's and the anchor's layers have the same weight counts,
which the benchmark checks):

* ``c8``: "MNIST-style" C8 CNN, input (32, 1, 28, 28): trivial → 8 regular C8 fields (5×5,
  padding 2) → 16 (5×5) → 32 (5×5); inner batch norm (one statistic per field) and ReLU after
  every convolution, 2×2 average pooling after the first two; max over each field's 8 channels
  (group pooling), global average, Linear(32, 10); Adam, cross-entropy.
* ``c8e2``: the architecture of e2cnn's own C8 example (``C8SteerableCNN``: 24, 48, 48, 96, 96,
  64 regular C8 fields, kernels 7, 5, 5, 5, 5, 5, paddings 1, 2, 2, 2, 2, 1; input
  (16, 1, 29, 29)), with 2×2 average pooling after the 2nd and 4th convolution on both sides
  (instead of e2cnn's antialiased pooling and input mask) and the same head as ``c8``; here the
  filters (up to 768 × 768 × 5 × 5) weigh as much as the activations.
* ``o3d``: O-regular 3D CNN, input (4, 1, 16, 16, 16): trivial → 2 regular fields of the
  octahedral group O (24 channels each, 3×3×3, padding 1) → 4 (3×3×3); inner batch norm and ReLU
  after both, 2×2×2 average pooling after the first; group pooling, global average,
  Linear(4, 10); Adam.

A *step* is forward + loss + backward + optimiser step (train mode: every step expands the
filters and, in backward, their adjoints). Median (and minimum) over ``--steps`` steps after 5
warm-up steps, in a fresh process per measurement; ``--rounds`` alternating rounds, medians
of the per-round medians.

Threads: every process starts with the caller's environment minus OMP/MKL/OPENBLAS/NUMEXPR_
NUM_THREADS ("default threads, no environment variables"); torch uses its default thread count.
cupysteer is measured as it ships (its torch operator runs the NumPy expansion with one BLAS
thread, see ``cupysteer.backends.numpy_backend.blas_threads``) and, for comparison, with that
limit removed (``cupysteer-nolimit``) and with ``OPENBLAS_NUM_THREADS=1`` set for the whole
process (``cupysteer-env1``). threadpoolctl's view of the BLAS libraries is printed per process.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS")
SHAPES = {"c8": (32, 1, 28, 28), "c8e2": (16, 1, 29, 29), "o3d": (4, 1, 16, 16, 16)}
ANCHOR = {"c8": "e2cnn", "c8e2": "e2cnn", "o3d": "escnn"}
# fields per convolution, kernel sizes, paddings, pooling after the first n_pool convolutions
# (c8e2: after the 2nd and 4th)
CONFIG = {"c8": ((8, 16, 32), (5, 5, 5), (2, 2, 2), (0, 1)),
          "c8e2": ((24, 48, 48, 96, 96, 64), (7, 5, 5, 5, 5, 5), (1, 2, 2, 2, 2, 1), (1, 3)),
          "o3d": ((2, 4), (3, 3), (1, 1), (0,))}
TARGET = 0.8  # cupysteer step / anchor step


# ---- models (built inside the child process, with the side's own library) -------------------
def _head(torch, fields, g):
    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(fields, 10)

        def forward(self, x):
            n, c = x.shape[:2]
            x = x.view(n, c // g, g, *x.shape[2:]).amax(2)  # group pooling
            return self.fc(x.flatten(2).mean(2))
    return Head()


def _ibn(torch, fields, g, ndim):
    bn_cls = torch.nn.BatchNorm3d if ndim == 2 else None

    class InnerBatchNorm(torch.nn.Module):  # e2cnn's InnerBatchNorm for regular fields
        def __init__(self):
            super().__init__()
            self.bn = bn_cls(fields) if bn_cls else torch.nn.BatchNorm1d(fields)

        def forward(self, x):
            n, c = x.shape[:2]
            if ndim == 2:
                return self.bn(x.view(n, c // g, g, *x.shape[2:])).view(x.shape)
            y = self.bn(x.view(n, c // g, -1))
            return y.view(x.shape)
    return InnerBatchNorm()


def cupysteer_model(name):
    import torch

    import cupysteer as cs
    from cupysteer import r3
    from cupysteer.torch import SteerableConv2d, SteerableConv3d
    F = torch.nn.functional
    fields, ks, pads, pools = CONFIG[name]
    if name.startswith("c8"):
        G, conv, ndim, pool = cs.CyclicGroup(8), SteerableConv2d, 2, F.avg_pool2d
    else:
        G, conv, ndim, pool = r3.Octahedral(), SteerableConv3d, 3, F.avg_pool3d
    R = G.regular_representation
    types = [cs.FieldType(G, [G.trivial_representation])] + \
        [cs.FieldType(G, [R] * f) for f in fields]
    convs = [conv(a, b, k, padding=p, bias=False)
             for a, b, k, p in zip(types[:-1], types[1:], ks, pads)]
    norms = [_ibn(torch, f, R.size, ndim) for f in fields]
    return _Net(torch, convs, norms, _head(torch, fields[-1], R.size), pool,
                pools), [c.basis.dim for c in convs]


def e2cnn_model(name):
    import torch
    from e2cnn import gspaces
    from e2cnn import nn as enn
    gs = gspaces.Rot2dOnR2(N=8)
    fields, ks, pads, pools = CONFIG[name]
    types = [enn.FieldType(gs, [gs.trivial_repr])] + \
        [enn.FieldType(gs, [gs.regular_repr] * f) for f in fields]
    convs = [enn.R2Conv(a, b, k, padding=p, bias=False)
             for a, b, k, p in zip(types[:-1], types[1:], ks, pads)]
    return _AnchorNet(torch, enn, types, convs, 2, pools), [c.weights.numel() for c in convs]


def escnn_model(name):
    import torch
    from escnn import gspaces
    from escnn import nn as enn
    gs = gspaces.octaOnR3()
    fields, ks, pads, pools = CONFIG[name]
    types = [enn.FieldType(gs, [gs.trivial_repr])] + \
        [enn.FieldType(gs, [gs.regular_repr] * f) for f in fields]
    convs = [enn.R3Conv(a, b, k, padding=p, bias=False)
             for a, b, k, p in zip(types[:-1], types[1:], ks, pads)]
    return _AnchorNet(torch, enn, types, convs, 3, pools), [c.weights.numel() for c in convs]


class _Net:
    """cupysteer side: plain torch modules around the steerable convolutions."""

    def __new__(cls, torch, convs, norms, head, pool, pools):
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.convs = torch.nn.ModuleList(convs)
                self.norms = torch.nn.ModuleList(norms)
                self.head = head

            def forward(self, x):
                for i, (conv, bn) in enumerate(zip(self.convs, self.norms)):
                    x = torch.relu(bn(conv(x)))
                    if i in pools:
                        x = pool(x, 2)
                return self.head(x)
        return Net()


class _AnchorNet:
    """e2cnn / escnn side: the anchor's own InnerBatchNorm, ReLU, pointwise average pooling
    and GroupPooling."""

    def __new__(cls, torch, enn, types, convs, ndim, pools):
        Pool = enn.PointwiseAvgPool if ndim == 2 else enn.PointwiseAvgPool3D

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.in_type = types[0]
                layers = []
                for i, (conv, t) in enumerate(zip(convs, types[1:])):
                    layers += [conv, enn.InnerBatchNorm(t), enn.ReLU(t)]
                    if i in pools:
                        layers.append(Pool(t, 2))
                layers.append(enn.GroupPooling(types[-1]))
                self.body = enn.SequentialModule(*layers)
                self.fc = torch.nn.Linear(len(types[-1].representations), 10)

            def forward(self, x):
                x = self.body(enn.GeometricTensor(x, self.in_type)).tensor
                return self.fc(x.flatten(2).mean(2))
        return Net()


# ---- child: one side, one model ---------------------------------------------------------------
def child(side, name, steps):
    t0 = time.perf_counter()
    if side.startswith("cupysteer"):
        sys.path.insert(0, os.environ.get("CUPYSTEER_SRC") or ROOT)
    import warnings
    warnings.filterwarnings("ignore")
    import numpy as np
    import torch
    if side == "cupysteer-nolimit":
        from cupysteer.backends import numpy_backend
        numpy_backend.blas_threads = lambda n: _NullContext()
    build = {"e2cnn": e2cnn_model, "escnn": escnn_model}.get(side, cupysteer_model)
    torch.manual_seed(0)
    t1 = time.perf_counter()
    model, dims = build(name)
    t_build = time.perf_counter() - t1
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(SHAPES[name], generator=g)
    y = torch.randint(0, 10, (SHAPES[name][0],), generator=g)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return float(loss)

    losses = [step() for _ in range(5)]  # warm-up
    ts = []
    for _ in range(steps):
        c = time.perf_counter()
        step()
        ts.append(time.perf_counter() - c)
    try:
        from threadpoolctl import threadpool_info
        pools = [(i.get("internal_api"), i.get("num_threads"), i.get("architecture"))
                 for i in threadpool_info()]
    except ImportError:
        pools = "threadpoolctl not installed"
    print(json.dumps({"side": side, "model": name, "median": statistics.median(ts),
                      "min": min(ts), "steps": len(ts), "dims": dims, "build": t_build,
                      "process": time.perf_counter() - t0, "first_losses": losses[:2],
                      "torch_threads": torch.get_num_threads(), "pools": pools,
                      "numpy": np.__version__, "torch": torch.__version__}))


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run_child(python, side, name, steps, extra_env=None):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(extra_env or {})
    out = subprocess.run([python, os.path.abspath(__file__), "--child", side, "--model", name,
                          "--steps", str(steps)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{side}/{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--e2cnn-python", default=os.environ.get("E2CNN_PYTHON"))
    ap.add_argument("--escnn-python", default=os.environ.get("ESCNN_PYTHON"))
    ap.add_argument("--models", default="c8,c8e2,o3d")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--child")
    ap.add_argument("--model")
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.model, args.steps)
        return 0
    anchors = {"e2cnn": args.e2cnn_python, "escnn": args.escnn_python}
    print(f"load average at start: {os.getloadavg()[0]:.2f}; thread variables removed: "
          f"{', '.join(THREAD_VARS)}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    sides = [("cupysteer", sys.executable, None), ("cupysteer-nolimit", sys.executable, None),
             ("cupysteer-env1", sys.executable, {"OPENBLAS_NUM_THREADS": "1"})]
    results = {}
    for name in args.models.split(","):
        anchor = ANCHOR[name]
        runs = sides + ([(anchor, anchors[anchor], None)] if anchors[anchor] else [])
        for r in range(args.rounds):
            for side, py, env in runs:
                res = run_child(py, "cupysteer" if side == "cupysteer-env1" else side, name,
                                args.steps, env)
                res["side"] = side
                results.setdefault((name, side), []).append(res)
                print(f"  round {r}: {name} {side:18s} step {res['median'] * 1e3:7.1f} ms "
                      f"(min {res['min'] * 1e3:.1f}), torch threads {res['torch_threads']}, "
                      f"weights {res['dims']}, BLAS {res['pools']}", flush=True)
    print()
    print("| model | side | step (median of rounds) | min | vs anchor | target ≤ 0.8× |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    table = {}
    for (name, side), rs in results.items():
        med = statistics.median(r["median"] for r in rs)
        table[(name, side)] = (med, min(r["min"] for r in rs))
    for (name, side), (med, mn) in table.items():
        a = table.get((name, ANCHOR[name]))
        ratio = med / a[0] if a else None
        verdict = "-" if ratio is None or side == ANCHOR[name] else (
            "yes" if ratio <= TARGET else "NO")
        print(f"| {name} | {side} | {med * 1e3:.1f} ms | {mn * 1e3:.1f} ms | "
              f"{'-' if ratio is None else f'{ratio:.2f}x'} | {verdict} |")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({f"{k[0]}/{k[1]}": v for k, v in results.items()}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
