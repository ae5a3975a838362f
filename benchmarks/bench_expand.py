"""CPU benchmark of cupysteer's NumPy expander against the anchor e2cnn 0.2.3.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        python3 benchmarks/bench_expand.py [--e2cnn-python PATH] [--json out.json] [--quick]

(On machines that set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for old OpenBLAS builds, unset both
for the benchmark alone: they make current NumPy run a slower kernel. The kernel each side runs
is printed, from threadpoolctl.)

PATH is the python of the e2cnn environment made by ``benchmarks/e2cnn_env.sh`` (also taken from
the environment variable E2CNN_PYTHON). Without it only cupysteer is measured.

Reference layers (in and out field types are equal, e2cnn R2Conv defaults otherwise):
C8 regular ×16 5×5, C16 regular ×8 7×7, D4 regular ×24 5×5, SO(2) irreps 0–3 ×8 7×7, and a wide
layer C8 regular ×64 7×7 (C8w).

Quantities, per layer (seconds, time.perf_counter; medians over repeats, one warm-up excluded):

* cold build: group + field types + basis (cupysteer ``LayerBasis``, e2cnn ``R2Conv`` with
  ``initialize=False``), the first construction in a fresh process (library import excluded),
  median over ``--cold-repeats`` processes;
* cold build + 1st expand: the cold build plus the first expand on that layer (cupysteer; per
  process, median), compared with e2cnn's cold build, whose module is ready to expand;
* cached build: the same construction again in the same process. e2cnn reuses its caches
  (groups, representations, bases, sampled blocks); cupysteer reuses whatever its process-wide
  default cache holds (median of several rebuilds). CUPYSTEER_CACHE_DIR is removed from the
  children's environment, so no disk cache is ever read;
* init: generalized He init (``L.init_weights`` / ``e2cnn.nn.init.generalized_he_init``). cupysteer:
  the first call on the layer of the cold build, in the same fresh processes (median); repeated
  calls are reported apart as ``init_warm``. e2cnn's init keeps nothing between calls
  (cache=False, as R2Conv calls it): median of ``--init-repeats`` calls;
* expand: weights → float32 filter (``L.expand`` / ``layer.basisexpansion(weights)`` under no_grad);
  cupysteer builds its NumPy expander lazily on the first expand: that first call is reported
  apart as ``first_expand`` (it is not part of the build or of the expand median);
* expand+adjoint: expansion plus the weight gradient of (filter·G).sum()
  (``L.expand`` + ``L.adjoint(G)`` / forward + autograd backward);
* stored bytes: cupysteer ``L.stored_bytes``, e2cnn the ``sampled_basis`` buffers;
* copy floor: ``np.copyto`` of a float32 array of the filter's size (memory-bandwidth floor);
* 2 threads: expand and expand+adjoint again with 2 threads on both sides (cupysteer: NumPy's
  BLAS raised to 2 threads with threadpoolctl; e2cnn: ``torch.set_num_threads(2)``);
* import / first filter (``benchmarks/_first_filter.py``, ``--first-filter-repeats`` fresh
  processes, package byte-compiled first as an installed wheel is): ``import numpy``, then
  ``import cupysteer``, then the C8 layer's build and first expand (weights: a seeded standard
  normal vector), each timed; in the
  single-thread environment of the other measurements and with no thread variable set.

Everything else runs single-threaded: OMP/MKL/OPENBLAS/NUMEXPR_NUM_THREADS=1 are set before NumPy is
imported (here, in every child process and in the e2cnn driver) and the driver calls
torch.set_num_threads(1).
"""
from __future__ import annotations

import os

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
for _v in THREAD_VARS:
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# cupysteer is imported from CUPYSTEER_SRC (a source tree, e.g. an exported commit), else from
# this checkout; the children inherit the variable.
SRC = os.path.abspath(os.environ.get("CUPYSTEER_SRC") or ROOT)
if SRC not in sys.path:
    sys.path.insert(0, SRC)

import numpy as np  # noqa: E402

DRIVER = os.path.join(HERE, "_e2cnn_driver.py")
FIRST_FILTER = os.path.join(HERE, "_first_filter.py")
THREADS_REPORTED: list = []  # thread counts measured besides 1 (set from --threads in main)

