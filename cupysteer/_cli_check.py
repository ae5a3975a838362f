"""``cupysteer check``: the equivariance report of expanded filters."""
from __future__ import annotations

import json
import math

import numpy as np

from ._cli_common import build_basis, describe, load_weights, require_min, resolved_kwargs
from .equivariance import grid_candidates, point_permutation


def _label3(M) -> str:
    """'rotation by 90.00° about (0, 0, 1)', 'inversion', 'mirror, normal (1, 0, 0)', …"""
    M = np.asarray(M, np.float64)
    d = 1.0 if np.linalg.det(M) > 0 else -1.0
    R = d * M
    ang = math.degrees(math.acos(min(1.0, max(-1.0, (np.trace(R) - 1) / 2))))
    if ang < 1e-6:
        return "identity" if d > 0 else "inversion"
    half = ang > 180 - 1e-6
    if half:  # the axis spans the columns of R + I; its sign is arbitrary: first entry > 0
        B = R + np.eye(3)
        axis = B[:, np.argmax(np.linalg.norm(B, axis=0))]
        axis = axis * (-1.0 if axis[np.argmax(np.abs(axis) > 1e-9)] < 0 else 1.0)
    else:
        axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    axis = axis / np.linalg.norm(axis) + 0.0
    a = ", ".join(str(int(round(v))) if abs(v - round(v)) < 1e-9 else f"{v:.3g}" for v in axis)
    if d < 0 and half:
        return f"mirror, normal ({a})"
    return f"{'inversion ∘ ' if d < 0 else ''}rotation by {ang:6.2f}° about ({a})"


def _element_label(group, g) -> str:
    if group.space_dimension == 3:
        return _label3(g)
    f, r = group._split(g)
    ang = float(group.rotation_angle(np.array([r]))[0])
    deg = math.degrees(ang)
    if not f:
        return f"rotation by {deg:7.2f}°"
    axis = math.degrees(group.reflection_axis + ang / 2) % 180
    return f"reflection, axis {axis:6.2f}°"


def _fmt_element(group, g) -> str:
    if group.space_dimension == 3:
        if group.is_finite:  # position in the group's (escnn's) element order
            d = np.abs(group.elements() - np.asarray(g, np.float64)).max(axis=(1, 2))
            return f"#{int(np.argmin(d))}"
        m = np.round(np.asarray(g, np.float64), 4) + 0.0
        return "[" + ",".join("[" + ",".join(f"{v:g}" for v in row) + "]" for row in m) + "]"
    if group.is_finite:
        return repr(g)
    if isinstance(g, tuple):
        return f"({g[0]}, {g[1]:.4f})"
    return f"{g:.4f}"


def _rows(group, errors, tol) -> list[dict]:
    """The report rows of [(g, relative error), …]."""
    return [dict(element=_fmt_element(group, g), action=_element_label(group, g), error=e,
                 ok=e <= tol) for g, e in errors]


def _print_rows(rows) -> None:
    for r in rows:
        print(f"    {r['element']:>16}  {r['action']}  error {r['error']:.2e}  "
              f"{'ok' if r['ok'] else 'FAIL'}")


def cmd_check(args) -> int:
    from .basis import LayerBasis
    dtype = np.dtype(args.dtype)
    tol = args.tol if args.tol is not None else (1e-9 if dtype == np.float64 else 1e-5)
    require_min(args, 0, "--samples")
    basis, secs = build_basis(args)
    w, how = load_weights(args.weights, basis, args.seed, dtype)
    G = basis.in_type.group
    pts = np.asarray(basis.points)
    K = np.asarray(basis.expand(w), np.float64).reshape(basis.out_type.size,
                                                       basis.in_type.size, -1)
    scale = max(float(np.abs(K).max()), np.finfo(np.float64).tiny)
    rho_out, rho_in = basis.out_type.representation, basis.in_type.representation

    def target(g):  # ρ_out(g) K(p) ρ_in(g)ᵀ at every point p
        return np.einsum("ab,bcp,dc->adp", rho_out(g), K, rho_in(g))

    grid, other = [], []
    for g in grid_candidates(G):
        perm = point_permutation(G, g, pts)
        if perm is None:
            other.append(g)
            continue
        lhs = np.empty_like(K)
        lhs[:, :, perm] = target(g)
        grid.append((g, float(np.abs(lhs - K).max() / scale)))
    rng = np.random.default_rng(args.seed + 1)
    n_other = len(other)
    if G.is_finite:
        if len(other) > args.samples:
            idx = sorted(rng.choice(len(other), args.samples, replace=False))
            other = [other[i] for i in idx]
    else:
        other = G.sample(args.samples, rng)
    sampled = []
    kw = resolved_kwargs(args, G)
    for g in other:
        moved = pts @ (np.asarray(g) if G.space_dimension == 3 else G.action_matrix(g)).T
        rb = LayerBasis(basis.in_type, basis.out_type, points=moved, cache=False, **kw)
        Kg = np.asarray(rb.expand(w), np.float64).reshape(K.shape)  # K(g·p)
        sampled.append((g, float(np.abs(Kg - target(g)).max() / scale)))

    worst = max([e for _, e in grid + sampled], default=0.0)
    passed = worst <= tol
    report = dict(layer=describe(basis), weights=how, dtype=str(dtype), tolerance=tol,
                  relative_to="max |K|", grid=_rows(G, grid, tol),
                  sampled_method="basis rebuilt on the grid points moved by g: K_g(p) = K(g·p) "
                                 "compared with rho_out(g) K(p) rho_in(g)^T",
                  sampled=_rows(G, sampled, tol), max_error=worst, passed=passed)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if passed else 1
    print(f"check {report['layer']}")
    print(f"  {how}, {dtype} filters; errors are max |K(g·p) − ρ_out(g) K(p) ρ_in(g)ᵀ| / "
          f"max |K|, tolerance {tol:g}")
    print(f"  {len(grid)} elements map the {'×'.join(map(str, basis.filter_shape))} grid onto "
          f"itself (exact check on the sampled filter):")
    _print_rows(report["grid"])
    if sampled:
        kind = "all" if G.is_finite and len(sampled) == n_other else "sampled"
        print(f"  {len(sampled)} other elements ({kind}; the basis is rebuilt on the grid "
              f"points moved by g and K(g·p) is compared with ρ_out(g) K(p) ρ_in(g)ᵀ, no "
              f"interpolation):")
        _print_rows(report["sampled"])
    else:
        print("  no other elements")
    print(f"{'PASS' if passed else 'FAIL'}: max error {worst:.2e} "
          f"{'<=' if passed else '>'} tolerance {tol:g}")
    return 0 if passed else 1
