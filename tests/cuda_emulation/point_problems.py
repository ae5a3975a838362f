"""Random point-convolution problems (block tables, graphs, arrays) and the references the
emulated and GPU tests of kernels/point_conv.cu compare against: the NumPy contract
(:mod:`cupysteer.backends.point_numpy`) and the contract written as plain loops."""
from __future__ import annotations

import numpy as np

from cupysteer.backends import point_numpy as pn
from cupysteer.backends.point_harmonics import RadialHarmonics

__all__ = ["make_table", "make_problem", "loop_reference", "reference", "harmonic_problem"]


def make_table(rng, n_blocks, c_out, c_in, dims=(1, 2, 3, 5, 7), max_basis=3, share=True):
    """Random blocks inside (c_out, c_in) channels; blocks of equal shape may share a basis
    slice (as blocks of one irreps pair do) and weights may be shared or unused."""
    rows, n_entries, n_weights, seen = [], 0, 0, {}
    for _ in range(n_blocks):
        do = int(rng.choice([d for d in dims if d <= c_out]))
        di = int(rng.choice([d for d in dims if d <= c_in]))
        nb = int(rng.integers(1, max_basis + 1))
        key = (nb, do, di)
        if share and key in seen and rng.random() < 0.5:
            boff = seen[key]
        else:
            boff = seen[key] = n_entries
            n_entries += nb * do * di
        if share and n_weights >= nb and rng.random() < 0.2:
            woff = int(rng.integers(0, n_weights - nb + 1))  # shared weights
        else:
            woff = n_weights + int(rng.integers(0, 2))  # sometimes a gap: unused weight
            n_weights = woff + nb
        rows.append([int(rng.integers(0, c_out - do + 1)), int(rng.integers(0, c_in - di + 1)),
                     do, di, nb, woff, boff])
    return np.array(rows, np.int64).reshape(-1, 7), n_entries, n_weights


def make_problem(seed, n_blocks=3, c_out=8, c_in=7, n_src=5, n_tgt=4, E=20, dtype=np.float64,
                 dims=(1, 2, 3, 5, 7), src=None, dst=None):
    rng = np.random.default_rng(seed)
    table, n_entries, n_weights = make_table(rng, n_blocks, c_out, c_in, dims)
    src = rng.integers(0, n_src, E) if src is None else np.asarray(src)
    dst = rng.integers(0, n_tgt, E) if dst is None else np.asarray(dst)
    E = len(src)
    extra = int(rng.integers(0, 3))  # basis may have more columns than the table reads
    return dict(table=table, src=src, dst=dst, n_src=n_src, n_tgt=n_tgt,
                basis=rng.standard_normal((E, n_entries + extra)).astype(dtype),
                w=rng.standard_normal(n_weights).astype(dtype),
                g=rng.standard_normal((n_src, c_in)).astype(dtype),
                gy=rng.standard_normal((n_tgt, int((table[:, 0] + table[:, 2]).max()))
                                       ).astype(dtype))


def loop_reference(p):
    """The contract written as plain loops (float64), a check of point_numpy itself."""
    t, B, w, g, gy = p["table"], p["basis"], p["w"], p["g"], p["gy"]
    y, gg, gw = np.zeros(gy.shape), np.zeros((p["n_src"], int((t[:, 1] + t[:, 3]).max()))), \
        np.zeros(len(w))
    for e, (s, d) in enumerate(zip(p["src"], p["dst"])):
        for oo, io, do, di, nb, wo, bo in t:
            Bk = B[e, bo:bo + nb * do * di].reshape(nb, do, di).astype(np.float64)
            K = np.einsum("k,krc->rc", w[wo:wo + nb], Bk)
            y[d, oo:oo + do] += K @ g[s, io:io + di]
            gg[s, io:io + di] += K.T @ gy[d, oo:oo + do]
            gw[wo:wo + nb] += np.einsum("krc,r,c->k", Bk, gy[d, oo:oo + do], g[s, io:io + di])
    return y, gg, gw


def reference(p):
    if not len(p["src"]):  # point_numpy (at the time of writing) fails to reshape 0 edges
        return tuple(r.astype(p["basis"].dtype) for r in loop_reference(p))
    a = (p["table"], p["basis"])
    return (pn.contract(*a, p["w"], p["g"], p["src"], p["dst"], p["n_tgt"]),
            pn.contract_adjoint_features(*a, p["w"], p["gy"], p["src"], p["dst"], p["n_src"]),
            pn.contract_adjoint_weights(*a, p["gy"], p["g"], p["src"], p["dst"], len(p["w"])))


def harmonic_problem(seed, dtype, n_blocks=4, c_out=7, c_in=6, n_src=5, n_tgt=4, E=30,
                     src=None, dst=None, origin_edges=3):
    """A random table with a random descriptor over its basis slices (one element per
    (slice, basis element)), edges with some relative positions at the origin."""
    rng = np.random.default_rng(seed)
    table, n_entries, n_weights = make_table(rng, n_blocks, c_out, c_in, dims=(1, 2, 3))
    n_el = max(1, n_entries)
    elements = np.stack([rng.uniform(0, 2, n_el), rng.uniform(0.3, 1, n_el),
                         rng.integers(-3, 4, n_el).astype(float),
                         rng.choice([0, np.pi / 2, 0.7], n_el), rng.uniform(0.5, 2, n_el)], 1)
    entry_el = rng.integers(0, n_el, n_entries)
    for _, _, do, di, nb, _, bo in table:  # one element per (slice, k)
        for k in range(nb):
            q = bo + k * do * di
            entry_el[q:q + do * di] = entry_el[q]
    h = RadialHarmonics(elements, entry_el, rng.standard_normal((n_entries, 2)))
    src = rng.integers(0, n_src, E) if src is None else np.asarray(src)
    dst = rng.integers(0, n_tgt, E) if dst is None else np.asarray(dst)
    delta = rng.uniform(-2, 2, (len(src), 2))
    delta[rng.choice(len(src), min(origin_edges, len(src)), replace=False)] = 0
    c_out = int((table[:, 0] + table[:, 2]).max())
    return dict(table=table, h=h, delta=delta.astype(dtype), src=src, dst=dst, n_src=n_src,
                n_tgt=n_tgt, w=rng.standard_normal(n_weights).astype(dtype),
                g=rng.standard_normal((n_src, c_in)).astype(dtype),
                gy=rng.standard_normal((n_tgt, c_out)).astype(dtype))