# name, group kind, N (SO2: maximum frequency), fields, multiplicity, kernel size
LAYERS = [
    {"name": "C8", "group": "C", "N": 8, "fields": "regular", "mult": 16, "kernel_size": 5},
    {"name": "C16", "group": "C", "N": 16, "fields": "regular", "mult": 8, "kernel_size": 7},
    {"name": "D4", "group": "D", "N": 4, "fields": "regular", "mult": 24, "kernel_size": 5},
    {"name": "SO2", "group": "SO2", "N": 3, "fields": "irreps:3", "mult": 8, "kernel_size": 7},
    {"name": "C8w", "group": "C", "N": 8, "fields": "regular", "mult": 64, "kernel_size": 7},
]
DESCRIPTION = {
    "C8": "C8 regular x16, 5x5",
    "C16": "C16 regular x8, 7x7",
    "D4": "D4 regular x24, 5x5",
    "SO2": "SO(2) irreps 0-3 x8, 7x7",
    "C8w": "C8 regular x64, 7x7 (wide)",
}
TARGETS = {  # e2cnn time / cupysteer time (bytes: e2cnn / cupysteer), and expand / copy floor
    "cold_build": 10.0, "init": 50.0, "expand": 3.0, "expand_adjoint": 3.0,
    "stored_bytes": 20.0, "copy_floor": 4.0,
}
ABSOLUTE = {"import": 0.100, "first_filter": 0.100}  # seconds


# ---- cupysteer side ------------------------------------------------------------------------
def build_cupysteer(spec):
    import cupysteer as cs
    g = spec["group"]
    if g == "C":
        G = cs.CyclicGroup(spec["N"])
    elif g == "D":
        G = cs.DihedralGroup(spec["N"])
    elif g == "SO2":
        G = cs.SO2(spec["N"])
    else:
        raise ValueError(g)
    if spec["fields"] == "regular":
        reps = [G.regular_representation] * spec["mult"]
    else:
        K = int(spec["fields"].split(":")[1])
        reps = [G.irrep(k).representation for k in range(K + 1)] * spec["mult"]
    t = cs.FieldType(G, reps)
    return cs.LayerBasis(t, t, kernel_size=spec["kernel_size"])


def _cold_child(name):
    """Runs in a fresh interpreter: import (timed apart), first build, init and expand on that
    first layer, then a second build."""
    spec = next(s for s in LAYERS if s["name"] == name)
    c = clock()
    import cupysteer  # noqa: F401
    t_import, _ = since(c)
    out = {"import": t_import}
    c = clock()
    L = build_cupysteer(spec)
    out["cold_build"], out["cold_build_cpu"] = since(c)
    c = clock()
    w = L.init_weights(np.random.default_rng(0), dtype=np.float32)
    out["init"], out["init_cpu"] = since(c)
    c = clock()
    L.expand(w)
    out["first_expand"], out["first_expand_cpu"] = since(c)
    c = clock()
    build_cupysteer(spec)
    out["second_build"], _ = since(c)
    print(json.dumps(out))


def clock():
    return time.perf_counter(), time.process_time()


def since(c):
    """(wall seconds, process CPU seconds) since clock() returned c."""
    return time.perf_counter() - c[0], time.process_time() - c[1]


def median_time(fn, min_time, max_repeats, min_repeats=5, stats=None, key=None):
    """Median wall time of repeated calls (one warm-up call excluded), and the number of calls;
    with ``stats``, also stats[key + '_min'] (fastest call) and stats[key + '_cpu'] (median
    process CPU time, which does not count time spent descheduled on a loaded machine)."""
    fn()  # warm-up, excluded
    ts, cs = [], []
    start = time.perf_counter()
    while len(ts) < min_repeats or (len(ts) < max_repeats
                                    and time.perf_counter() - start < min_time):
        c = clock()
        fn()
        t, cpu = since(c)
        ts.append(t)
        cs.append(cpu)
    if stats is not None:
        stats[key + "_min"] = min(ts)
        stats[key + "_cpu"] = statistics.median(cs)
    return statistics.median(ts), len(ts)


def cold_build_cupysteer(name, repeats):
    env = os.environ.copy()
    env.pop("CUPYSTEER_CACHE_DIR", None)  # no disk cache: the cold build must build
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--cold-child", name],
                             check=True, capture_output=True, text=True, env=env)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
    return {"cold_build": med("cold_build"), "cold_build_cpu": med("cold_build_cpu"),
            "cold_build_runs": [r["cold_build"] for r in runs],
            "import": med("import"), "init": med("init"), "init_cpu": med("init_cpu"),
            "init_repeats": len(runs), "first_expand": med("first_expand"),
            "second_build_cold_process": med("second_build"),
            "cold_ready": statistics.median(r["cold_build"] + r["first_expand"] for r in runs),
            "cold_ready_cpu": statistics.median(r["cold_build_cpu"] + r["first_expand_cpu"]
                                                for r in runs)}


