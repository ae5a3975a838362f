"""The ``cupysteer`` command (also ``python -m cupysteer``).

Sub-commands: ``basis`` (write a basis and filter bank to .npz, draw it to PNG), ``info``
(dimension, blocks, memory, resolved settings), ``check`` (equivariance report), ``bench``
(expand/adjoint timings) and ``demo``. Groups and fields are spelled as in
:mod:`cupysteer.fields_spec`: planar groups (``C8``, ``D4``, ``SO2``, …) give k×k filters,
groups acting on R³ (``SO3``, ``O3``, ``O``, ``Oh``, ``I``, ``Ih``, ``C8z``, ``D4z``,
``conical4``, ``cyl4``, ``fullcyl4``, ``inv``, ``mir``, ``trivial3``; escnn's ``R3Conv``)
k×k×k filters with the axes (−z, −y, x). Bad input exits with status 2 and a one-line error
that names the argument; a failed ``check`` exits with status 1.

This module holds the parser (:func:`make_parser`), the examples of every command and
:func:`main`; one module per command (:mod:`.basis`, :mod:`.info`, :mod:`.check`,
:mod:`.bench`, :mod:`.demo`) and what they share (:mod:`._common`). The .npz format is
:mod:`cupysteer.io` (``NPZ_FORMAT`` and ``basis_arrays`` are re-exported here for old code).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap

from .._spelling import NUM
from .._version import __version__
from ..fields_spec import FIELD_SPELLINGS, FIELD_SPELLINGS_3D, GROUP_SPELLINGS, GROUP_SPELLINGS_3D
from ..io import NPZ_FORMAT, basis_arrays  # noqa: F401 (re-export for compatibility)
from ._common import UsageError, build_basis
from .basis import cmd_basis
from .bench import BENCH_REPEAT, QUICK_REPEAT, cmd_bench
from .check import cmd_check
from .demo import cmd_demo
from .info import cmd_info

__all__ = ["main", "make_parser", "build_basis", "basis_arrays", "NPZ_FORMAT"]

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
  cupysteer basis --group Oh --in trivial --out regular --kernel-size 3,5,5 \
      --spacing 3,1,1 -o mri.npz              # voxels 3 mm along z (the first axis)

The .npz holds plain arrays only (np.load(..., allow_pickle=False)):
  group, in_fields, out_fields, kernel_size (-1 if not k×…×k), dilation, spacing (per
  filter axis), dim, filter_shape, points (physical),
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
  cupysteer check --group O3 --in "irrep:1,0,std" --out "irrep:0,1,irrep:1,2" --size 5
  cupysteer check --group O --in trivial --out regular --kernel-size 3,5,5 --spacing 3,1,1""",
    "bench": """examples:
  cupysteer bench --group C8 --in "8*regular" --out "8*regular" --size 7
  cupysteer bench --group D4 --in "4*regular" --out "4*regular" --size 5 --batch 16
  cupysteer bench --quick --group C4 --size 3         # a smoke run""",
    "demo": """examples:
  cupysteer demo
  cupysteer demo --group D4 --in "2*regular" --size 3
  cupysteer demo --group O --in regular --size 3 --weights random
  cupysteer demo --N 4 --dihedral --fields 2 --size 3""",
}


def integer(text: str) -> int:
    """An argparse type: an integer in ASCII digits (``int`` alone accepts '٥' and '1_000')."""
    if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
        raise argparse.ArgumentTypeError(f"expected an integer (ASCII digits), got {text!r}")
    return int(text)


def kernel_size(text: str):
    """An argparse type: a kernel size ``5`` or one per filter axis ``5,5,3`` (ASCII digits)."""
    parts = text.replace(" ", "").split(",")
    if not all(re.fullmatch(r"[+-]?[0-9]+", p) for p in parts):
        raise argparse.ArgumentTypeError(f"expected an integer or comma-separated integers "
                                         f"(ASCII digits, one per filter axis, e.g. 5,5,3), "
                                         f"got {text!r}")
    sizes = tuple(int(p) for p in parts)
    return sizes[0] if len(sizes) == 1 else sizes


