"""The ``cupysteer`` command (also ``python -m cupysteer``).

Sub-commands: ``basis`` (write a basis and filter bank to .npz, draw it to PNG), ``info``
(dimension, blocks, memory, resolved settings), ``check`` (equivariance report), ``bench``
(expand/adjoint timings) and ``demo``. Groups and fields are spelled as in
:mod:`cupysteer.fields_spec`: planar groups (``C8``, ``D4``, ``SO2``, …) give k×k filters,
groups acting on R³ (``SO3``, ``O3``, ``O``, ``Oh``, ``I``, ``Ih``, ``C8z``, ``D4z``,
``conical4``, ``cyl4``, ``fullcyl4``, ``inv``, ``mir``, ``trivial3``; escnn's ``R3Conv``)
k×k×k filters with the axes (−z, −y, x). Bad input exits with status 2 and a one-line error that names
the argument; a failed ``check`` exits with status 1.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
import time
from dataclasses import fields as dc_fields
from pathlib import Path

import numpy as np

from .equivariance import grid_candidates, point_permutation

__all__ = ["main", "build_basis", "basis_arrays"]

NPZ_FORMAT = "cupysteer.basis/1"

_EXAMPLES = {
    "basis": """examples:
  cupysteer basis --group C8 --in regular --out "regular,irrep:1" --size 7 -o bank.npz
  cupysteer basis --group D4 --in trivial --out "2*regular" --size 5 --weights he \\
      -o bank.npz --png basis.png --filters-png filters.png
  cupysteer basis --group SO2:4 --in irrep:1 --out "irrep:0,irrep:2" --size 9 \\
      --rings 0,1.5,3,4 --sigma 0.6 --cutoff 3.0 -o so2.npz
  cupysteer basis --group O --in regular --out regular --size 3 --weights he \\
      -o bank.npz --png slices.png                  # octahedral group acting on R³
  cupysteer basis --group SO3:3 --in "irrep:1,irrep:2" --out "trivial,std" --size 5 -o so3.npz

