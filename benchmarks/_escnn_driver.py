"""escnn 1.0.11 side of benchmarks/bench_build3d.py (3D build cost baseline).

Runs under the escnn virtual environment's python (see benchmarks/escnn_env.sh: NumPy 1.26,
torch 2.13 CPU, escnn 1.0.11), never under the project's python. It does not import cupysteer.
One named layer configuration per process, so that its first construction is the first one of
the process::

    $ESCNN_PYTHON benchmarks/_escnn_driver.py CONFIG [--mode cold|cached] [--repeat N]
    $ESCNN_PYTHON benchmarks/_escnn_driver.py --list          # the config table, as JSON

Modes:

* ``cold``: escnn's on-disk cache (joblib, inside the installed package: ``escnn/group/_cache``)
  is emptied before escnn is imported, so groups, irreps, restrictions, Clebsch-Gordan
  coefficients and change-of-basis matrices are all computed in this process. The venv is a
  throwaway one made by escnn_env.sh: nothing is backed up.
* ``cached``: the disk cache is used as it is (warm when the same config ran before, e.g. in
  ``cold`` mode). ``cache_bytes_before`` tells how much it held.

Quantities (seconds, time.perf_counter; each also as ``<name>_cpu``: process CPU time):

* ``import``: import of torch + escnn (excluded from everything else);
* ``gspace``: creating the gspace and the in/out field types;
* ``build``: ``R3Conv(in_type, out_type, kernel_size, initialize=False)``;
* ``he_init``: first ``generalized_he_init(layer.weights.data, layer.basisexpansion)`` (what
  R3Conv's constructor runs with initialize=True); ``he_init_median``: median of ``--init-repeats``;
* ``second_build``: the same R3Conv again, same process, same field types (in-memory caches warm);
* ``expand``: median of ``--repeat`` calls of ``layer.expand_parameters()`` under torch.no_grad()
  (one warm-up call excluded), torch.set_num_threads(1) and OMP/MKL/OPENBLAS_NUM_THREADS=1;
* ``padded_bytes``: bytes of the ``sampled_basis`` buffers of the layer's basis expansion (escnn's
  stored, zero-padded basis: (dim_block, out_size, in_size, k³) float32 per block);
  ``buffer_bytes``: all buffers of the expansion (index buffers included);
* ``dim``: number of weights; ``pairs``: number of sampled blocks (representation pairs);
* ``max_rss``: peak resident memory of the process (bytes).

escnn 1.0.11 needs no patch under torch 2.13 (unlike e2cnn 0.2.3, benchmarks/_e2cnn_patch.py).

Everything escnn prints while building (joblib's cache messages, numerical CG diagnostics) goes to
stderr; stdout carries one JSON object.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

# ---- the configurations (plain data; bench_build3d.py reads this table too) ---------------------
# group: gspace kind (see _gspace); fields: "regular" or a list of irrep ids (gspace.irrep(*id));
# mult: how many times the field list is repeated (in = out); weights: escnn's dim with the
# R3Conv defaults (reference §5), checked after the build.
_SO3_0123 = [[0], [1], [2], [3]]
_O3_ALL2 = [[j, l] for l in range(3) for j in range(2)]
CONFIGS = {
    "octa_regular_k3": {"group": "octa", "fields": "regular", "mult": 1, "kernel_size": 3,
                        "weights": 240},
    "octa_regular_k5": {"group": "octa", "fields": "regular", "mult": 1, "kernel_size": 5,
                        "weights": 456},
    "octa_regularx4_k5": {"group": "octa", "fields": "regular", "mult": 4, "kernel_size": 5,
                          "weights": 7296},
    "fullocta_regular_k3": {"group": "fullocta", "fields": "regular", "mult": 1,
                            "kernel_size": 3, "weights": 480},
    "ico_regular_k3": {"group": "ico", "fields": "regular", "mult": 1, "kernel_size": 3,
                       "weights": 600},
    "ico_regular_k5": {"group": "ico", "fields": "regular", "mult": 1, "kernel_size": 5,
                       "weights": 1140},
    "so3_irreps012_k5": {"group": "so3", "maximum_frequency": 2, "fields": [[0], [1], [2]],
                         "mult": 1, "kernel_size": 5, "weights": 33},
    "so3_irreps0123_k7": {"group": "so3", "maximum_frequency": 3, "fields": _SO3_0123,
                          "mult": 1, "kernel_size": 7, "weights": 86},
    "o3_irreps_all2_k3": {"group": "o3", "maximum_frequency": 2, "fields": _O3_ALL2, "mult": 1,
                          "kernel_size": 3, "weights": 36},
    "c4z_regular_k5": {"group": "c4z", "fields": "regular", "mult": 1, "kernel_size": 5,
                       "weights": 76},
}
DESCRIPTION = {
    "octa_regular_k3": "O (octahedral) regular -> regular, 3x3x3",
    "octa_regular_k5": "O regular -> regular, 5x5x5",
    "octa_regularx4_k5": "O regular x4 -> regular x4, 5x5x5",
    "fullocta_regular_k3": "O_h (full octahedral) regular -> regular, 3x3x3",
    "ico_regular_k3": "I (icosahedral) regular -> regular, 3x3x3",
    "ico_regular_k5": "I regular -> regular, 5x5x5",
    "so3_irreps012_k5": "SO(3) irreps l=0,1,2 -> same, 5x5x5",
    "so3_irreps0123_k7": "SO(3) irreps l=0..3 -> same, 7x7x7",
    "o3_irreps_all2_k3": "O(3) all six irreps with l<=2 -> same, 3x3x3",
    "c4z_regular_k5": "C4 (about z) regular -> regular, 5x5x5",
}


def cache_dir():
    """escnn's joblib disk cache (escnn/group/_cache), found without importing escnn."""
    import importlib.util
    spec = importlib.util.find_spec("escnn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("escnn is not importable from this python")
    return os.path.join(list(spec.submodule_search_locations)[0], "group", "_cache")


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def empty_cache(path):
    import shutil
    if os.path.isdir(path):
        for entry in os.listdir(path):
            p = os.path.join(path, entry)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.remove(p)
    else:
        os.makedirs(path, exist_ok=True)


def _clock():
    return time.perf_counter(), time.process_time()


def _since(c):
    return time.perf_counter() - c[0], time.process_time() - c[1]


def _gspace(gspaces, spec):
    g = spec["group"]
    if g == "so3":
        return gspaces.rot3dOnR3(maximum_frequency=int(spec.get("maximum_frequency", 2)))
    if g == "o3":
        return gspaces.flipRot3dOnR3(maximum_frequency=int(spec.get("maximum_frequency", 2)))
    if g == "octa":
        return gspaces.octaOnR3()
    if g == "fullocta":
        return gspaces.fullOctaOnR3()
    if g == "ico":
        return gspaces.icoOnR3()
    if g == "fullico":
        return gspaces.fullIcoOnR3()
    if g == "c4z":
        return gspaces.rot2dOnR3(n=4)
    raise ValueError(f"unknown group {g!r}")


def _field_types(enn, gs, spec):
    if spec["fields"] == "regular":
        reps = [gs.regular_repr] * int(spec["mult"])
    else:
        reps = [gs.irrep(*i) for i in spec["fields"]] * int(spec["mult"])
    t = enn.FieldType(gs, reps)
    return t, t


def measure(name, mode, repeat, init_repeats, min_time):
    spec = CONFIGS[name]
    res = {"name": name, "mode": mode, "spec": spec}
    cdir = cache_dir()
    if mode == "cold":
        empty_cache(cdir)
    elif mode != "cached":
        raise ValueError(f"mode must be cold or cached, not {mode!r}")
    res["cache_dir"] = cdir
    res["cache_bytes_before"] = dir_bytes(cdir)

    import warnings
    warnings.filterwarnings("ignore")
    c = _clock()
    import escnn  # noqa: F401
    import numpy  # noqa: F401
    import torch
    from escnn import gspaces
    from escnn import nn as enn
    from escnn.nn.init import generalized_he_init
    res["import"], res["import_cpu"] = _since(c)
    torch.set_num_threads(1)

    c = _clock()
    gs = _gspace(gspaces, spec)
    tin, tout = _field_types(enn, gs, spec)
    res["gspace"], res["gspace_cpu"] = _since(c)

    k = int(spec["kernel_size"])
    c = _clock()
    layer = enn.R3Conv(tin, tout, kernel_size=k, initialize=False)
    res["build"], res["build_cpu"] = _since(c)
    res["dim"] = int(layer.weights.numel())
    if res["dim"] != spec["weights"]:
        raise RuntimeError(f"{name}: escnn dim {res['dim']}, table says {spec['weights']}")
    res["c_in"], res["c_out"] = int(tin.size), int(tout.size)

    torch.manual_seed(0)
    ts, cs = [], []
    for _ in range(max(1, init_repeats)):
        c = _clock()
        generalized_he_init(layer.weights.data, layer.basisexpansion)
        t, cpu = _since(c)
        ts.append(t)
        cs.append(cpu)
    res["he_init"], res["he_init_cpu"] = ts[0], cs[0]
    res["he_init_median"], res["he_init_repeats"] = statistics.median(ts), len(ts)

    c = _clock()
    layer2 = enn.R3Conv(tin, tout, kernel_size=k, initialize=False)
    res["second_build"], res["second_build_cpu"] = _since(c)
    del layer2

    be = layer.basisexpansion
    sb = [b for n, b in be.named_buffers() if n.split(".")[-1] == "sampled_basis"]
    res["padded_bytes"] = int(sum(b.numel() * b.element_size() for b in sb))
    res["buffer_bytes"] = int(sum(b.numel() * b.element_size() for b in be.buffers()))
    res["pairs"] = len(sb)

    if repeat > 0:
        layer.eval()
        with torch.no_grad():
            c = _clock()
            filt, _ = layer.expand_parameters()  # warm-up, excluded
            res["expand_first"], _ = _since(c)
            res["filter_shape"] = list(filt.shape)
            ts, cs = [], []
            start = time.perf_counter()
            while len(ts) < repeat or (time.perf_counter() - start < min_time and
                                       len(ts) < 50 * repeat):
                c = _clock()
                layer.expand_parameters()
                t, cpu = _since(c)
                ts.append(t)
                cs.append(cpu)
        res["expand"], res["expand_cpu"] = statistics.median(ts), statistics.median(cs)
        res["expand_min"], res["expand_repeats"] = min(ts), len(ts)

    import resource
    res["max_rss"] = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    res["cache_bytes_after"] = dir_bytes(cdir)
    import importlib.metadata as md
    res["versions"] = {p: md.version(p) for p in ("escnn", "torch", "numpy", "scipy",
                                                  "lie_learn", "py3nj", "pymanopt")}
    res["versions"]["python"] = sys.version.split()[0]
    res["threads"] = {"torch": torch.get_num_threads(),
                      **{v: os.environ[v] for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                    "OPENBLAS_NUM_THREADS")}}
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", nargs="?", choices=sorted(CONFIGS))
    ap.add_argument("--mode", choices=("cold", "cached"), default="cold")
    ap.add_argument("--repeat", type=int, default=5,
                    help="expand_parameters() calls timed (median; 0: no expand)")
    ap.add_argument("--min-time", type=float, default=0.3,
                    help="keep timing expand until this many seconds (default 0.3)")
    ap.add_argument("--init-repeats", type=int, default=3)
    ap.add_argument("--list", action="store_true", help="print the config table as JSON")
    args = ap.parse_args(argv)
    if args.list:
        print(json.dumps({"configs": CONFIGS, "description": DESCRIPTION}))
        return 0
    if not args.config:
        ap.error("a config name is required (or --list)")
    # escnn (joblib's verbose cache, numerical CG diagnostics) prints on stdout: send the file
    # descriptor to stderr while measuring, so that stdout carries only the JSON line.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        res = measure(args.config, args.mode, args.repeat, args.init_repeats, args.min_time)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