def number(text: str) -> float:
    """An argparse type: a decimal number in ASCII digits (also nan/inf, for the commands
    to refuse with their own message)."""
    t = text.strip()
    if not (re.fullmatch(NUM, t) or t.lower().lstrip("+-") in ("nan", "inf", "infinity")):
        raise argparse.ArgumentTypeError(f"expected a number (ASCII digits), got {text!r}")
    return float(t)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---- parser -----------------------------------------------------------------------------
def _layer_arguments(p, weights_default=None):
    """--group, --in, --out, the settings, --quiet (and --weights, --seed, --dtype)."""
    g = p.add_argument_group("layer")
    g.add_argument("--group", default="C8", help=f"symmetry group (default C8): "
                                                 f"{GROUP_SPELLINGS}; acting on R³ (k×k×k "
                                                 f"filters, escnn R3Conv): {GROUP_SPELLINGS_3D}")
    g.add_argument("--in", dest="in_fields", default="regular", metavar="FIELDS",
                   help=f"input fields (default regular): {FIELD_SPELLINGS}; for groups "
                        f"acting on R³: {FIELD_SPELLINGS_3D}")
    g.add_argument("--out", dest="out_fields", default=None, metavar="FIELDS",
                   help="output fields (default: the same as --in)")
    g.add_argument("--size", "-k", "--kernel-size", type=kernel_size, default=5,
                   metavar="K or K1,K2[,K3]",
                   help="kernel size k (default 5), or one per filter axis in the filter's "
                        "axis order (2D: H,W; 3D: D1,D2,D3 = -z,-y,x), e.g. 5,5,3")
    g.add_argument("--dilation", type=integer, default=1, help="dilation (default 1)")
    g.add_argument("--spacing", default=None, metavar="S or S1,S2[,S3]",
                   help="physical step of each filter axis, in the filter's axis order "
                        "(default 1: the square/cubic grid), e.g. 3,1,1 for voxels 3 mm "
                        "along z; the basis is sampled at the physical points and the exact "
                        "check runs on the elements that map them onto themselves")
    g.add_argument("--rings", default=None, metavar="R0,R1,...",
                   help="ring (3D: shell) radii in pixels (default: e2cnn's / escnn's, "
                        "0..(k-1)//2 × dilation)")
    g.add_argument("--sigma", default=None, metavar="S or S0,S1,...",
                   help="ring widths (default: 0.6, 0.4 on the last ring, 0.005 at radius 0)")
    g.add_argument("--cutoff", default=None, metavar="C",
                   help="frequency cut-off: a positive float c (max frequency, 3D: harmonic "
                        "degree, c·r on ring r) or a policy -1 (default), -2, -3 (see "
                        "cupysteer.settings, cupysteer.r3.settings)")
    g.add_argument("--max-offset", type=integer, default=None,
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
        p.add_argument("--seed", type=integer, default=0, help="random seed (default 0)")
        p.add_argument("--dtype", choices=("float32", "float64"),
                       default="float32" if weights_default is False else "float64",
                       help="dtype of the weights and filters")


_FMT = argparse.RawDescriptionHelpFormatter


def _add_basis(sub) -> None:
    p = sub.add_parser("basis", help="write the irreps-level basis, the plan and (with "
                                     "--weights) a filter bank to .npz; draw a PNG gallery",
                       formatter_class=_FMT, epilog=_EXAMPLES["basis"],
                       description=textwrap.fill(
                           "Sample a layer's steerable basis and write it to .npz (plain "
                           "arrays) and/or a PNG gallery (rows = irreps pairs, columns = basis "
                           "elements).", 88))
    _layer_arguments(p, weights_default=False)
    p.set_defaults(weights=None)
    p.add_argument("-o", "--output", default=None, metavar="FILE.npz", help="the .npz to write")
    p.add_argument("--png", default=None, metavar="FILE.png",
                   help="gallery of the basis (titled with matplotlib, "
                        'pip install matplotlib; without it an untitled picture)')
    p.add_argument("--filters-png", default=None, metavar="FILE.png",
                   help="picture of the expanded filter bank (needs --weights)")
    p.add_argument("--max-columns", type=integer, default=12,
                   help="basis elements drawn per irreps pair (default 12)")
    p.set_defaults(func=cmd_basis)


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="dimension, blocks, memory and resolved settings of a layer",
                       formatter_class=_FMT, epilog=_EXAMPLES["info"])
    _layer_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)