def bench_cupysteer(spec, args, tmp):
    res = {"name": spec["name"]}
    res.update(cold_build_cupysteer(spec["name"], args.cold_repeats))
    L = build_cupysteer(spec)  # warm process: first build here is not cold (imports done)
    ts, cs = [], []
    for _ in range(max(3, args.cold_repeats)):
        c = clock()
        L = build_cupysteer(spec)
        t, cpu = since(c)
        ts.append(t)
        cs.append(cpu)
    res["cached_build"], res["cached_build_cpu"] = statistics.median(ts), statistics.median(cs)
    res["dim"] = int(L.dim)
    res["filter_shape"] = list(L.shape)
    # init (first call on a layer built cold) and the first expand (which builds the lazily
    # made expander) come from the cold child processes; init_warm: repeated calls here.
    res["init_warm"], _ = median_time(
        lambda: L.init_weights(np.random.default_rng(0), dtype=np.float32),
        args.min_time, args.max_repeats)
    w = L.init_weights(np.random.default_rng(0), dtype=np.float32)
    res["expand"], res["expand_repeats"] = median_time(lambda: L.expand(w), args.min_time,
                                                       args.max_repeats, stats=res, key="expand")
    G = np.random.default_rng(1).standard_normal(L.shape).astype(np.float32)

    def fwd_adj():
        L.expand(w)
        L.adjoint(G)

    res["expand_adjoint"], res["expand_adjoint_repeats"] = median_time(
        fwd_adj, args.min_time, args.max_repeats, stats=res, key="expand_adjoint")
    for t in args.threads:
        with blas_limit(t):
            for key, fn in (("expand", lambda: L.expand(w)), ("expand_adjoint", fwd_adj)):
                res[f"{key}_t{t}"], _ = median_time(fn, args.min_time, args.max_repeats,
                                                    stats=res, key=f"{key}_t{t}")
    res["stored_bytes"] = int(L.stored_bytes)
    res["dense_bytes"] = int(getattr(L, "dense_bytes", 0)) or None
    src = np.random.default_rng(2).standard_normal(int(np.prod(L.shape))).astype(np.float32)
    dst = np.empty_like(src)
    res["copy_floor"], _ = median_time(lambda: np.copyto(dst, src), args.min_time,
                                       args.max_repeats * 4, stats=res, key="copy_floor")
    wpath = os.path.join(tmp, f"{spec['name']}_w.npy")
    np.save(wpath, w)
    res["_weights_npy"] = wpath
    res["_filter"] = L.expand(w)
    return res


def blas_limit(n):
    """NumPy's BLAS at ``n`` threads inside (threadpoolctl)."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(n, user_api="blas")


def blas_kernel():
    """The BLAS libraries NumPy loaded: (library, threads, kernel architecture)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return [(i.get("internal_api"), i.get("num_threads"), i.get("architecture"))
            for i in threadpool_info()]


# ---- import and time to the first filter ---------------------------------------------------
def first_filter(repeats):
    """Medians over fresh processes, single-thread environment and default threads."""
    import compileall
    compileall.compile_dir(os.path.join(SRC, "cupysteer"), quiet=1)  # as a wheel installs it
    env1 = os.environ.copy()
    env1.pop("CUPYSTEER_CACHE_DIR", None)
    envs = {"1 thread": env1, "default threads": {k: v for k, v in env1.items()
                                                   if k not in THREAD_VARS}}
    out = {}
    for label, env in envs.items():
        runs = []
        for _ in range(repeats):
            r = subprocess.run([sys.executable, FIRST_FILTER], check=True, capture_output=True,
                               text=True, env=env)
            runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        out[label] = {k: statistics.median(r[k] for r in runs) for k in runs[0]
                      if k != "scipy_imported"}
        out[label]["min_first_filter"] = min(r["first_filter"] for r in runs)
        out[label]["scipy_imported"] = any(r["scipy_imported"] for r in runs)
    return out


