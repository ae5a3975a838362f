"""e2cnn 0.2.3's restriction, disentangling and upsampling results: tests/data/restriction/.

Runs under the e2cnn virtual environment's python (NumPy 1.26, torch CPU, e2cnn 0.2.3), never
under the project's python; it does not import cupysteer::

    /tmp/e2cnn-venv/bin/python scripts/make_restriction_fixtures.py [OUT_DIR]

For every case of CASES (a gspace, its field type's representations and a subgroup id, in
the spellings below), e2cnn's ``FieldType.restrict(id)`` and ``DisentangleModule`` give:

* ``restrict``: the restricted field type, per field its irreps' names and change of basis,
  and the subgroup's testing elements with the parent elements (``parent_mapping``) and the
  restricted fibre representation ρ_H(h) on each;
* ``disentangle``: for the restricted field type (and the unrestricted one), per field the
  permutation matrix of ``e2cnn.group.disentangle`` and the representations it returns
  (irreps' names, change of basis), and ``DisentangleModule``'s output on a seeded input;
* ``upsampling``: ``R2Upsampling`` outputs on a seeded [2, C, 5, 5] input for every mode.

Saved as ``cases.json`` (small matrices as nested lists) and ``arrays.npz`` (inputs and
outputs, float64). Spellings: gspace ``["rot", N, max_freq]`` (N = -1: SO(2)) or
``["fliprot", N, max_freq]`` (axis π/2); representation ``"regular"``, ``"trivial"``,
``["irrep", *id]``, ``["quotient", id]`` or ``["sum", [rep, …]]`` (``directsum``).
"""
from __future__ import annotations

import json
import sys
import warnings
from importlib import metadata
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from e2cnn import gspaces  # noqa: E402
from e2cnn import nn as enn  # noqa: E402
from e2cnn.group import directsum, disentangle  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "data" / "restriction"

REGULAR_ETC = ["regular", "trivial"]
CASES = [
    (["rot", 8, 6], REGULAR_ETC + [["irrep", 1], ["irrep", 2], ["irrep", 4],
                                   ["quotient", 2]], 4),
    (["rot", 8, 6], REGULAR_ETC + [["irrep", 3]], 2),
    (["rot", 6, 6], REGULAR_ETC + [["irrep", 1], ["irrep", 3]], 3),
    (["rot", 4, 6], REGULAR_ETC + [["irrep", 1]], 1),
    (["fliprot", 4, 6], REGULAR_ETC + [["irrep", 1, 1], ["irrep", 1, 2], ["irrep", 1, 0],
                                       ["quotient", [None, 2]]], [0, 2]),
    (["fliprot", 4, 6], REGULAR_ETC + [["irrep", 1, 1], ["irrep", 0, 2]], [None, 4]),
    (["fliprot", 4, 6], REGULAR_ETC + [["irrep", 1, 1], ["irrep", 1, 2]], [0, 1]),
    (["fliprot", 4, 6], REGULAR_ETC + [["irrep", 1, 1]], [1, 1]),
    (["fliprot", 6, 6], REGULAR_ETC + [["irrep", 1, 1], ["irrep", 1, 3],
                                       ["sum", [["irrep", 1, 2], ["irrep", 0, 0]]]], [1, 3]),
    (["fliprot", 3, 6], REGULAR_ETC + [["irrep", 1, 1]], [None, 1]),
    (["rot", -1, 3], ["trivial", ["irrep", 1], ["irrep", 2], ["irrep", 3]], 4),
    (["fliprot", -1, 3], ["trivial", ["irrep", 1, 1], ["irrep", 1, 2], ["irrep", 1, 0]],
     [None, -1]),
    (["fliprot", -1, 3], ["trivial", ["irrep", 1, 1], ["irrep", 1, 2], ["irrep", 1, 0]],
     [0.0, 1]),
    (["fliprot", -1, 3], ["trivial", ["irrep", 1, 1], ["irrep", 1, 3]], [None, 4]),
]


def gspace(spec):
    kind, N, f = spec
    f = f if N == -1 else None
    if kind == "rot":
        return gspaces.Rot2dOnR2(N, maximum_frequency=f)
    return gspaces.FlipRot2dOnR2(N, maximum_frequency=f)


def _id(v):
    return tuple(v) if isinstance(v, list) else v