The .npz holds plain arrays only (np.load(..., allow_pickle=False)):
  group, in_fields, out_fields, kernel_size, dilation, dim, filter_shape, points,
  settings_* (rings, sigma, cutoff_per_ring, maximum_frequency, maximum_offset: -1 = none),
  pair_in_irrep, pair_out_irrep, pair_count, and per irreps pair t:
  pair<t>_values (n, d_out, d_in, k, k), pair<t>_radius/_ring/_frequency/_gamma/_s/
  _offset/_scale; plan_* (every ExpansionPlan array); element_* (per weight); he_std;
  with --weights also weights, filters (C_out, C_in, k, k), bias_expansion (C_out, T).
  Groups acting on R³: pair<t>_values (n, d_out, d_in, k, k, k), filters (C_out, C_in, k, k, k)
  (axes −z, −y, x), _frequency = harmonic degree l; the --png shows the central slices.""",
    "info": """examples:
  cupysteer info --group C8 --in regular --out "regular,irrep:1" --size 7
  cupysteer info --group O2:4 --in irrep:1,1 --out "trivial,irrep:1,2" --size 9 --json
  cupysteer info --group Ih --in regular --out "irrep:1,1" --size 3""",
    "check": """examples:
  cupysteer check --group C8 --in regular --out "regular,irrep:1" --size 7
  cupysteer check --group D4:axis=0.0 --in regular --out regular --size 5 --weights random
  cupysteer check --group SO2 --in irrep:1 --out irrep:2 --size 7 --samples 16
  cupysteer check --group O3 --in "irrep:1,0,std" --out "irrep:0,1,irrep:1,2" --size 5""",
    "bench": """examples:
  cupysteer bench --group C8 --in "8*regular" --out "8*regular" --size 7
  cupysteer bench --group D4 --in "4*regular" --out "4*regular" --size 5 --batch 16""",
    "demo": """examples:
  cupysteer demo
  cupysteer demo --N 4 --dihedral --fields 2 --size 3""",
}


class UsageError(Exception):
    """Bad input for one argument (exit status 2)."""

    def __init__(self, argument: str, message: str):
        super().__init__(f"argument {argument}: {message}")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _say(args, *msg):
    if not getattr(args, "quiet", False):
        print(*msg, file=sys.stderr, flush=True)


# ---- building a basis from the arguments -------------------------------------------------
def _floats(text, argument):
    try:
        vals = [float(x) for x in str(text).replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise UsageError(argument, f"expected comma-separated numbers, got {text!r}") from None
    if not vals:
        raise UsageError(argument, f"expected at least one number, got {text!r}")
    return vals


def _setting_argument(message: str) -> str:
    for prefix, arg in (("rings", "--rings"), ("sigma", "--sigma"),
                        ("frequencies_cutoff", "--cutoff"), ("maximum_offset", "--max-offset"),
                        ("kernel_size", "--size"), ("dilation", "--dilation")):
        if message.startswith(prefix):
            return arg
    return "--in/--out/--size"


def _resolved_kwargs(args, group=None) -> dict:
    kw = dict(kernel_size=args.size, dilation=args.dilation)
    if args.size < 1:
        raise UsageError("--size", f"the kernel size must be >= 1, got {args.size}")
    if args.dilation < 1:
        raise UsageError("--dilation", f"the dilation must be >= 1, got {args.dilation}")
    kw["rings"] = None if args.rings is None else _floats(args.rings, "--rings")
    if args.sigma is None:
        kw["sigma"] = None
    else:
        s = _floats(args.sigma, "--sigma")
        kw["sigma"] = s[0] if len(s) == 1 else s
    kw["frequencies_cutoff"] = None
    if args.cutoff is not None:
        c = _floats(args.cutoff, "--cutoff")
        if len(c) != 1:
            raise UsageError("--cutoff", f"expected one number, got {args.cutoff!r}")
        kw["frequencies_cutoff"] = c[0]
    kw["maximum_offset"] = args.max_offset
    if group is not None and group.space_dimension == 3:
        if args.max_offset is not None:
            raise UsageError("--max-offset", "is a planar (2D) setting; groups acting on R³ "
                                             "have no alias offsets")
        c = kw["frequencies_cutoff"]
        if c is not None and c < 0:  # the planar policies -1, -2, -3 by escnn's names
            names = {-1.0: None, -2.0: "default2", -3.0: "default3"}
            if c not in names:
                raise UsageError("--cutoff", f"expected a positive float c (F(R) = c·R) or a "
                                             f"policy -1, -2, -3, got {args.cutoff!r}")
            kw["frequencies_cutoff"] = names[c]
    return kw


def build_basis(args, progress: bool | None = None):
    """(LayerBasis, seconds) from parsed layer arguments; UsageError names the argument."""
    from .basis import EmptyBasisError, LayerBasis
    from .cache import default_cache
    from .field_type import FieldType
    from .fields_spec import parse_fields, parse_group
    from .r3.settings import grid_points3, resolve_settings3
    from .settings import grid_points, resolve_settings

    try:
        group = parse_group(args.group)
    except ValueError as exc:
        raise UsageError("--group", str(exc)) from None
    types = {}
    for argument, spec in (("--in", args.in_fields), ("--out", args.out_fields or args.in_fields)):
        try:
            types[argument] = FieldType(group, parse_fields(group, spec))
        except ValueError as exc:
            raise UsageError(argument, str(exc)) from None
    kw = _resolved_kwargs(args, group)
    t0 = time.perf_counter()
    try:
        if group.space_dimension == 3:
            settings = resolve_settings3(kw["kernel_size"], kw["dilation"], kw["rings"],
                                         kw["sigma"], kw["frequencies_cutoff"])
        else:
            settings = resolve_settings(kw["kernel_size"], kw["dilation"], kw["rings"],
                                        kw["sigma"], kw["frequencies_cutoff"],
                                        kw["maximum_offset"])
    except ValueError as exc:
        raise UsageError(_setting_argument(str(exc)), str(exc)) from None
    # Sample the irreps-pair bases first (into the process cache), with progress lines.
    points = (grid_points3 if group.space_dimension == 3 else grid_points)(args.size,
                                                                           args.dilation)
    ins = list(dict.fromkeys(types["--in"].irreps))
    outs = list(dict.fromkeys(types["--out"].irreps))
    pairs = [(a, b) for a in ins for b in outs]
    progress = sys.stderr.isatty() if progress is None else progress
    cache = default_cache()
    for i, (a, b) in enumerate(pairs):
        pb = cache.pair_basis(a, b, settings, points)
        if progress and not args.quiet:
            print(f"\r  sampling irreps pairs: {i + 1}/{len(pairs)} ({a.name} → {b.name}: "
                  f"{len(pb)} elements)   ", end="", file=sys.stderr, flush=True)
    if progress and not args.quiet and pairs:
        print(file=sys.stderr)
    try:
        basis = LayerBasis(types["--in"], types["--out"], **kw)
    except EmptyBasisError as exc:
        raise UsageError("--in/--out/--size/--cutoff", str(exc)) from None
    except ValueError as exc:
        raise UsageError(_setting_argument(str(exc)), str(exc)) from None
    return basis, time.perf_counter() - t0


def _describe(basis) -> str:
    from .fields_spec import format_field_type, format_group
    fs = "×".join(str(s) for s in basis.filter_shape)
    return (f"{format_group(basis.in_type.group)}: {format_field_type(basis.in_type)} → "
            f"{format_field_type(basis.out_type)}, {fs} filter, {basis.dim} weights")


def _load_weights(spec: str, basis, seed: int, dtype) -> tuple[np.ndarray, str]:
    if spec == "random":
        return np.random.default_rng(seed).standard_normal(basis.dim).astype(dtype), \
            f"standard normal weights (seed {seed})"
    if spec == "he":
        return basis.init_weights(np.random.default_rng(seed), dtype=dtype), \
            f"generalised He weights (seed {seed})"
    path = Path(spec)
    if path.suffix not in (".npy", ".npz"):
        raise UsageError("--weights", f"expected random, he or a .npy/.npz file, got {spec!r}")
    if not path.is_file():
        raise UsageError("--weights", f"no such file: {spec}")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                keys = list(data.keys())
                if "weights" in keys:
                    w = data["weights"]
                elif len(keys) == 1:
                    w = data[keys[0]]
                else:
                    raise UsageError("--weights", f"{spec} holds {keys}; name the array "
                                                  f"'weights'")
        else:
            w = data
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError("--weights", f"cannot read {spec}: {exc}") from None
    w = np.asarray(w)
    if w.dtype.kind not in "fiu":
        raise UsageError("--weights", f"{spec}: expected real numbers, got dtype {w.dtype}")
    if w.shape != (basis.dim,):
        raise UsageError("--weights", f"{spec}: expected shape ({basis.dim},) for this basis, "
                                      f"got {w.shape}")
    if not np.isfinite(w).all():
        raise UsageError("--weights", f"{spec} contains NaN or infinity")
    return w.astype(dtype), f"weights from {spec}"


# ---- basis ------------------------------------------------------------------------------
def basis_arrays(basis, dilation: int = 1) -> dict:
    """Every array written by ``cupysteer basis`` except the weights and filters: plain
    NumPy arrays (numbers and unicode strings), loadable with ``allow_pickle=False``."""
    from . import __version__
    from .fields_spec import format_field_type, format_group

    s = basis.settings
    kh = basis.filter_shape
    out = {
        "format": np.array(NPZ_FORMAT), "cupysteer_version": np.array(__version__),
        "group": np.array(format_group(basis.in_type.group)),
        "in_fields": np.array(format_field_type(basis.in_type)),
        "out_fields": np.array(format_field_type(basis.out_type)),
        "kernel_size": np.array(kh[0] if len(kh) in (2, 3) else -1),
        "dilation": np.array(dilation),
        "dim": np.array(basis.dim), "filter_shape": np.array(kh, np.int64),
        "num_bias": np.array(basis.num_bias), "points": np.asarray(basis.points),
        "settings_rings": np.asarray(s.rings), "settings_sigma": np.asarray(s.sigma),
        "settings_cutoff_per_ring": np.asarray(s.cutoff_per_ring),
        "settings_maximum_frequency": np.array(s.maximum_frequency),
        "settings_maximum_offset": np.array(-1 if s.maximum_offset is None else
                                            s.maximum_offset),
        "in_field_names": np.array([r.name for r in basis.in_type.representations]),
        "out_field_names": np.array([r.name for r in basis.out_type.representations]),
        "in_change_of_basis": np.asarray(basis.in_type.change_of_basis),
        "out_change_of_basis": np.asarray(basis.out_type.change_of_basis),
        "pair_in_irrep": np.array([a.name for a, _ in basis.irreps_pairs]),
        "pair_out_irrep": np.array([b.name for _, b in basis.irreps_pairs]),
        "pair_count": np.array([len(basis.pair_basis(*p)) for p in basis.irreps_pairs],
                               np.int64),
        "weight_block_in": np.array([b[0] for b in basis.weight_blocks]),
        "weight_block_out": np.array([b[1] for b in basis.weight_blocks]),
        "weight_block_range": np.array([b[2:] for b in basis.weight_blocks], np.int64)
        .reshape(-1, 5),
        "he_std": basis.he_std(),
    }
    rings = np.asarray(s.rings)
    for t, p in enumerate(basis.irreps_pairs):
        pb = basis.pair_basis(*p)
        out[f"pair{t}_values"] = np.asarray(pb.values).reshape(pb.values.shape[:3] + kh)
        out[f"pair{t}_radius"] = rings[np.asarray(pb.ring)]
        for key in ("ring", "frequency", "gamma", "s", "offset", "scale"):
            out[f"pair{t}_{key}"] = np.asarray(getattr(pb, key))
    plan = basis.plan
    for f in dc_fields(plan):
        v = getattr(plan, f.name)
        out[f"plan_{f.name}"] = np.asarray(v)
    for key, v in basis.element_attributes.items():
        out[f"element_{key}"] = np.asarray(v.astype(str) if v.dtype == object else v)
    return out


def _cmd_basis(args) -> int:
    dtype = np.dtype(args.dtype)
    if args.max_columns < 1:
        raise UsageError("--max-columns", f"must be >= 1, got {args.max_columns}")
    if args.filters_png and not args.weights:
        raise UsageError("--filters-png", "needs --weights (random, he or a file)")
    basis, secs = build_basis(args)
    if args.weights:  # bad weights fail before anything is printed or written
        w, how = _load_weights(args.weights, basis, args.seed, dtype)
    _say(args, f"cupysteer: built {_describe(basis)} in {secs:.2f} s")
    arrays = basis_arrays(basis, args.dilation)
    filters = None
    if args.weights:
        filters = basis.expand(w)
        arrays.update(weights=w, filters=filters, bias_expansion=basis.bias_expansion(),
                      weights_source=np.array(how))
        _say(args, f"cupysteer: expanded {how} to filters {filters.shape} {dtype}")
    if args.output:
        try:
            np.savez(args.output, **arrays)
        except OSError as exc:
            raise UsageError("-o/--output", f"cannot write {args.output}: {exc}") from None
        _say(args, f"cupysteer: wrote {args.output} ({len(arrays)} arrays, "
                   f"{Path(args.output).stat().st_size / 1024:.1f} KiB)")
    if args.png:
        _write_png(args, "--png", lambda g: g.plot_basis(basis, args.png,
                                                         max_columns=args.max_columns),
                   lambda g: g.write_png(args.png, g.basis_image(basis, args.max_columns)))
    if args.filters_png:
        F, title = np.asarray(filters, np.float64), _describe(basis)
        if F.ndim == 5:  # 3D: central slices of the first 8×8 channels
            F = F[:8, :8]
            title += f"; central slices z=0 | y=0 | x=0 of channels [:{len(F)}, :{F.shape[1]}]"
        _write_png(args, "--filters-png",
                   lambda g: g.plot_filters(F, args.filters_png, title=title),
                   lambda g: g.write_png(args.filters_png, g.filters_image(F)))
    if not (args.output or args.png or args.filters_png):
        _say(args, "cupysteer: nothing written (give -o FILE.npz and/or --png FILE.png)")
    return 0


def _write_png(args, argument, with_matplotlib, without):
    from . import gallery
    path = getattr(args, argument.lstrip("-").replace("-", "_"))
    try:
        try:
            fig = with_matplotlib(gallery)
        except ImportError:
            without(gallery)
            _say(args, f"cupysteer: matplotlib is not installed: wrote {path} without titles "
                       f"(for the titled gallery: {gallery.PLOT_EXTRA_HINT})")
            return
        import matplotlib.pyplot as plt
        plt.close(fig)
    except OSError as exc:
        raise UsageError(argument, f"cannot write {path}: {exc}") from None
    _say(args, f"cupysteer: wrote {path}")


# ---- info -------------------------------------------------------------------------------
def _info_dict(basis, secs) -> dict:
    from .fields_spec import format_field_type, format_group
    s = basis.settings
    pairs = []
    blocks_per_pair = np.bincount(basis.plan.block_pair, minlength=len(basis.irreps_pairs))
    for t, (a, b) in enumerate(basis.irreps_pairs):
        pb = basis.pair_basis(a, b)
        pairs.append(dict(in_irrep=a.name, out_irrep=b.name, shape=list(pb.shape),
                          elements=len(pb), blocks=int(blocks_per_pair[t]),
                          frequencies=sorted({int(x) for x in pb.frequency})))
    return dict(
        group=format_group(basis.in_type.group), in_fields=format_field_type(basis.in_type),
        out_fields=format_field_type(basis.out_type), filter_shape=list(basis.filter_shape),
        filter=list(basis.shape), dim=basis.dim, num_bias=basis.num_bias,
        weight_blocks=[dict(in_field=b[0], out_field=b[1], weights=b[3] - b[2],
                            fields=[b[4], b[5]], elements=b[6]) for b in basis.weight_blocks],
        irreps_pairs=pairs, stored_bytes=basis.stored_bytes, padded_bytes=basis.padded_bytes,
        plan_bytes=basis.plan.nbytes,
        settings=dict(rings=list(s.rings), sigma=list(s.sigma),
                      cutoff_per_ring=list(s.cutoff_per_ring),
                      maximum_frequency=s.maximum_frequency, maximum_offset=s.maximum_offset),
        build_seconds=secs)


def _kib(n):
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MiB"


def _cmd_info(args) -> int:
    basis, secs = build_basis(args)
    d = _info_dict(basis, secs)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    s = d["settings"]
    print(_describe(basis))
    axes = ", ".join("k" * len(basis.filter_shape))
    print(f"  filter shape (C_out, C_in, {axes}): {tuple(d['filter'])}; bias parameters: "
          f"{d['num_bias']}")
    print(f"  rings {s['rings']}\n  sigma {s['sigma']}\n  frequency cut-off per ring "
          f"{s['cutoff_per_ring']} (maximum frequency {s['maximum_frequency']}, maximum "
          f"offset {s['maximum_offset']})")
    ref = "escnn" if len(basis.filter_shape) == 3 else "e2cnn"
    print(f"  memory: irreps-level basis {_kib(d['stored_bytes'])} vs {ref}-style padded "
          f"basis {_kib(d['padded_bytes'])} ({d['padded_bytes'] / max(d['stored_bytes'], 1):.1f}"
          f"×); whole plan {_kib(d['plan_bytes'])}")
    print(f"  {len(d['irreps_pairs'])} irreps pairs (elements per pair × blocks using it):")
    for p in d["irreps_pairs"]:
        print(f"    {p['in_irrep']:>12} → {p['out_irrep']:<12} {p['shape'][0]}×{p['shape'][1]}"
              f"  {p['elements']:3d} elements × {p['blocks']:4d} blocks  frequencies "
              f"{p['frequencies']}")
    print(f"  {len(d['weight_blocks'])} weight blocks ({ref} order):")
    for b in d["weight_blocks"]:
        print(f"    {b['in_field']:>22} → {b['out_field']:<22} {b['fields'][0]}×"
              f"{b['fields'][1]} fields × {b['elements']} = {b['weights']} weights")
    print(f"  built in {secs:.3f} s")
    return 0


# ---- check ------------------------------------------------------------------------------
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


def _cmd_check(args) -> int:
    from .basis import LayerBasis
    dtype = np.dtype(args.dtype)
    tol = args.tol if args.tol is not None else (1e-9 if dtype == np.float64 else 1e-5)
    if args.samples < 0:
        raise UsageError("--samples", f"must be >= 0, got {args.samples}")
    basis, secs = build_basis(args)
    w, how = _load_weights(args.weights, basis, args.seed, dtype)
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
    kw = _resolved_kwargs(args, G)
    for g in other:
        moved = pts @ (np.asarray(g) if G.space_dimension == 3 else G.action_matrix(g)).T
        rb = LayerBasis(basis.in_type, basis.out_type, points=moved, cache=False, **kw)
        Kg = np.asarray(rb.expand(w), np.float64).reshape(K.shape)  # K(g·p)
        sampled.append((g, float(np.abs(Kg - target(g)).max() / scale)))

    worst = max([e for _, e in grid + sampled], default=0.0)
    passed = worst <= tol
    report = dict(layer=_describe(basis), weights=how, dtype=str(dtype), tolerance=tol,
                  relative_to="max |K|", grid=[dict(element=_fmt_element(G, g), action=_element_label(G, g),
                                                     error=e, ok=e <= tol) for g, e in grid],
                  sampled_method="basis rebuilt on the grid points moved by g: K_g(p) = K(g·p) "
                                 "compared with rho_out(g) K(p) rho_in(g)^T",
                  sampled=[dict(element=_fmt_element(G, g), action=_element_label(G, g), error=e,
                                ok=e <= tol) for g, e in sampled],
                  max_error=worst, passed=passed)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if passed else 1
    print(f"check {report['layer']}")
    print(f"  {how}, {dtype} filters; errors are max |K(g·p) − ρ_out(g) K(p) ρ_in(g)ᵀ| / "
          f"max |K|, tolerance {tol:g}")
    print(f"  {len(grid)} elements map the {'×'.join(map(str, basis.filter_shape))} grid onto "
          f"itself (exact check on the sampled filter):")
    for g, e in grid:
        print(f"    {_fmt_element(G, g):>16}  {_element_label(G, g)}  error {e:.2e}  "
              f"{'ok' if e <= tol else 'FAIL'}")
    if sampled:
        kind = "all" if G.is_finite and len(sampled) == n_other else "sampled"
        print(f"  {len(sampled)} other elements ({kind}; the basis is rebuilt on the grid "
              f"points moved by g and K(g·p) is compared with ρ_out(g) K(p) ρ_in(g)ᵀ, no "
              f"interpolation):")
        for g, e in sampled:
            print(f"    {_fmt_element(G, g):>16}  {_element_label(G, g)}  error {e:.2e}  "
                  f"{'ok' if e <= tol else 'FAIL'}")
    else:
        print("  no other elements")
    print(f"{'PASS' if passed else 'FAIL'}: max error {worst:.2e} "
          f"{'<=' if passed else '>'} tolerance {tol:g}")
    return 0 if passed else 1


# ---- bench ------------------------------------------------------------------------------
def _time(fn, repeat, sync=lambda: None):
    fn()
    sync()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), float(np.min(ts))


def _cmd_bench(args) -> int:
    from .basis import LayerBasis
    if args.repeat < 1:
        raise UsageError("--repeat", f"must be >= 1, got {args.repeat}")
    if args.batch < 1:
        raise UsageError("--batch", f"must be >= 1, got {args.batch}")
    dtype = np.dtype(args.dtype)
    basis, secs = build_basis(args)
    t = time.perf_counter()
    LayerBasis(basis.in_type, basis.out_type, cache=False,
               **_resolved_kwargs(args, basis.in_type.group))
    cold = time.perf_counter() - t
    shape = (args.batch, basis.dim) if args.batch > 1 else (basis.dim,)
    rng = np.random.default_rng(args.seed)
    w = rng.standard_normal(shape).astype(dtype)
    G = rng.standard_normal(shape[:-1] + basis.shape).astype(dtype)
    rows = [("numpy", "expand", *_time(lambda: basis.expand(w), args.repeat)),
            ("numpy", "adjoint", *_time(lambda: basis.adjoint(G), args.repeat))]
    cupy_note = None
    try:
        from .backends import cupy_backend
        available = cupy_backend.is_available()
    except Exception as exc:  # pragma: no cover - broken optional backend
        available, cupy_note = False, f"CuPy backend not importable ({exc})"
    if available:
        cp = cupy_backend.import_cupy()
        wd, Gd = cp.asarray(w), cp.asarray(G)
        sync = cp.cuda.get_current_stream().synchronize
        rows += [("cupy", "expand", *_time(lambda: basis.expand(wd), args.repeat, sync)),
                 ("cupy", "adjoint", *_time(lambda: basis.adjoint(Gd), args.repeat, sync))]
    elif cupy_note is None:
        cupy_note = "CuPy: not available (no CuPy or no CUDA device), skipped"
    result = dict(layer=_describe(basis), dtype=str(dtype), batch=args.batch,
                  repeat=args.repeat, basis_build_seconds=cold,
                  timings=[dict(backend=b, op=o, median_ms=m * 1e3, min_ms=n * 1e3)
                           for b, o, m, n in rows], note=cupy_note)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"bench {result['layer']}, {dtype}, batch {args.batch}, {args.repeat} repeats")
    print(f"  basis build (no cache): {cold * 1e3:9.2f} ms")
    for b, o, m, n in rows:
        print(f"  {b:6s} {o:8s} median {m * 1e3:9.3f} ms   min {n * 1e3:9.3f} ms")
    if cupy_note:
        print(f"  {cupy_note}")
    return 0


# ---- demo -------------------------------------------------------------------------------
def _demo(args) -> int:
    import cupysteer as cs
    from cupysteer.equivariance import equivariance_errors

    if args.N < 1:
        raise UsageError("--N", f"must be >= 1, got {args.N}")
    if args.fields < 1:
        raise UsageError("--fields", f"must be >= 1, got {args.fields}")
    if args.size < 1:
        raise UsageError("--size", f"must be >= 1, got {args.size}")
    G = cs.CyclicGroup(args.N) if not args.dihedral else cs.DihedralGroup(args.N)
    print(f"group {G.name}: {G.order} elements")
    for psi in G.irreps():
        print(f"  {psi.name:12s} dim {psi.dim}  frequency {psi.frequency}  "
              f"flip frequency {psi.flip_frequency}")
    reg = G.regular_representation
    print(f"regular representation (size {reg.size}) = "
          + " ⊕ ".join(f"{m}×{psi.name}" for psi, m in reg.multiplicities().items()))
    ftype = cs.FieldType(G, [reg] * args.fields)
    basis = cs.LayerBasis(ftype, ftype, kernel_size=args.size)
    w = basis.init_weights(np.random.default_rng(args.seed), dtype=np.float64)
    filt = basis.expand(w)
    print(f"layer {args.fields}×regular → {args.fields}×regular, {args.size}×{args.size}: "
          f"{basis.dim} weights, filter {filt.shape}, stored basis {basis.stored_bytes} B "
          f"(e2cnn-style padded basis: {basis.padded_bytes} B)")
    errs = equivariance_errors(basis, filt)
    print(f"equivariance on the {len(errs)} grid symmetries: max relative error "
          f"{max(errs.values()):.2e}")
    return 0


# ---- parser -----------------------------------------------------------------------------
def _layer_arguments(p, weights_default=None):
    from .fields_spec import (FIELD_SPELLINGS, FIELD_SPELLINGS_3D, GROUP_SPELLINGS,
                              GROUP_SPELLINGS_3D)
    g = p.add_argument_group("layer")
    g.add_argument("--group", default="C8", help=f"symmetry group (default C8): "
                                                 f"{GROUP_SPELLINGS}; acting on R³ (k×k×k "
                                                 f"filters, escnn R3Conv): {GROUP_SPELLINGS_3D}")
    g.add_argument("--in", dest="in_fields", default="regular", metavar="FIELDS",
                   help=f"input fields (default regular): {FIELD_SPELLINGS}; for groups "
                        f"acting on R³: {FIELD_SPELLINGS_3D}")
    g.add_argument("--out", dest="out_fields", default=None, metavar="FIELDS",
                   help="output fields (default: the same as --in)")
    g.add_argument("--size", "-k", type=int, default=5, help="kernel size k (default 5)")
    g.add_argument("--dilation", type=int, default=1, help="dilation (default 1)")
    g.add_argument("--rings", default=None, metavar="R0,R1,...",
                   help="ring (3D: shell) radii in pixels (default: e2cnn's / escnn's, "
                        "0..(k-1)//2 × dilation)")
    g.add_argument("--sigma", default=None, metavar="S or S0,S1,...",
                   help="ring widths (default: 0.6, 0.4 on the last ring, 0.005 at radius 0)")
    g.add_argument("--cutoff", default=None, metavar="C",
                   help="frequency cut-off: a positive float c (max frequency, 3D: harmonic "
                        "degree, c·r on ring r) or a policy -1 (default), -2, -3 (see "
                        "cupysteer.settings, cupysteer.r3.settings)")
    g.add_argument("--max-offset", type=int, default=None,
                   help="largest alias offset |t| of the frequencies (default: no limit; "
                        "planar groups only)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output on stderr")
    if weights_default is not None:
        p.add_argument("--weights", default=weights_default,
                       metavar="random|he|FILE",
                       help="weights to expand: standard normal, generalised He, or a .npy / "
                            ".npz file (array 'weights') of shape (dim,)"
                            + ("" if weights_default is False else
                               f" (default {weights_default})"))
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--dtype", choices=("float32", "float64"),
                       default="float32" if weights_default is False else "float64",
                       help="dtype of the weights and filters")


def make_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="cupysteer", formatter_class=fmt,
                     description="G-steerable convolution filters (rotations and reflections "
                                 "of the plane, and subgroups of O(3) acting on R³) from the "
                                 "command line.",
                     epilog="run 'cupysteer COMMAND --help' for the options and examples of "
                            "each command\n\n" + _EXAMPLES["basis"].split("\n\n")[0])
    from . import __version__
    parser.add_argument("--version", action="version", version=f"cupysteer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    p = sub.add_parser("basis", help="write the irreps-level basis, the plan and (with "
                                     "--weights) a filter bank to .npz; draw a PNG gallery",
                       formatter_class=fmt, epilog=_EXAMPLES["basis"],
                       description=textwrap.fill(
                           "Sample a layer's steerable basis and write it to .npz (plain "
                           "arrays) and/or a PNG gallery (rows = irreps pairs, columns = basis "
                           "elements).", 88))
    _layer_arguments(p, weights_default=False)
    p.set_defaults(weights=None)
    p.add_argument("-o", "--output", default=None, metavar="FILE.npz", help="the .npz to write")
    p.add_argument("--png", default=None, metavar="FILE.png",
                   help="gallery of the basis (titled with matplotlib, "
                        'pip install "cupysteer[plot]"; without it an untitled picture)')
    p.add_argument("--filters-png", default=None, metavar="FILE.png",
                   help="picture of the expanded filter bank (needs --weights)")
    p.add_argument("--max-columns", type=int, default=12,
                   help="basis elements drawn per irreps pair (default 12)")
    p.set_defaults(func=_cmd_basis)

    p = sub.add_parser("info", help="dimension, blocks, memory and resolved settings of a layer",
                       formatter_class=fmt, epilog=_EXAMPLES["info"])
    _layer_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("check", help="equivariance report of the expanded filters",
                       formatter_class=fmt, epilog=_EXAMPLES["check"],
                       description=textwrap.fill(
                           "Expand weights to filters and measure max|K(g·p) − ρ_out(g) K(p) "
                           "ρ_in(g)ᵀ| / max|K| for every group element that maps the grid onto "
                           "itself, and for other elements (all of them for small finite groups, "
                           "--samples otherwise) on the basis rebuilt at the rotated points. "
                           "Exit status 1 when an error exceeds the tolerance.", 88))
    _layer_arguments(p, weights_default="he")
    p.add_argument("--tol", type=float, default=None,
                   help="tolerance on the relative error (default 1e-9 for float64, 1e-5 "
                        "for float32)")
    p.add_argument("--samples", type=int, default=8,
                   help="non-grid elements to check: at most this many of a finite group, "
                        "exactly this many random ones of SO2/O2 (default 8)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("bench", help="time expand/adjoint on NumPy (and CuPy if present)",
                       formatter_class=fmt, epilog=_EXAMPLES["bench"])
    _layer_arguments(p)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--batch", type=int, default=1, help="weight vectors per call (default 1)")
    p.add_argument("--repeat", type=int, default=20, help="timed calls (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("demo", help="print a group's irreps, the regular representation's "
                                    "decomposition, and build, expand and check a layer",
                       formatter_class=fmt, epilog=_EXAMPLES["demo"])
    p.add_argument("--N", type=int, default=8, help="rotation order (default 8)")
    p.add_argument("--dihedral", action="store_true", help="use D_N instead of C_N")
    p.add_argument("--fields", type=int, default=4, help="regular fields in and out")
    p.add_argument("--size", type=int, default=5, help="kernel size")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)
    return parser


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    prog = f"cupysteer {args.command}"
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except ValueError as exc:  # anything the library rejects, still one line
        print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # a size refused before allocation (cupysteer._memory)
        print(f"{prog}: error: {' '.join(str(exc).split()) or 'out of memory'}",
              file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `cupysteer info … | head`
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # pragma: no cover
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
