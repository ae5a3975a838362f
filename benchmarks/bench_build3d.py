"""Build-cost benchmark of cupysteer's 3D kernel bases against the baseline escnn 1.0.11.

    python3 benchmarks/bench_build3d.py [--configs a,b] [--repeat N] [--json out.json]
                                        [--no-escnn | --escnn-python PATH] [--no-cupysteer]

Both libraries are measured in the same run, one fresh process per measurement, and the table
gives their ratios. escnn runs in its own virtual environment (NumPy 1.26, torch 2.13 CPU): PATH
is its python (also env ESCNN_PYTHON; default /tmp/escnn-venv/bin/python, made by
``benchmarks/escnn_env.sh`` when missing). cupysteer runs on this python.

Layers: the named configurations of ``benchmarks/_escnn_driver.py`` (CONFIGS; in = out field
type, R3Conv defaults otherwise). Quantities (seconds, time.perf_counter; ``*_cpu`` process CPU
time, which does not count time spent descheduled on a loaded machine):

* cold build: gspace + field types + basis, first construction in a fresh process (library import
  excluded), nothing on disk. cupysteer: ``R3ConvBasis(in, out, k)`` (``cache=False`` when the
  constructor takes it) with CUPYSTEER_CACHE_DIR set to a fresh empty directory, median over
  ``--cold-runs`` processes. escnn: ``R3Conv(…, initialize=False)`` with escnn's disk cache
  (``escnn/group/_cache`` inside the installed package) emptied first;
* escnn cached build: the same with escnn's disk cache warm (the cold run of the same config just
  filled it): what an escnn user pays on every later start;
* stored bytes: cupysteer ``stored_bytes`` vs escnn's padded basis (its ``sampled_basis``
  buffers); cupysteer's ``padded_bytes`` (the size of escnn's layout) is checked against it;
* expand: weights -> float32 filter (C_out, C_in, k, k, k), median of ``--repeat`` calls (one
  warm-up excluded), one thread: cupysteer ``R3ConvBasis.expand`` (NumPy, OPENBLAS/OMP/MKL
  threads 1), escnn ``R3Conv.expand_parameters()`` under no_grad with torch.set_num_threads(1).

Ratios are escnn / cupysteer (larger = cupysteer better).

Cost (2-core machine): the escnn side of all configs takes ~11 minutes (cold fullocta_regular_k3
alone 1-3 minutes) and escnn's ico_regular_k5 process peaks at ~11 GiB resident memory (its
float32 padded basis alone is 1.9 GiB); leave that config out on a small machine.
"""
from __future__ import annotations

import os

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
for _v in THREAD_VARS:
    os.environ[_v] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SRC = os.path.abspath(os.environ.get("CUPYSTEER_SRC") or ROOT)
DRIVER = os.path.join(HERE, "_escnn_driver.py")
ENV_SCRIPT = os.path.join(HERE, "escnn_env.sh")
DEFAULT_ESCNN_PYTHON = "/tmp/escnn-venv/bin/python"


