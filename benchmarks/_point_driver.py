"""One point-convolution measurement in a fresh process (driven by bench_point.py).

    python _point_driver.py IMPL CASE EDGES MODE      IMPL: cupysteer | escnn

Builds the same random graph (NumPy seed 0: nodes uniform in a box sized so a node has
~EDGES/n neighbours within the width) and layer (C8 regular×8 → regular×8 on R², or
octahedral regular×2 → regular×2 on R³; width 2, 3 rings, escnn's other defaults), runs
MODE (``fwd`` or ``fwdbwd``) once to warm up and three times timed, and prints one JSON line:
seconds per call (best of 3) and the peak RSS increase over the state before the first call
(ru_maxrss; every process measures exactly one configuration). The escnn run happens in
escnn's own virtual environment and never imports cupysteer.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def _graph(case: str, E: int):
    d = 2 if case == "c8" else 3
    n = max(E // 16, 8)
    rng = np.random.default_rng(0)
    pos = rng.uniform(-1, 1, size=(n, d)) * (n / 16) ** (1 / d)
    src = rng.integers(0, n, E)
    dst = np.clip(src + rng.integers(-8, 9, E), 0, n - 1)  # near neighbours in index order
    pos = pos[np.argsort(pos[:, 0])]
    return pos, np.stack([src, dst]).astype(np.int64)


def _cupysteer(case):
    import cupysteer as cs
    from cupysteer import r3
    from cupysteer.torch import SteerablePointConv
    if case == "c8":
        G = cs.CyclicGroup(8)
        t = cs.FieldType(G, [G.regular_representation] * 8)
    else:
        G = r3.Octahedral()
        t = cs.FieldType(G, [G.regular_representation] * 2)
    conv = SteerablePointConv(t, t, width=2.0, n_rings=3, frequencies_cutoff=1.5)
    return lambda f, x, ei: conv(f, x, ei), t.size, conv.weights


def _escnn(case):
    from escnn import gspaces, nn
    gs = gspaces.rot2dOnR2(8) if case == "c8" else gspaces.octaOnR3()
    t = nn.FieldType(gs, [gs.regular_repr] * (8 if case == "c8" else 2))
    Conv = nn.R2PointConv if case == "c8" else nn.R3PointConv
    conv = Conv(t, t, width=2.0, n_rings=3, frequencies_cutoff=1.5)
    return (lambda f, x, ei: conv(nn.GeometricTensor(f, t, coords=x), ei).tensor, t.size,
            conv.weights)


def main(impl, case, E, mode):
    fn, C, weights = (_cupysteer if impl == "cupysteer" else _escnn)(case)
    pos, ei = _graph(case, int(E))
    x = torch.from_numpy(pos).float()
    f = torch.randn(len(pos), C, requires_grad=(mode == "fwdbwd"))
    ei = torch.from_numpy(ei)

    def call():
        y = fn(f, x, ei)
        if mode == "fwdbwd":
            y.square().sum().backward()
        return y
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    call()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    print(json.dumps(dict(impl=impl, case=case, edges=int(E), mode=mode, seconds=min(times),
                          peak_mib=(peak - base) / 1024, dim=int(weights.numel()))))


if __name__ == "__main__":
    main(*sys.argv[1:5])
