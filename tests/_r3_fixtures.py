"""Loading the escnn 1.0.11 3D fixtures (tests/data/escnn3d) into cupysteer objects."""
from __future__ import annotations

import ast
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "escnn3d"


@lru_cache(None)
def index() -> dict:
    return {c["name"]: c for c in json.loads((DATA / "index.json").read_text())["configs"]}


def names() -> list:
    return list(index())


def arrays(name: str) -> dict:
    with np.load(DATA / index()[name]["file"], allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def group(spec):
    from cupysteer import r3
    kind = spec[0]
    if kind == "so3":
        return r3.SO3(spec[1])
    if kind == "o3":
        return r3.O3(spec[1])
    if kind == "octa":
        return r3.Octahedral()
    if kind == "ico":
        return r3.Icosahedral()
    if kind == "rot2d":
        return r3.RotationsZ(spec[1], maximum_frequency=spec[2])
    if kind == "inv":
        return r3.Inversion()
    raise KeyError(spec)


def field(G, spec: str):
    if spec == "trivial":
        return G.trivial_representation
    if spec == "regular":
        return G.regular_representation
    if spec == "std":
        return G.standard_representation
    what, _, arg = spec.partition(":")
    arg = ast.literal_eval(arg)
    if what == "irrep":
        return G.irrep(*arg).representation
    if what == "quotient":
        return G.quotient_representation(arg)
    raise KeyError(spec)


def field_types(name: str):
    from cupysteer import FieldType
    c = index()[name]
    G = group(c["gspace"]["spec"])
    return (FieldType(G, [field(G, s) for s in c["in_fields"]]),
            FieldType(G, [field(G, s) for s in c["out_fields"]]))


def layer(name: str, **kw):
    from cupysteer import LayerBasis
    c = index()[name]
    tin, tout = field_types(name)
    return LayerBasis(tin, tout, c["kernel_size"], c["dilation"], **kw)


def _harmonics(J, pts):
    from cupysteer.r3.so3 import spherical_harmonics
    return spherical_harmonics(int(J), pts)


def fixture_elements(name: str, k: int) -> np.ndarray:
    """escnn's normalised elements of block k, rebuilt in float64 from the stored
    coefficients, shells and changes of basis (fixture README, step 2): (d_k, n_out, n_in, S)."""
    z = arrays(name)
    blk = index()[name]["blocks"][k]
    pts = z["grid"].T
    r = np.linalg.norm(pts, axis=1)
    Qo, Qi = z[f"rep{blk['out_rep_id']}_Q"], z[f"rep{blk['in_rep_id']}_Qinv"]
    out = []
    for e in range(blk["dim"]):
        J, os_, is_ = (int(z[f"b{k}_{key}"][e]) for key in ("J", "osize", "isize"))
        op, ip = int(z[f"b{k}_out_pos"][e]), int(z[f"b{k}_in_pos"][e])
        c = z[f"b{k}_coeff"][e][:os_, :is_, :2 * J + 1]
        radial = np.exp(-(r - z[f"b{k}_radius"][e]) ** 2 / (2 * z[f"b{k}_sigma"][e] ** 2))
        raw = np.einsum("abm,pm->abp", c, _harmonics(J, pts)) * radial
        E = np.einsum("xa,abp,by->xyp", Qo[:, op:op + os_], raw, Qi[ip:ip + is_, :])
        out.append(E / z[f"b{k}_scale"][e])
    return np.array(out)


def block_span_error(A: np.ndarray, B: np.ndarray) -> float:
    """1 − smallest cosine of the principal angles between span(A) and span(B) (rows are
    flattened elements); 0 iff equal spans (counts must match)."""
    A = A.reshape(len(A), -1)
    B = B.reshape(len(B), -1)
    qa = np.linalg.svd(A, full_matrices=False)[2]
    qb = np.linalg.svd(B, full_matrices=False)[2]
    s = np.linalg.svd(qa @ qb.T, compute_uv=False)
    return float(1.0 - s.min())