def _load_table():
    """CONFIGS/DESCRIPTION from the driver (the driver imports escnn only when it measures)."""
    spec = importlib.util.spec_from_file_location("_escnn_driver_table", DRIVER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.CONFIGS, mod.DESCRIPTION


CONFIGS, DESCRIPTION = _load_table()
DEFAULT_CONFIGS = list(CONFIGS)
COMPAT_NAMES = ("rot3dOnR3", "flipRot3dOnR3", "octaOnR3", "fullOctaOnR3", "icoOnR3",
                "fullIcoOnR3", "rot2dOnR3", "FieldType", "R3ConvBasis")


def clock():
    return time.perf_counter(), time.process_time()


def since(c):
    return time.perf_counter() - c[0], time.process_time() - c[1]


# ---- cupysteer side ------------------------------------------------------------------------
def cupysteer_api():
    """(module, None) if the 3D compatibility API is importable, else (None, reason)."""
    if SRC not in sys.path:
        sys.path.insert(0, SRC)
    try:
        import cupysteer.compat.escnn as ce
    except Exception as e:  # noqa: BLE001 - any import failure means "not there yet"
        return None, f"cupysteer.compat.escnn not importable ({type(e).__name__}: {e})"
    missing = [n for n in COMPAT_NAMES if not hasattr(ce, n)]
    if missing:
        return None, f"cupysteer.compat.escnn lacks {', '.join(missing)}"
    return ce, None


def cupysteer_gspace(ce, spec):
    g = spec["group"]
    if g == "so3":
        return ce.rot3dOnR3(maximum_frequency=int(spec.get("maximum_frequency", 2)))
    if g == "o3":
        return ce.flipRot3dOnR3(maximum_frequency=int(spec.get("maximum_frequency", 2)))
    if g == "c4z":
        return ce.rot2dOnR3(4)
    return {"octa": ce.octaOnR3, "fullocta": ce.fullOctaOnR3, "ico": ce.icoOnR3,
            "fullico": ce.fullIcoOnR3}[g]()


def cupysteer_field_types(ce, gs, spec):
    if spec["fields"] == "regular":
        reps = [gs.regular_repr] * int(spec["mult"])
    else:
        reps = [gs.irrep(*i) for i in spec["fields"]] * int(spec["mult"])
    t = ce.FieldType(gs, reps)
    return t, t


def cupysteer_build(ce, spec):
    """(gspace seconds, basis seconds, basis), with cache=False when the constructor takes it."""
    import inspect
    c = clock()
    gs = cupysteer_gspace(ce, spec)
    tin, tout = cupysteer_field_types(ce, gs, spec)
    t_gs = since(c)
    kw = {}
    try:
        if "cache" in inspect.signature(ce.R3ConvBasis).parameters:
            kw["cache"] = False
    except (TypeError, ValueError):
        pass
    c = clock()
    B = ce.R3ConvBasis(tin, tout, int(spec["kernel_size"]), **kw)
    return t_gs, since(c), B


def cupysteer_child(name, repeat, min_time):
    """Runs in a fresh interpreter (CUPYSTEER_CACHE_DIR: a fresh empty directory)."""
    import numpy as np
    spec = CONFIGS[name]
    out = {"name": name, "cache_dir": os.environ.get("CUPYSTEER_CACHE_DIR")}
    c = clock()
    ce, reason = cupysteer_api()
    out["import"], _ = since(c)
    if ce is None:
        raise RuntimeError(reason)
    (out["gspace"], out["gspace_cpu"]), (out["build"], out["build_cpu"]), B = \
        cupysteer_build(ce, spec)
    out["cold_build"] = out["gspace"] + out["build"]
    out["cold_build_cpu"] = out["gspace_cpu"] + out["build_cpu"]
    out["dim"] = int(B.dim)
    out["stored_bytes"] = int(B.stored_bytes)
    out["padded_bytes"] = int(B.padded_bytes)
    w = np.random.default_rng(0).standard_normal(B.dim).astype(np.float32)
    c = clock()
    f = B.expand(w)
    out["expand_first"], _ = since(c)
    out["filter_shape"] = [int(s) for s in np.shape(f)]
    if repeat > 0:
        ts, cs = [], []
        start = time.perf_counter()
        while len(ts) < repeat or (time.perf_counter() - start < min_time
                                   and len(ts) < 50 * repeat):
            c = clock()
            B.expand(w)
            t, cpu = since(c)
            ts.append(t)
            cs.append(cpu)
        out["expand"], out["expand_cpu"] = statistics.median(ts), statistics.median(cs)
        out["expand_min"], out["expand_repeats"] = min(ts), len(ts)
    c = clock()
    cupysteer_build(ce, spec)
    out["second_build"], _ = since(c)
    import resource
    out["max_rss"] = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    import cupysteer
    out["version"] = getattr(cupysteer, "__version__", None)
    print(json.dumps(out))


def bench_cupysteer(name, args):
    """Median over args.cold_runs fresh processes, each with its own empty cache directory."""
    runs, walls = [], []
    for _ in range(args.cold_runs):
        with tempfile.TemporaryDirectory(prefix="cupysteer-cache-") as cdir:
            env = os.environ.copy()
            env["CUPYSTEER_CACHE_DIR"] = cdir
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--cupysteer-child",
                                name, "--repeat", str(args.repeat), "--min-time",
                                str(args.min_time)],
                               capture_output=True, text=True, env=env)
            walls.append(time.perf_counter() - t0)
        if p.returncode != 0:
            return {"error": (p.stderr.strip().splitlines() or ["?"])[-1][:300],
                    "stderr_tail": p.stderr[-3000:]}
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    res = dict(runs[0])
    for k in ("cold_build", "cold_build_cpu", "gspace", "build", "import", "expand",
              "expand_cpu", "expand_first", "second_build"):
        if all(k in r for r in runs):
            res[k] = statistics.median(r[k] for r in runs)
    res["cold_build_runs"] = [r["cold_build"] for r in runs]
    res["process_wall_runs"] = walls
    return res


