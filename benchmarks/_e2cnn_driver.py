"""e2cnn 0.2.3 side of benchmarks/bench_expand.py.

Runs under the e2cnn virtual environment's python (see benchmarks/e2cnn_env.sh: NumPy 1.26,
torch 2.13 CPU, e2cnn 0.2.3), never under the project's python. It does not import cupysteer.

    $E2CNN_PYTHON benchmarks/_e2cnn_driver.py SPEC.json      (or the spec on stdin, or '-')

Spec (JSON)::

    {"layers": [{"name": "C8", "group": "C", "N": 8, "fields": "regular", "mult": 16,
                 "kernel_size": 5,
                 "weights_npy": "/path/w.npy",       # optional: expand these weights ...
                 "filter_npy": "/path/f.npy",        # ... and save the filter here
                 "cold_only": false}],               # optional: builds only
     "min_time": 0.2, "max_repeats": 50, "init_repeats": 3,
     "threads": [2]}                                 # optional: expand again at these counts

``group``: "C" (Rot2dOnR2(N)), "D" (FlipRot2dOnR2(N)), "SO2" (Rot2dOnR2(-1, maximum_frequency=N)).
``fields``: "regular" (the group's regular representation, ``mult`` times) or "irreps:K"
(irreps 0..K, the list repeated ``mult`` times; SO(2) irreps via ``gspace.irrep(k)``).

Times (seconds, time.perf_counter, single thread; each also as ``<name>_cpu``: process CPU time,
time.process_time, which does not count time spent descheduled on a loaded machine):

* ``cold_build``: gspace + field types + R2Conv(initialize=False), the first construction of that
  layer in this process (e2cnn's group, representation, basis and sampled-block caches cold; the
  import of e2cnn/torch is excluded and reported separately as ``import``). Only the first layer of
  a process is truly cold: bench_expand.py runs one process per layer.
* ``cached_build``: the same construction again in the same process (e2cnn's caches warm: groups,
  representations, unsampled bases and sampled block modules are reused).
* ``init``: ``generalized_he_init(layer.weights.data, layer.basisexpansion)`` (what R2Conv's
  constructor runs with initialize=True), median of ``init_repeats``.
* ``expand``: ``layer.basisexpansion(layer.weights)`` under torch.no_grad(), median.
* ``expand_adjoint``: forward expansion with autograd + backward of (filter * G).sum() w.r.t. the
  weights (G a fixed random filter gradient), median.
* ``expand_t<n>``, ``expand_adjoint_t<n>``: the same with ``torch.set_num_threads(n)`` for each
  n in ``threads`` (then back to 1).
* ``stored_bytes``: bytes of the ``sampled_basis`` buffers of the basis expansion's block modules
  (``buffer_bytes``: all its buffers, index buffers included).

Prints one JSON object on stdout.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

warnings.filterwarnings("ignore")

_t0 = time.perf_counter()
import numpy as np  # noqa: E402
import torch  # noqa: E402
from e2cnn import gspaces  # noqa: E402
from e2cnn import nn as enn  # noqa: E402
from e2cnn.nn.init import generalized_he_init  # noqa: E402

IMPORT_TIME = time.perf_counter() - _t0

torch.set_num_threads(1)


from _e2cnn_patch import patch_bool_mask  # noqa: E402

patch_bool_mask()


def _clock():
    return time.perf_counter(), time.process_time()


def _since(c):
    """(wall seconds, process CPU seconds) since _clock() returned c."""
    return time.perf_counter() - c[0], time.process_time() - c[1]


def _median_time(fn, min_time, max_repeats, min_repeats=5):
    """(median wall, repeats, min wall, median process CPU time); one warm-up excluded."""
    fn()  # warm-up, excluded
    ts, cs = [], []
    start = time.perf_counter()
    while len(ts) < min_repeats or (len(ts) < max_repeats
                                    and time.perf_counter() - start < min_time):
        c = _clock()
        fn()
        t, cpu = _since(c)
        ts.append(t)
        cs.append(cpu)
    return statistics.median(ts), len(ts), min(ts), statistics.median(cs)


def _build(spec):
    g = spec["group"]
    if g == "C":
        gs = gspaces.Rot2dOnR2(N=int(spec["N"]))
    elif g == "D":
        gs = gspaces.FlipRot2dOnR2(N=int(spec["N"]))
    elif g == "SO2":
        gs = gspaces.Rot2dOnR2(N=-1, maximum_frequency=int(spec["N"]))
    else:
        raise ValueError(f"unknown group {g!r}")
    fields = spec["fields"]
    if fields == "regular":
        reps = [gs.regular_repr] * int(spec["mult"])
    elif fields.startswith("irreps:"):
        K = int(fields.split(":")[1])
        reps = [gs.irrep(k) for k in range(K + 1)] * int(spec["mult"])
    else:
        raise ValueError(f"unknown fields {fields!r}")
    t = enn.FieldType(gs, reps)
    return enn.R2Conv(t, t, kernel_size=int(spec["kernel_size"]), initialize=False)


def run_layer(spec, min_time, max_repeats, init_repeats, threads=()):
    res = {"name": spec["name"]}
    c = _clock()
    layer = _build(spec)
    res["cold_build"], res["cold_build_cpu"] = _since(c)
    c = _clock()
    layer2 = _build(spec)
    res["cached_build"], res["cached_build_cpu"] = _since(c)
    del layer2
    if spec.get("cold_only"):
        return res
    be = layer.basisexpansion
    res["dim"] = int(layer.weights.numel())
    res["filter_shape"] = [int(layer.out_type.size), int(layer.in_type.size),
                           int(spec["kernel_size"]), int(spec["kernel_size"])]

    torch.manual_seed(0)
    ts, cs = [], []
    for _ in range(max(1, init_repeats)):
        c = _clock()
        generalized_he_init(layer.weights.data, layer.basisexpansion)
        t, cpu = _since(c)
        ts.append(t)
        cs.append(cpu)
    res["init"], res["init_cpu"] = statistics.median(ts), statistics.median(cs)
    res["init_repeats"] = len(ts)

    w = layer.weights
    with torch.no_grad():
        res["expand"], res["expand_repeats"], res["expand_min"], res["expand_cpu"] = \
            _median_time(lambda: be(w), min_time, max_repeats)
        filt = be(w)
    G = torch.randn(filt.shape, generator=torch.Generator().manual_seed(1))

    def fwd_bwd():
        w.grad = None
        f = be(w)
        (f * G).sum().backward()

    (res["expand_adjoint"], res["expand_adjoint_repeats"], res["expand_adjoint_min"],
     res["expand_adjoint_cpu"]) = _median_time(fwd_bwd, min_time, max_repeats)
    for t in threads:
        torch.set_num_threads(int(t))
        with torch.no_grad():
            (res[f"expand_t{t}"], _, res[f"expand_t{t}_min"],
             res[f"expand_t{t}_cpu"]) = _median_time(lambda: be(w), min_time, max_repeats)
        (res[f"expand_adjoint_t{t}"], _, res[f"expand_adjoint_t{t}_min"],
         res[f"expand_adjoint_t{t}_cpu"]) = _median_time(fwd_bwd, min_time, max_repeats)
        torch.set_num_threads(1)
    sb = [b for n, b in be.named_buffers() if n.split(".")[-1] == "sampled_basis"]
    res["stored_bytes"] = int(sum(b.numel() * b.element_size() for b in sb))
    res["buffer_bytes"] = int(sum(b.numel() * b.element_size() for b in be.buffers()))
    res["num_blocks"] = len(sb)

    if spec.get("weights_npy"):
        wn = np.load(spec["weights_npy"])
        if wn.shape != (res["dim"],):
            raise ValueError(f"{spec['name']}: weights shape {wn.shape}, e2cnn dim {res['dim']}")
        with torch.no_grad():
            f = be(torch.from_numpy(np.ascontiguousarray(wn, np.float32)))
        k = int(spec["kernel_size"])
        f = f.reshape(res["filter_shape"][0], res["filter_shape"][1], k, k)
        np.save(spec["filter_npy"], f.numpy())
    return res


def main(argv):
    if len(argv) > 1 and argv[1] != "-":
        with open(argv[1]) as fh:
            spec = json.load(fh)
    else:
        spec = json.load(sys.stdin)
    out = {
        "versions": {"e2cnn": "0.2.3", "torch": torch.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "threads": {"torch": torch.get_num_threads(),
                    **{v: os.environ[v] for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                  "OPENBLAS_NUM_THREADS")}},
        "import": IMPORT_TIME,
        "layers": [],
    }
    for layer in spec["layers"]:
        out["layers"].append(run_layer(layer, float(spec.get("min_time", 0.2)),
                                       int(spec.get("max_repeats", 50)),
                                       int(spec.get("init_repeats", 3)),
                                       spec.get("threads", [])))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
