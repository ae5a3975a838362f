"""Child of benchmarks/bench_expand.py: time to the first filter in a fresh interpreter.

    python benchmarks/_first_filter.py      (cupysteer from CUPYSTEER_SRC, else this checkout)

Times ``import numpy``, then ``import cupysteer``, then the build of C8 regular ×16 5×5
(``LayerBasis``, nothing cached) and its first float32 expand (seeded standard-normal weights;
making them is not timed). Prints one JSON object. Nothing is imported before the clock starts
but the standard library modules below.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.environ.get("CUPYSTEER_SRC") or os.path.dirname(HERE)))

c0 = time.perf_counter()
import numpy as np  # noqa: E402

c1 = time.perf_counter()
import cupysteer as cs  # noqa: E402

c2 = time.perf_counter()
G = cs.CyclicGroup(8)
t = cs.FieldType(G, [G.regular_representation] * 16)
L = cs.LayerBasis(t, t, kernel_size=5)
c3 = time.perf_counter()
w = np.random.default_rng(0).standard_normal(L.dim).astype(np.float32)
c4 = time.perf_counter()
L.expand(w)
c5 = time.perf_counter()
print(json.dumps({"numpy": c1 - c0, "import": c2 - c1, "build": c3 - c2, "first_expand": c5 - c4,
                  "first_filter": (c5 - c0) - (c4 - c3), "scipy_imported": "scipy" in sys.modules}))
