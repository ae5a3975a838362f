"""Refit of escnn subgroup-layer weights from a filter: cupysteer.compat.checkpoints.
refit_weights (one small solve per irreps pair) against the dense least-squares refit the
migration guide documented before (np.linalg.lstsq on basis.dense()), same layers, same run.

    python benchmarks/bench_refit.py
"""
from __future__ import annotations

import time

import numpy as np

import cupysteer as cs
from cupysteer import r3
from cupysteer.compat.checkpoints import refit_weights

# (name, group, regular fields in and out, kernel size, run the dense refit too)
LAYERS = [("O", r3.Octahedral(), 1, 3, True), ("O", r3.Octahedral(), 1, 5, True),
          ("O", r3.Octahedral(), 4, 5, False), ("I", r3.Icosahedral(), 1, 5, False)]


def main():
    for name, G, n, k, dense in LAYERS:
        t = cs.FieldType(G, [G.regular_representation] * n)
        b = cs.LayerBasis(t, t, k)
        F = b.expand(np.random.default_rng(0).standard_normal(b.dim))
        t0 = time.perf_counter()
        w, res = refit_weights(b, F)
        t_fast = time.perf_counter() - t0
        if not dense:  # the dense (C_out·C_in·k³, dim) matrix: too large to refit densely
            gb = 8 * b.dim * int(np.prod(b.shape)) / 1e9
            print(f"{name} {n}x regular -> {n}x regular, k={k}, dim={b.dim}: refit_weights "
                  f"{t_fast:.3f} s (residual {res:.1e}); dense lstsq not run (A: {gb:.1f} GB)")
            continue
        t0 = time.perf_counter()
        A = b.dense().reshape(b.dim, -1).T
        w_dense, *_ = np.linalg.lstsq(A, F.ravel(), rcond=None)
        t_dense = time.perf_counter() - t0
        print(f"{name} {n}x regular -> {n}x regular, k={k}, dim={b.dim}: refit_weights "
              f"{t_fast:.3f} s, dense lstsq {t_dense:.2f} s, ratio {t_dense / t_fast:.0f}x; "
              f"max |w - w_dense| {np.abs(w - w_dense).max():.1e}, residual {res:.1e}")


if __name__ == "__main__":
    main()