def print_first_filter(ff):
    print("| environment | import numpy | import cupysteer | build C8 | first expand | "
          "first filter (all four) | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for label, r in ff.items():
        print(f"| {label} | {fmt_t(r['numpy'])} | {fmt_t(r['import'])} | {fmt_t(r['build'])} | "
              f"{fmt_t(r['first_expand'])} | {fmt_t(r['first_filter'])} (min "
              f"{fmt_t(r['min_first_filter'])}) | import <= 100 ms: "
              f"{'yes' if r['import'] <= ABSOLUTE['import'] else 'NO'}; first filter <= 100 ms: "
              f"{'yes' if r['first_filter'] <= ABSOLUTE['first_filter'] else 'NO'} |")
    if any(r["scipy_imported"] for r in ff.values()):
        print("note: scipy was imported by `import cupysteer` + build + expand")


# ---- e2cnn side ----------------------------------------------------------------------------
def run_driver(python, spec_obj):
    out = subprocess.run([python, DRIVER, "-"], input=json.dumps(spec_obj), check=False,
                         capture_output=True, text=True, env=os.environ.copy())
    if out.returncode != 0:
        raise RuntimeError(f"e2cnn driver failed (rc {out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_e2cnn(python, spec, weights_npy, filter_npy, args):
    """One driver process per layer (so its first build is cold), plus cold-build-only ones."""
    main = run_driver(python, {"layers": [dict(spec, weights_npy=weights_npy,
                                                filter_npy=filter_npy)],
                               "min_time": args.min_time, "max_repeats": args.max_repeats,
                               "init_repeats": args.init_repeats, "threads": args.threads})
    res = main["layers"][0]
    colds = [res["cold_build"]]
    for _ in range(args.cold_repeats - 1):
        r = run_driver(python, {"layers": [dict(spec, cold_only=True)]})
        colds.append(r["layers"][0]["cold_build"])
    res["cold_build_runs"] = colds
    res["cold_build"] = statistics.median(colds)
    res["import"] = main["import"]
    res["_meta"] = {k: main[k] for k in ("versions", "threads")}
    return res


def source_state(pkg_dir):
    """git HEAD of the checkout, whether the package differs from it, and a digest of the
    package's .py files (identifies the exact code that was measured)."""
    import hashlib
    h = hashlib.sha256()
    for dirpath, dirnames, files in sorted(os.walk(pkg_dir)):
        dirnames.sort()
        for f in sorted(files):
            if f.endswith(".py"):
                with open(os.path.join(dirpath, f), "rb") as fh:
                    h.update(f.encode() + fh.read())
    state = {"digest": h.hexdigest()[:12], "head": None, "dirty": None}
    try:
        run = lambda *a: subprocess.run(["git", "-C", pkg_dir, *a], capture_output=True,  # noqa
                                        text=True, check=True).stdout.strip()
        state["head"] = run("rev-parse", "--short", "HEAD")
        state["dirty"] = bool(run("status", "--porcelain", "--", "."))
    except (OSError, subprocess.CalledProcessError):
        pass
    return state


# ---- report --------------------------------------------------------------------------------
def fmt_t(t):
    if t is None:
        return "-"
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.2f} ms"
    return f"{t * 1e6:.0f} us"


def fmt_b(b):
    if b is None:
        return "-"
    for unit, s in (("MB", 1e6), ("kB", 1e3)):
        if b >= s:
            return f"{b / s:.1f} {unit}"
    return f"{b} B"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_r(r):
    return "-" if r is None else (f"{r:.1f}x" if r >= 10 else f"{r:.2f}x")


def make_table(results, clock_suffix=""):
    """Markdown table; clock_suffix "_cpu" takes the process-CPU-time variants of the times."""
    sfx = clock_suffix
    rows = []
    head = ["layer", "quantity", "cupysteer", "e2cnn", "e2cnn/cupysteer", "target", "met"]
    quantities = [("cold_build", "cold build"),
                  ("cold_ready", "cold build + 1st expand"), ("cached_build", "cached build"),
                  ("init", "init"), ("expand", "expand"), ("expand_adjoint", "expand+adjoint")]
    for t in THREADS_REPORTED:
        quantities += [(f"expand_t{t}", f"expand, {t} threads"),
                       (f"expand_adjoint_t{t}", f"expand+adjoint, {t} threads")]
    quantities.append(("stored_bytes", "stored bytes"))
    for r in results:
        cs, e2 = r["cupysteer"], r.get("e2cnn")
        regular = r["spec"]["fields"] == "regular"
        for key, label in quantities:
            k = key if key == "stored_bytes" else key + sfx
            if k not in cs:
                continue
            a = cs.get(k)
            # e2cnn's build already samples everything an expansion needs
            b = (e2 or {}).get("cold_build" + sfx if key == "cold_ready" else k)
            rr = ratio(b, a)
            tgt = TARGETS.get(key)
            if key == "stored_bytes" and not regular:
                tgt = None
            met = "-" if tgt is None or rr is None else ("yes" if rr >= tgt else "NO")
            f = fmt_b if key == "stored_bytes" else fmt_t
            rows.append([r["name"], label, f(a), f(b), fmt_r(rr),
                         "-" if tgt is None else f">= {tgt:g}x", met])
        fl = ratio(cs["expand" + sfx], cs["copy_floor" + sfx])
        rows.append([r["name"], "copy floor (expand/copy)", fmt_t(cs["copy_floor" + sfx]),
                     fmt_t((e2 or {}).get("expand" + sfx)) + (
                         f" ({fmt_r(ratio(e2['expand' + sfx], cs['copy_floor' + sfx]))} "
                         f"of floor)" if e2 else ""),
                     f"cupysteer {fmt_r(fl)}", f"<= {TARGETS['copy_floor']:g}x",
                     "yes" if fl <= TARGETS["copy_floor"] else "NO"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in rows]
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--e2cnn-python", default=os.environ.get("E2CNN_PYTHON"),
                    help="python of the e2cnn venv (benchmarks/e2cnn_env.sh); env E2CNN_PYTHON")
    ap.add_argument("--json", help="write all results to this JSON file")
    ap.add_argument("--layers", default=",".join(s["name"] for s in LAYERS),
                    help="comma-separated subset of " + ",".join(s["name"] for s in LAYERS))
    ap.add_argument("--cold-repeats", type=int, default=3,
                    help="fresh processes per layer and library for the cold build (default 3)")
    ap.add_argument("--min-time", type=float, default=0.3,
                    help="keep repeating a timed call until this many seconds (default 0.3)")
    ap.add_argument("--max-repeats", type=int, default=50)
    ap.add_argument("--init-repeats", type=int, default=3, help="e2cnn init repeats (slow)")
    ap.add_argument("--quick", action="store_true", help="1 cold process, short timings")
    ap.add_argument("--threads", default="2", help="comma-separated thread counts measured "
                    "again for expand and expand+adjoint (default 2; '' for none)")
    ap.add_argument("--first-filter-repeats", type=int, default=5,
                    help="fresh processes for the import / first-filter timings (0: skip)")
    ap.add_argument("--cupysteer-src", help="import cupysteer from this source tree instead of "
                    "the checkout (env CUPYSTEER_SRC)")
    ap.add_argument("--cold-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cupysteer_src and os.path.abspath(args.cupysteer_src) != SRC:
        os.environ["CUPYSTEER_SRC"] = os.path.abspath(args.cupysteer_src)
        return subprocess.call([sys.executable, os.path.abspath(__file__)] +
                               list(sys.argv[1:] if argv is None else argv))
    if args.cold_child:
        _cold_child(args.cold_child)
        return 0
    args.threads = [int(t) for t in args.threads.split(",") if t.strip()]
    THREADS_REPORTED[:] = args.threads
    if args.quick:
        args.cold_repeats, args.min_time, args.max_repeats, args.init_repeats = 1, 0.05, 10, 1
    names = args.layers.split(",")
    specs = [s for s in LAYERS if s["name"] in names]

    import cupysteer
    t_start = time.perf_counter()
    src_state = source_state(os.path.dirname(cupysteer.__file__))
    print(f"cupysteer {cupysteer.__version__} from {os.path.dirname(cupysteer.__file__)} "
          f"(git HEAD {src_state['head']}, package "
          f"{'modified' if src_state['dirty'] else 'unmodified'} vs HEAD, sources digest "
          f"{src_state['digest']})")
    print(f"numpy {np.__version__}, python "
          f"{sys.version.split()[0]}; threads: " +
          ", ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS) + " (e2cnn: also "
          "torch.set_num_threads(1))")
    print(f"BLAS (threadpoolctl): {blas_kernel()}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE')}, OPENBLAS_L2_SIZE="
          f"{os.environ.get('OPENBLAS_L2_SIZE')}")
    load_start = os.getloadavg()
    print(f"load average at start: {load_start[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    if not args.e2cnn_python:
        print("e2cnn: skipped (no e2cnn environment; run benchmarks/e2cnn_env.sh)")
    results = []
    with tempfile.TemporaryDirectory(prefix="cupysteer-bench-") as tmp:
        for spec in specs:
            r = {"name": spec["name"], "description": DESCRIPTION[spec["name"]], "spec": spec}
            cs = bench_cupysteer(spec, args, tmp)
            r["cupysteer"] = cs
            if args.e2cnn_python:
                fpath = os.path.join(tmp, f"{spec['name']}_f_e2cnn.npy")
                e2 = bench_e2cnn(args.e2cnn_python, spec, cs["_weights_npy"], fpath, args)
                if e2["dim"] != cs["dim"]:
                    raise RuntimeError(f"{spec['name']}: dim {cs['dim']} (cupysteer) vs "
                                       f"{e2['dim']} (e2cnn)")
                fe = np.load(fpath)
                fc = cs["_filter"]
                r["check"] = {"max_abs_diff": float(np.abs(fe - fc).max()),
                              "max_abs_filter": float(np.abs(fe).max())}
                r["e2cnn"] = e2
            cs.pop("_filter")
            cs.pop("_weights_npy")
            results.append(r)
            msg = f"{spec['name']}: done ({time.perf_counter() - t_start:.0f} s)"
            if "check" in r:
                msg += (f"; filter check e2cnn vs cupysteer (same weights, float32): max abs diff "
                        f"{r['check']['max_abs_diff']:.2e} (max |filter| "
                        f"{r['check']['max_abs_filter']:.2f})")
            print(msg, flush=True)

    ff = first_filter(args.first_filter_repeats) if args.first_filter_repeats else None
    print()
    print("Speed-ups are e2cnn time / cupysteer time (stored bytes: e2cnn / cupysteer); "
          "medians, single thread.")
    print(make_table(results))
    print()
    print("The same with process CPU time (time.process_time) instead of wall time: robust to "
          "time spent descheduled when the machine is loaded (single thread, so equal to wall "
          "time on an idle machine):")
    print(make_table(results, "_cpu"))
    print()
    for r in results:
        cs, e2 = r["cupysteer"], r.get("e2cnn")
        line = (f"{r['name']} ({r['description']}): dim {cs['dim']}, filter "
                f"{tuple(cs['filter_shape'])}, cupysteer import {fmt_t(cs['import'])}, "
                f"first expand {fmt_t(cs['first_expand'])}, warm init {fmt_t(cs['init_warm'])}, "
                f"cold builds {[round(x, 4) for x in cs['cold_build_runs']]} s")
        if e2:
            line += (f"; e2cnn import {fmt_t(e2['import'])}, cold builds "
                     f"{[round(x, 4) for x in e2['cold_build_runs']]} s, sampled blocks "
                     f"{e2['num_blocks']}, all buffers {fmt_b(e2['buffer_bytes'])}")
        print(line)
    if ff:
        print()
        print("Import and time to the first filter (fresh processes, medians; first filter = "
              "import numpy + import cupysteer + build + first expand of C8 regular x16 5x5):")
        print_first_filter(ff)
    if any("check" in r for r in results):
        ok = all(r["check"]["max_abs_diff"] <= 1e-4 * max(1.0, r["check"]["max_abs_filter"])
                 for r in results if "check" in r)
        print("filter check (e2cnn vs cupysteer, same weights): " + ("PASS" if ok else "FAIL"))
    total = time.perf_counter() - t_start
    load_end = os.getloadavg()
    print(f"total benchmark time {total:.0f} s; load average at end: {load_end[0]:.2f} (1 min)")
    if args.json:
        metas = [r["e2cnn"].pop("_meta") for r in results if "e2cnn" in r]
        with open(args.json, "w") as fh:
            json.dump({"threads": {v: os.environ[v] for v in THREAD_VARS},
                       "numpy": np.__version__, "cupysteer": cupysteer.__version__,
                       "cupysteer_path": os.path.dirname(cupysteer.__file__),
                       "cupysteer_source": src_state,
                       "python": sys.version.split()[0],
                       "e2cnn_meta": metas[0] if metas else None,
                       "total_seconds": total, "load_average": [load_start, load_end],
                       "targets": TARGETS, "absolute_targets": ABSOLUTE,
                       "blas": blas_kernel(), "first_filter": ff, "layers": results},
                      fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