def representation(gs, spec):
    G = gs.fibergroup
    if spec == "regular":
        return gs.regular_repr
    if spec == "trivial":
        return gs.trivial_repr
    if spec[0] == "irrep":
        return G.irrep(*spec[1:])
    if spec[0] == "quotient":
        return gs.quotient_repr(_id(spec[1]))
    return directsum([representation(gs, s) for s in spec[1]])


def element(e):
    """An e2cnn element as JSON: int, float or [flip, rotation]."""
    if isinstance(e, tuple):
        return [int(e[0]), float(e[1]) if isinstance(e[1], float) else int(e[1])]
    return float(e) if isinstance(e, float) else int(e)


def rep_json(r):
    return {"name": r.name, "irreps": list(r.irreps), "size": r.size,
            "change_of_basis": np.asarray(r.change_of_basis, np.float64).tolist()}


def disentangled(ftype, arrays, key):
    fields = []
    for r in ftype.representations:
        P, reps = disentangle(r)
        fields.append({"permutation": np.asarray(P).round().astype(int).tolist(),
                       "reps": [rep_json(s) for s in reps]})
    x = torch.randn(2, ftype.size, 4, 4, generator=torch.Generator().manual_seed(1),
                    dtype=torch.float32)
    module = enn.DisentangleModule(ftype)
    arrays[f"{key}.disentangle_input"] = x.numpy().astype(np.float64)
    arrays[f"{key}.disentangle_output"] = module(
        enn.GeometricTensor(x, ftype)).tensor.detach().numpy().astype(np.float64)
    return fields


def case(i, spec, reps, sid, arrays):
    gs = gspace(spec)
    ftype = enn.FieldType(gs, [representation(gs, r) for r in reps])
    sub_gs, parent_mapping, _ = gs.restrict(_id(sid))
    restricted = ftype.restrict(_id(sid))
    elements = sub_gs.fibergroup.testing_elements()
    if not isinstance(elements, list):
        elements = list(elements)
    rho = np.stack([restricted.representation(e) for e in elements])
    arrays[f"{i}.rho"] = rho.astype(np.float64)
    return {"gspace": spec, "reps": reps, "id": sid, "subgroup": sub_gs.fibergroup.name,
            "elements": [element(e) for e in elements],
            "parent_elements": [element(parent_mapping(e)) for e in elements],
            "restricted": [rep_json(r) for r in restricted.representations],
            "disentangle_restricted": disentangled(restricted, arrays, f"{i}.restricted"),
            "disentangle": disentangled(ftype, arrays, f"{i}.unrestricted")}


def upsampling(arrays):
    gs = gspaces.FlipRot2dOnR2(4)
    ftype = enn.FieldType(gs, [gs.regular_repr, gs.fibergroup.irrep(1, 1)])
    x = torch.randn(2, ftype.size, 5, 5, generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64)
    arrays["upsampling.input"] = x.numpy()
    out = []
    for kw in ({"scale_factor": 2, "mode": "bilinear"},
               {"scale_factor": 2, "mode": "bilinear", "align_corners": True},
               {"scale_factor": 3, "mode": "nearest"}, {"size": 8, "mode": "bilinear"},
               {"size": 7, "mode": "nearest"}):
        key = "upsampling." + "_".join(f"{k}={v}" for k, v in kw.items())
        y = enn.R2Upsampling(ftype, **kw)(enn.GeometricTensor(x, ftype)).tensor
        arrays[key] = y.detach().numpy()
        out.append({"kwargs": kw, "key": key})
    return {"field_type": ["fliprot", 4, 6], "reps": ["regular", ["irrep", 1, 1]],
            "cases": out}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    arrays = {}
    cases = [case(i, *c, arrays) for i, c in enumerate(CASES)]
    meta = {"made_by": "scripts/make_restriction_fixtures.py",
            "versions": {p: metadata.version(p) for p in ("e2cnn", "torch", "numpy")},
            "cases": cases, "upsampling": upsampling(arrays)}
    (OUT / "cases.json").write_text(json.dumps(meta, indent=1))
    np.savez_compressed(OUT / "arrays.npz", **arrays)
    print(f"{len(cases)} cases, {len(arrays)} arrays -> {OUT}")


if __name__ == "__main__":
    main()