# ---- escnn side ----------------------------------------------------------------------------
def find_escnn_python(args):
    """The escnn venv's python: --escnn-python / ESCNN_PYTHON / the default venv, made with
    escnn_env.sh when it does not exist yet. (None, reason) when that fails."""
    py = args.escnn_python or os.environ.get("ESCNN_PYTHON")
    if py:
        return py, None
    if os.path.exists(DEFAULT_ESCNN_PYTHON):
        return DEFAULT_ESCNN_PYTHON, None
    print("escnn venv missing: running benchmarks/escnn_env.sh (a few minutes)", flush=True)
    p = subprocess.run(["bash", ENV_SCRIPT], capture_output=True, text=True)
    if p.returncode != 0:
        return None, "escnn_env.sh failed: " + p.stderr.strip()[-500:]
    return p.stdout.strip().splitlines()[-1], None


def run_escnn(python, name, mode, args):
    cmd = [python, DRIVER, name, "--mode", mode, "--repeat", str(args.repeat),
           "--min-time", str(args.min_time)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.escnn_timeout)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"escnn driver failed ({name}, {mode}, rc {p.returncode}):\n"
                           f"{p.stderr[-3000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["process_wall"] = wall
    res["load_average"] = [load, os.getloadavg()[0]]  # 1-min load before / after the process
    res["cold_build"] = res["gspace"] + res["build"]
    res["cold_build_cpu"] = res["gspace_cpu"] + res["build_cpu"]
    res["stderr_lines"] = len(p.stderr.splitlines())
    return res


def bench_escnn(python, name, args):
    out = {"cold": run_escnn(python, name, "cold", args)}
    if not args.escnn_cold_only:
        out["cached"] = run_escnn(python, name, "cached", args)
    return out


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
    for unit, s in (("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if b >= s:
            return f"{b / s:.2f} {unit}"
    return f"{b} B"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_r(r):
    return "-" if r is None else (f"{r:.0f}x" if r >= 100 else
                                  f"{r:.1f}x" if r >= 10 else f"{r:.2f}x")


def summarize(r, sfx=""):
    """The table row's numbers for one config (sfx "_cpu": process CPU times)."""
    cs = r.get("cupysteer") or {}
    es = r.get("escnn") or {}
    ec, eh = es.get("cold") or {}, es.get("cached") or {}
    get = lambda d, k: d.get(k + sfx, d.get(k)) if k + sfx in d or not sfx else None  # noqa
    row = {
        "cs_cold": get(cs, "cold_build"), "es_cold": get(ec, "cold_build"),
        "es_cached": get(eh, "cold_build"), "cs_bytes": cs.get("stored_bytes"),
        "es_bytes": ec.get("padded_bytes"), "cs_expand": get(cs, "expand"),
        "es_expand": get(eh, "expand") if eh.get("expand") is not None else get(ec, "expand"),
    }
    row["r_cold"] = ratio(row["es_cold"], row["cs_cold"])
    row["r_cached"] = ratio(row["es_cached"], row["cs_cold"])
    row["r_bytes"] = ratio(row["es_bytes"], row["cs_bytes"])
    row["r_expand"] = ratio(row["es_expand"], row["cs_expand"])
    return row


def make_table(results, sfx=""):
    head = ["config", "weights", "cupysteer cold", "escnn cold", "escnn cached",
            "cold ratio", "cached ratio", "cupysteer bytes", "escnn padded", "bytes ratio",
            "cupysteer expand", "escnn expand", "expand ratio"]
    rows = []
    for r in results:
        s = summarize(r, sfx)
        dim = (r.get("cupysteer") or {}).get("dim") or \
            ((r.get("escnn") or {}).get("cold") or {}).get("dim")
        note = "" if "error" not in (r.get("cupysteer") or {}) else " (cupysteer failed)"
        rows.append([r["name"] + note, f"{dim:,}" if dim else "-",
                     fmt_t(s["cs_cold"]), fmt_t(s["es_cold"]), fmt_t(s["es_cached"]),
                     fmt_r(s["r_cold"]), fmt_r(s["r_cached"]), fmt_b(s["cs_bytes"]),
                     fmt_b(s["es_bytes"]), fmt_r(s["r_bytes"]), fmt_t(s["cs_expand"]),
                     fmt_t(s["es_expand"]), fmt_r(s["r_expand"])])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(row) for row in rows])