def _add_check(sub) -> None:
    p = sub.add_parser("check", help="equivariance report of the expanded filters",
                       formatter_class=_FMT, epilog=_EXAMPLES["check"],
                       description=textwrap.fill(
                           "Expand weights to filters and measure max|K(g·p) − ρ_out(g) K(p) "
                           "ρ_in(g)ᵀ| / max|K| for every group element that maps the grid onto "
                           "itself, and for other elements (all of them for small finite groups, "
                           "--samples otherwise) on the basis rebuilt at the rotated points. "
                           "Exit status 1 when an error exceeds the tolerance.", 88))
    _layer_arguments(p, weights_default="he")
    p.add_argument("--tol", type=number, default=None,
                   help="tolerance on the relative error (default 1e-9 for float64, 1e-5 "
                        "for float32)")
    p.add_argument("--samples", type=integer, default=8,
                   help="non-grid elements to check: at most this many of a finite group, "
                        "exactly this many random ones of SO2/O2 (default 8)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_check)


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="time expand/adjoint on NumPy (and CuPy if present)",
                       formatter_class=_FMT, epilog=_EXAMPLES["bench"])
    _layer_arguments(p)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--batch", type=integer, default=1, help="weight vectors per call (default 1)")
    p.add_argument("--repeat", type=integer, default=None,
                   help=f"timed calls (default {BENCH_REPEAT}; {QUICK_REPEAT} with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"a smoke run in well under a second for small layers: "
                        f"{QUICK_REPEAT} timed calls, no separate uncached build")
    p.add_argument("--seed", type=integer, default=0)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="print a group's irreps, the regular representation's "
                                    "decomposition, and build, expand and check a layer",
                       formatter_class=_FMT, epilog=_EXAMPLES["demo"],
                       description=textwrap.fill(
                           "A tour of a group and one layer; it takes the layer options of "
                           "the other commands (default: C8, 4*regular → 4*regular, 5×5).", 88))
    _layer_arguments(p, weights_default="he")
    p.set_defaults(in_fields="4*regular")
    old = p.add_argument_group("shorthands (older spellings of --group and --in)")
    old.add_argument("--N", type=integer, default=None, help="rotation order: --group C<N>")
    old.add_argument("--dihedral", action="store_true", help="with --N: --group D<N>")
    old.add_argument("--fields", type=integer, default=None,
                     help="regular fields in and out: --in <fields>*regular")
    p.set_defaults(func=cmd_demo)


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``cupysteer`` and its sub-commands (``func``: the command to run)."""
    parser = _Parser(prog="cupysteer", formatter_class=_FMT,
                     description="G-steerable convolution filters (rotations and reflections "
                                 "of the plane, and subgroups of O(3) acting on R³) from the "
                                 "command line.",
                     epilog="run 'cupysteer COMMAND --help' for the options and examples of "
                            "each command\n\n" + _EXAMPLES["basis"].split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"cupysteer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    for add in (_add_basis, _add_info, _add_check, _add_bench, _add_demo):
        add(sub)
    return parser


def main(argv=None) -> int:
    """Run ``cupysteer`` with ``argv`` (default: sys.argv[1:]); the exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    prog = f"cupysteer {args.command}"
    try:
        return args.func(args)
    except (UsageError, ValueError, MemoryError) as exc:
        # one line, also for anything the library rejects (ValueError) and for a size refused
        # before allocation (MemoryError, cupysteer._memory)
        message = " ".join(str(exc).split())
        if not message and isinstance(exc, MemoryError):
            message = "out of memory"
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `cupysteer info … | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # pragma: no cover
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
