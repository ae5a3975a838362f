"""``cupysteer check``: the equivariance report of expanded filters, on the elements that map
the grid onto itself and on others (the basis rebuilt at the moved points); the elements are
written and described by the spelling of the group's space (:mod:`cupysteer.fields_spec`)."""
from __future__ import annotations

import json
import math

import numpy as np

from ..basis import LayerBasis
from ..equivariance import check_fibres, grid_candidates, point_permutation
from ..fields_spec import describe_element, format_element
from ._common import (
    UsageError,
    build_basis,
    describe,
    load_weights,
    require_min,
    resolved_kwargs,
    with_progress,
)


def _rows(group, errors, tol) -> list[dict]:
    """The report rows of [(g, relative error), …]."""
    return [dict(element=format_element(group, g), action=describe_element(group, g), error=e,
                 ok=e <= tol) for g, e in errors]


def _print_rows(rows) -> None:
    """One line per element: its spelling, what it does, the error, ok/FAIL."""
    for r in rows:
        print(f"    {r['element']:>16}  {r['action']}  error {r['error']:.2e}  "
              f"{'ok' if r['ok'] else 'FAIL'}")


class _Layer:
    """The expanded filters K (C_out, C_in, points) of a layer and ρ_out(g) K(p) ρ_in(g)ᵀ."""

    def __init__(self, basis, w):
        self.basis, self.w = basis, w
        self.points = np.asarray(basis.points)
        self.K = np.asarray(basis.expand(w), np.float64).reshape(basis.out_type.size,
                                                                 basis.in_type.size, -1)
        self.scale = max(float(np.abs(self.K).max()), np.finfo(np.float64).tiny)

    def target(self, g):  # ρ_out(g) K(p) ρ_in(g)ᵀ at every point p
        rho_out, rho_in = self.basis.out_type.representation, self.basis.in_type.representation
        return np.einsum("ab,bcp,dc->adp", rho_out(g), self.K, rho_in(g), optimize=True)

    def grid_error(self, g, perm) -> float:
        """The exact error of an element that permutes the grid points (``perm``)."""
        lhs = np.empty_like(self.K)
        lhs[:, :, perm] = self.target(g)
        return float(np.abs(lhs - self.K).max() / self.scale)

    def moved_error(self, g, kw) -> float:
        """The error of any element: the basis rebuilt on the points moved by g."""
        moved = self.points @ self.basis.in_type.group.action_matrices([g])[0].T
        rb = LayerBasis(self.basis.in_type, self.basis.out_type, points=moved, cache=False,
                        **kw)
        Kg = np.asarray(rb.expand(self.w), np.float64).reshape(self.K.shape)  # K(g·p)
        return float(np.abs(Kg - self.target(g)).max() / self.scale)


def moved_settings(basis, kw: dict) -> dict:
    """The LayerBasis arguments that rebuild ``basis`` at moved points: on an anisotropic or
    non-cubic grid its resolved rings, widths and cut-offs (the defaults of explicit points
    are not the grid's); ``spacing`` is already in the points."""
    kw = dict(kw)
    kw.pop("spacing", None)
    if basis.spacing is None and len(set(basis.filter_shape)) == 1:
        return kw
    s = basis.settings
    cut = dict(zip(s.rings, s.cutoff_per_ring))
    return dict(kw, rings=list(s.rings), sigma=list(s.sigma),
                frequencies_cutoff=cut.__getitem__)


def _grid_and_others(args, layer, G):
    """([(g, error)] of the grid symmetries, [the other candidate elements])."""
    grid, other = [], []
    for g in with_progress(args, grid_candidates(G), "checking the grid symmetries"):
        perm = point_permutation(G, g, layer.points)
        if perm is None:
            other.append(g)
        else:
            grid.append((g, layer.grid_error(g, perm)))
    return grid, other


def _pick_others(G, other, samples: int, seed: int) -> list:
    """At most ``samples`` of a finite group's other elements, or ``samples`` random ones."""
    rng = np.random.default_rng(seed + 1)
    if not G.is_finite:
        return G.sample(samples, rng)
    if len(other) > samples:
        idx = sorted(rng.choice(len(other), samples, replace=False))
        other = [other[i] for i in idx]
    return other


def _print_report(report, basis, how, dtype, tol, all_others: bool) -> None:
    print(f"check {report['layer']}")
    print(f"  {how}, {dtype} filters; errors are max |K(g·p) − ρ_out(g) K(p) ρ_in(g)ᵀ| / "
          f"max |K|, tolerance {tol:g}")
    print(f"  {len(report['grid'])} elements map the {'×'.join(map(str, basis.filter_shape))} "
          f"grid onto itself (exact check on the sampled filter):")
    _print_rows(report["grid"])
    if report["sampled"]:
        kind = "all" if all_others else "sampled"
        print(f"  {len(report['sampled'])} other elements ({kind}; the basis is rebuilt on the "
              f"grid points moved by g and K(g·p) is compared with ρ_out(g) K(p) ρ_in(g)ᵀ, no "
              f"interpolation):")
        _print_rows(report["sampled"])
    else:
        print("  no other elements")
    passed, worst = report["passed"], report["max_error"]
    print(f"{'PASS' if passed else 'FAIL'}: max error {worst:.2e} "
          f"{'<=' if passed else '>'} tolerance {tol:g}")


def _tolerance(tol, dtype) -> float:
    """--tol (finite, >= 0) or the dtype's default."""
    if tol is None:
        return 1e-9 if dtype == np.float64 else 1e-5
    if not math.isfinite(tol) or tol < 0:
        raise UsageError("--tol", f"must be a finite number >= 0, got {tol!r}")
    return float(tol)


def cmd_check(args) -> int:
    """Expand the weights and report the equivariance errors; 1 when one exceeds --tol."""
    dtype = np.dtype(args.dtype)
    tol = _tolerance(args.tol, dtype)
    require_min(args, 0, "--samples")
    basis, secs = build_basis(args)
    w, how = load_weights(args.weights, basis, args.seed, dtype)
    G = basis.in_type.group
    check_fibres(basis)
    layer = _Layer(basis, w)
    grid, other = _grid_and_others(args, layer, G)
    n_other = len(other)
    other = _pick_others(G, other, args.samples, args.seed)
    kw = moved_settings(basis, resolved_kwargs(args, G))
    sampled = [(g, layer.moved_error(g, kw))
               for g in with_progress(args, other, "checking other elements")]
    worst = max([e for _, e in grid + sampled], default=0.0)
    passed = worst <= tol
    report = dict(layer=describe(basis), weights=how, dtype=str(dtype), tolerance=tol,
                  relative_to="max |K|", grid=_rows(G, grid, tol),
                  sampled_method="basis rebuilt on the grid points moved by g: K_g(p) = K(g·p) "
                                 "compared with rho_out(g) K(p) rho_in(g)^T",
                  sampled=_rows(G, sampled, tol), max_error=worst, passed=passed)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report, basis, how, dtype, tol, G.is_finite and len(sampled) == n_other)
    return 0 if passed else 1