def make_escnn_table(results):
    """escnn's own figures in the layout of the reference table (steerable-bases-3d.md §9)."""
    head = ["config", "C_in->C_out", "weights", "pairs", "padded basis",
            "cold: gspace / build / he_init (s)", "cached: gspace / build (s)",
            "cold gspace+build CPU", "2nd build", "process wall cold / cached",
            "expand (1 thread)", "peak RSS", "load"]
    rows = []
    for r in results:
        es = r.get("escnn") or {}
        c, h = es.get("cold"), es.get("cached") or {}
        if not c:
            continue
        rows.append([r["name"], f"{c['c_in']}->{c['c_out']}", f"{c['dim']:,}", c["pairs"],
                     f"{c['padded_bytes'] / 2 ** 20:.2f} MiB",
                     f"{c['gspace']:.2f} / {c['build']:.2f} / {c['he_init']:.3f}",
                     f"{h['gspace']:.2f} / {h['build']:.2f}" if h else "-",
                     f"{c['cold_build_cpu']:.2f} s",
                     f"{c['second_build']:.3f} s",
                     f"{c['process_wall']:.1f} / {h['process_wall']:.1f} s" if h else
                     f"{c['process_wall']:.1f} / - s",
                     fmt_t(h.get("expand", c.get("expand"))),
                     fmt_b(max(c.get("max_rss", 0), h.get("max_rss", 0))),
                     "/".join(f"{x:.1f}" for x in c.get("load_average", [])[:1]
                              + (h.get("load_average", [])[:1] if h else []))])
    if not rows:
        return ""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(row) for row in rows])


