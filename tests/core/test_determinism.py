"""Determinism: the same inputs give bit-identical bases and filters across runs, fresh objects
and processes (with different hash seeds), on the NumPy backend and on the CUDA kernels run by
the CPU emulation. README "Robustness and security" says which reductions are ordered:

* NumPy: each output is one BLAS GEMM / matmul whose summation order is fixed for a given
  call shape, so the same call reproduces bit for bit; a batched call and a single one may use
  different GEMM kernels and can differ in the last bit (not asserted here).
* CUDA forward: each output element is computed by one thread, in a fixed order (blocks,
  then Q_in, then Q_out): independent of the batch, the tile size and of which layers are
  packed together.
* CUDA adjoint: each weight is owned by one thread, no atomics; it sums point tiles in order,
  so it is independent of the batch and of the packing; the tile size (shared memory limit)
  changes the order, so only the same launch configuration is bit-identical.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cupysteer as cs

from _helpers import network
from _paths import REPO  # noqa: E402
from cuda_emulation import harness as H

ROOT = REPO

# layers built the same way here and in the subprocesses (mixed, repeated, non-contiguous
# fields; a continuous group; explicit points)
LAYERS = textwrap.dedent("""
    import numpy as np, cupysteer as cs
    def layers():
        D = cs.DihedralGroup(3)
        a = cs.LayerBasis(cs.FieldType(D, [D.regular_representation, D.irrep(1, 1),
                                           D.regular_representation]),
                          cs.FieldType(D, [D.irrep(1, 0), D.regular_representation]), 5,
                          cache=False)
        S = cs.SO2(3)
        s = [p.representation for p in S.irreps()]
        b = cs.LayerBasis(cs.FieldType(S, [s[1], s[0], s[2]]), cs.FieldType(S, [s[2], s[1]]), 4,
                          cache=False)
        C = cs.CyclicGroup(8)
        pts = np.random.default_rng(0).uniform(-2, 2, (11, 2))
        c = cs.LayerBasis(cs.FieldType(C, [C.regular_representation]),
                          cs.FieldType(C, [C.irrep(1), C.regular_representation]), 5,
                          points=pts, cache=False)
        return [a, b, c]
    def digest(layers):
        h = {}
        for i, L in enumerate(layers):
            rng = np.random.default_rng(i)
            for dt in (np.float32, np.float64):
                W = rng.standard_normal((3, L.dim)).astype(dt)
                G = rng.standard_normal((3,) + L.shape).astype(dt)
                parts = [L.plan.basis, L.plan.weight_index, L.plan.change_of_basis,
                         L.expand(W), L.expand(W[0]), L.adjoint(G), L.adjoint(G[1]),
                         L.he_std(), L.dense(dt)]
                h[f"{i}-{np.dtype(dt).name}"] = __import__("hashlib").sha256(
                    b"".join(np.ascontiguousarray(p).tobytes() for p in parts)).hexdigest()
        return h
