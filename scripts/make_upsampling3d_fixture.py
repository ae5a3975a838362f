"""escnn 1.0.11's R3Upsampling outputs: tests/data/restriction/escnn_upsampling3d.npz.

Runs under escnn's virtual environment (never imports cupysteer)::

    /tmp/escnn-venv/bin/python scripts/make_upsampling3d_fixture.py [OUT_DIR]

An octahedral field type [standard, trivial] (4 channels), a seeded [2, 4, 3, 3, 3] float64
input and escnn's ``R3Upsampling`` output for each setting of SETTINGS (key ``out_<i>``;
the settings and versions are in the ``meta`` entry, JSON).
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
from escnn import gspaces  # noqa: E402
from escnn import nn as enn  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "data" / "restriction"

SETTINGS = [{"scale_factor": 2, "mode": "trilinear"},
            {"scale_factor": 2, "mode": "trilinear", "align_corners": True},
            {"scale_factor": 2, "mode": "nearest"},
            {"size": 5, "mode": "trilinear"}]


def main():
    gs = gspaces.octaOnR3()
    ftype = enn.FieldType(gs, [gs.fibergroup.standard_representation, gs.trivial_repr])
    x = torch.randn(2, ftype.size, 3, 3, 3, generator=torch.Generator().manual_seed(5),
                    dtype=torch.float64)
    arrays = {"input": x.numpy()}
    for i, kw in enumerate(SETTINGS):
        y = enn.R3Upsampling(ftype, **kw)(enn.GeometricTensor(x, ftype)).tensor
        arrays[f"out_{i}"] = y.detach().numpy()
    meta = {"made_by": "scripts/make_upsampling3d_fixture.py", "settings": SETTINGS,
            "field_type": "octaOnR3: [standard, trivial]",
            "versions": {p: metadata.version(p) for p in ("escnn", "torch", "numpy")}}
    arrays["meta"] = np.array(json.dumps(meta))
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "escnn_upsampling3d.npz", **arrays)
    print(f"{len(SETTINGS)} settings -> {OUT / 'escnn_upsampling3d.npz'}")


if __name__ == "__main__":
    main()