def source_state(pkg_dir):
    """git HEAD of the checkout and whether the package differs from it (the measured code)."""
    state = {"head": None, "dirty": None}
    try:
        run = lambda *a: subprocess.run(["git", "-C", pkg_dir, *a], capture_output=True,  # noqa
                                        text=True, check=True).stdout.strip()
        state["head"] = run("rev-parse", "--short", "HEAD")
        state["dirty"] = bool(run("status", "--porcelain", "--", "."))
    except (OSError, subprocess.CalledProcessError):
        pass
    return state


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo") as fh:
            for ln in fh:
                if ln.startswith("model name"):
                    model = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_total": mem,
            "platform": platform.platform(), "python": sys.version.split()[0],
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                    help="comma-separated subset of " + ",".join(CONFIGS))
    ap.add_argument("--repeat", type=int, default=5,
                    help="expand calls timed per process (median; default 5)")
    ap.add_argument("--min-time", type=float, default=0.3,
                    help="keep timing expand until this many seconds (default 0.3)")
    ap.add_argument("--cold-runs", type=int, default=3,
                    help="fresh cupysteer processes per config (median; default 3)")
    ap.add_argument("--no-escnn", action="store_true", help="measure cupysteer only")
    ap.add_argument("--no-cupysteer", action="store_true", help="measure escnn only")
    ap.add_argument("--escnn-python", help="python of the escnn venv (env ESCNN_PYTHON; "
                    f"default {DEFAULT_ESCNN_PYTHON}, made by escnn_env.sh when missing)")
    ap.add_argument("--escnn-cold-only", action="store_true",
                    help="skip escnn's cached-disk-cache run")
    ap.add_argument("--escnn-timeout", type=float, default=1800,
                    help="seconds allowed for one escnn process (default 1800)")
    ap.add_argument("--json", help="write all results to this JSON file")
    ap.add_argument("--cupysteer-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        ap.error(f"unknown config(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    if args.repeat < 0 or args.cold_runs < 1:
        ap.error("--repeat must be >= 0 and --cold-runs >= 1")
    if args.no_escnn and args.no_cupysteer:
        ap.error("--no-escnn and --no-cupysteer leave nothing to measure")
    args.config_names = names
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.cupysteer_child:
        cupysteer_child(args.cupysteer_child, args.repeat, args.min_time)
        return 0
    info = machine_info()
    load_start = os.getloadavg()
    print(f"machine: {info['nproc']} CPUs, {info['cpu_model']}, {info['date']}; load average "
          f"at start {load_start[0]:.2f} (1 min)")
    print("threads: " + ", ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS)
          + " (escnn: also torch.set_num_threads(1))")

    cs_reason = "--no-cupysteer" if args.no_cupysteer else None
    ce, cs_source = None, None
    if cs_reason is None:
        ce, cs_reason = cupysteer_api()
    if ce is None:
        print(f"cupysteer: skipped ({cs_reason})")
    else:
        import cupysteer
        cs_source = source_state(os.path.dirname(cupysteer.__file__))
        print(f"cupysteer {getattr(cupysteer, '__version__', '?')} from "
              f"{os.path.dirname(cupysteer.__file__)} (git HEAD {cs_source['head']}, package "
              f"{'modified' if cs_source['dirty'] else 'unmodified'} vs HEAD)")
    es_python, es_reason = (None, "--no-escnn") if args.no_escnn else find_escnn_python(args)
    if es_python is None:
        print(f"escnn: skipped ({es_reason})")
    else:
        print(f"escnn: {es_python}")

    t_start = time.perf_counter()
    results = []
    for name in args.config_names:
        r = {"name": name, "description": DESCRIPTION.get(name), "spec": CONFIGS[name]}
        if ce is not None:
            r["cupysteer"] = bench_cupysteer(name, args)
        if es_python is not None:
            r["escnn"] = bench_escnn(es_python, name, args)
        msg = f"{name}: done ({time.perf_counter() - t_start:.0f} s)"
        cs = r.get("cupysteer") or {}
        if "error" in cs:
            msg += f"; cupysteer failed: {cs['error']}"
        if cs.get("dim") and cs["dim"] != CONFIGS[name]["weights"]:
            msg += (f"; WEIGHT COUNT MISMATCH cupysteer {cs['dim']} vs escnn's "
                    f"{CONFIGS[name]['weights']} (reference)")
        ec = (r.get("escnn") or {}).get("cold")
        if cs.get("dim") and ec:
            if cs["dim"] != ec["dim"]:
                msg += f"; WEIGHT COUNT MISMATCH cupysteer {cs['dim']} vs escnn {ec['dim']}"
            if cs.get("padded_bytes") != ec["padded_bytes"]:
                msg += (f"; padded bytes differ: cupysteer {cs.get('padded_bytes')} vs escnn "
                        f"{ec['padded_bytes']}")
        print(msg, flush=True)
        results.append(r)

    print()
    if ce is not None:
        print("Ratios are escnn / cupysteer (bytes: escnn padded / cupysteer stored); 'cached "
              "ratio': escnn with a warm disk cache / cupysteer with none. Wall time:")
        print(make_table(results))
        print()
        print("The same with process CPU time:")
        print(make_table(results, "_cpu"))
        print()
    t = make_escnn_table(results)
    if t:
        print("escnn 1.0.11, one fresh process per measurement (import excluded):")
        print(t)
        print()
    total = time.perf_counter() - t_start
    load_end = os.getloadavg()
    print(f"total {total:.0f} s; load average at end {load_end[0]:.2f} (1 min)")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "load_average": [load_start, load_end],
                       "threads": {v: os.environ[v] for v in THREAD_VARS},
                       "args": {k: v for k, v in vars(args).items() if k != "cupysteer_child"},
                       "cupysteer_skipped": None if ce is not None else cs_reason,
                       "cupysteer_source": cs_source,
                       "escnn_python": es_python, "total_seconds": total,
                       "configs": results}, fh, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