""")


def _namespace() -> dict:
    ns: dict = {}
    exec(LAYERS, ns)  # noqa: S102 -- our own code, shared verbatim with the subprocesses
    return ns


def _digest_in_subprocess(hashseed: str, env_extra=None) -> dict:
    code = LAYERS + "\nimport json; print(json.dumps(digest(layers())))\n"
    env = dict(os.environ, PYTHONHASHSEED=hashseed,
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("CUPYSTEER_CACHE_DIR", None)
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=str(ROOT), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_numpy_bit_identical_across_runs_and_objects():
    ns = _namespace()
    first = ns["digest"](ns["layers"]())
    again = ns["digest"](ns["layers"]())  # fresh bases, plans and expanders
    assert first == again
    # the cached construction path gives the same bytes as the uncached one
    a = ns["layers"]()[0]
    b = cs.LayerBasis(a.in_type, a.out_type, 5, cache=cs.BasisCache())
    w = np.random.default_rng(9).standard_normal(a.dim)
    assert a.plan.basis.tobytes() == b.plan.basis.tobytes()
    assert a.expand(w).tobytes() == b.expand(w).tobytes()


def test_numpy_bit_identical_across_processes():
    """Two fresh interpreters with different hash seeds (set and dict orders of strings
    differ) and a single-threaded BLAS produce the same bytes as this process."""
    here = _digest_in_subprocess("0")
    assert _digest_in_subprocess("12345", {"OMP_NUM_THREADS": "1",
                                           "OPENBLAS_NUM_THREADS": "1"}) == here
    ns = _namespace()
    assert ns["digest"](ns["layers"]()) == here


def test_threads_give_the_same_bits():
    """Per-thread scratch buffers: concurrent expansions with one expander equal serial ones."""
    from concurrent.futures import ThreadPoolExecutor
    L = _namespace()["layers"]()[0]
    rng = np.random.default_rng(3)
    Ws = [rng.standard_normal((2, L.dim)) for _ in range(16)]
    serial = [L.expand(W).tobytes() for W in Ws]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda W: L.expand(W).tobytes(), Ws)) == serial


# ---- the CUDA kernels (CPU emulation) ------------------------------------------------------------

needs_gxx = pytest.mark.skipif(H.gxx() is None, reason="g++ not found: the CPU emulation of "
                                                       "the CUDA kernels needs a host C++ compiler")


def _limit(packed, dtype, tiles):
    item = np.dtype(dtype).itemsize
    cell = 2 * packed.max_out_size * packed.max_in_size * item
    return packed.max_fieldpair_weights * item + cell * max(1, packed.max_points // tiles)


@needs_gxx
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_bit_identical_across_runs_batches_tiles_and_packing(dtype):
    Ls = network()
    ex = H.CpuExpander([L.plan for L in Ls], dtype)
    p = ex.packed
    rng = np.random.default_rng(1)
    W = rng.standard_normal((3, p.dim)).astype(dtype)
    G = rng.standard_normal((3, p.filter_size)).astype(dtype)
    fwd, adj = ex.expand(W), ex.adjoint(G)
    # again, in a fresh worker process
    H.worker(H.sanitizer_from_env()).close()
    assert ex.expand(W).tobytes() == fwd.tobytes()
    assert ex.adjoint(G).tobytes() == adj.tobytes()
    # batch items one by one
    for i in range(3):
        assert ex.expand(W[i]).tobytes() == fwd[i].tobytes()
        assert ex.adjoint(G[i]).tobytes() == adj[i].tobytes()
    # forward: any tile size; adjoint: the same launch configuration only (documented)
    for tiles in (2, 5):
        small = H.CpuExpander([L.plan for L in Ls], dtype, shared_limit=_limit(p, dtype, tiles))
        assert small.expand(W).tobytes() == fwd.tobytes()
        assert small.adjoint(G).tobytes() == small.adjoint(G).tobytes()
    # one layer per launch gives the bytes of the packed network
    for L, woff, foff in zip(Ls, p.weight_offsets, p.filter_offsets):
        one = H.CpuExpander(L.plan, dtype)
        n = int(np.prod(L.shape))
        assert one.expand(W[:, woff:woff + L.dim]).tobytes() == \
            np.ascontiguousarray(fwd[:, foff:foff + n]).tobytes()
        assert one.adjoint(G[:, foff:foff + n]).tobytes() == \
            np.ascontiguousarray(adj[:, woff:woff + L.dim]).tobytes()


@needs_gxx
def test_kernels_bit_identical_across_processes():
    code = textwrap.dedent("""
        import hashlib, sys
        import numpy as np
        sys.path.insert(0, "tests")
        from _helpers import network
        from cuda_emulation import harness as H
        Ls = network()
        out = []
        for dt in (np.float32, np.float64):
            ex = H.CpuExpander([L.plan for L in Ls], dt)
            rng = np.random.default_rng(2)
            W = rng.standard_normal((2, ex.packed.dim)).astype(dt)
            G = rng.standard_normal((2, ex.packed.filter_size)).astype(dt)
            out.append(hashlib.sha256(ex.expand(W).tobytes() + ex.adjoint(G).tobytes())
                       .hexdigest())
        print(" ".join(out))
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=dict(env, PYTHONHASHSEED=seed), cwd=str(ROOT), timeout=300)
            for seed in ("1", "2")]
    for r in runs:
        assert r.returncode == 0, r.stderr[-3000:]
    digests = [r.stdout.split() for r in runs]
    here = []
    for dt in (np.float32, np.float64):
        ex = H.CpuExpander([L.plan for L in network()], dt)
        rng = np.random.default_rng(2)
        W = rng.standard_normal((2, ex.packed.dim)).astype(dt)
        G = rng.standard_normal((2, ex.packed.filter_size)).astype(dt)
        here.append(hashlib.sha256(ex.expand(W).tobytes() + ex.adjoint(G).tobytes()).hexdigest())
    assert digests[0] == digests[1] == here
