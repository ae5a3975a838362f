"""Point convolutions made by escnn 1.0.11 (R2PointConv / R3PointConv): tests/data/escnn_point/.

Runs under the escnn virtual environment's python (benchmarks/escnn_env.sh; torch_geometric
2.8.1 installed there with ``pip install --no-deps torch-geometric==2.8.1`` plus its missing
pure-Python dependencies xxhash, tqdm, psutil); it does not import cupysteer::

    /tmp/escnn-venv/bin/python scripts/make_escnn_point_fixtures.py [OUT_DIR]

Per case ``<name>.npz`` (float64 arrays; escnn runs in float64 after ``.double()``):
``weights`` (escnn's He init, seed fixed), ``bias``, ``features`` (n, C_in), ``positions``
(n, d), ``edge_index`` (2, E) (row 0 sources, row 1 targets; a few self loops included),
``output`` (escnn's forward, train mode: mean aggregation + expanded bias), ``delta`` (E, d) =
positions[src] − positions[dst] (escnn's edge_delta), ``filters`` (E, C_out, C_in)
(``expand_filter(delta)`` for ``weights``), ``filters_random`` (3, E, C_out, C_in) for three
further random weight vectors (``weights_random``), and per weight its escnn attributes
``attr_radius``, ``attr_frequency``. ``index.json`` lists every case with its cupysteer
spellings (group, in/out fields) and escnn settings.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from escnn import gspaces, nn  # noqa: E402


def _graph(rng, n: int, d: int, radius: float):
    pos = rng.normal(size=(n, d)) * 1.2
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    src, dst = np.nonzero((dist < radius) & (dist > 0))
    keep = rng.permutation(len(src))[:48]
    loops = np.arange(3)
    src = np.concatenate([src[keep], loops])
    dst = np.concatenate([dst[keep], loops])
    return pos, np.stack([src, dst]).astype(np.int64)


def _cases():
    r2 = gspaces.rot2dOnR2(8)
    d4 = gspaces.flipRot2dOnR2(4, axis=0.0)
    so2 = gspaces.rot2dOnR2(-1, maximum_frequency=3)
    o2 = gspaces.flipRot2dOnR2(-1, maximum_frequency=2, axis=0.0)
    octa = gspaces.octaOnR3()
    so3 = gspaces.rot3dOnR3(maximum_frequency=2)
    o3 = gspaces.flipRot3dOnR3(maximum_frequency=2)
    G = d4.fibergroup
    yield ("c8_regular", r2, [r2.regular_repr] * 2, [r2.regular_repr] * 2,
           "C8", "regular*2", "regular*2", dict(width=2.0, n_rings=3))
    yield ("d4_mixed", d4, [d4.trivial_repr, G.irrep(1, 1), d4.regular_repr],
           [d4.regular_repr, G.irrep(0, 0), G.irrep(1, 2)],
           "D4:axis=0.0", "trivial,irrep:1,1,regular", "regular,irrep:0,0,irrep:1,2",
           dict(width=1.5, n_rings=3, frequencies_cutoff=2.0))
    S = so2.fibergroup
    yield ("so2_irreps", so2, [S.irrep(0), S.irrep(1), S.irrep(2)],
           [S.irrep(1), S.irrep(0), S.irrep(3)], "SO2:3", "irrep:0,irrep:1,irrep:2",
           "irrep:1,irrep:0,irrep:3", dict(width=2.0, n_rings=3))
    O = o2.fibergroup
    yield ("o2_irreps", o2, [O.irrep(0, 0), O.irrep(1, 1), O.irrep(1, 2)],
           [O.irrep(1, 0), O.irrep(1, 1), O.irrep(0, 0)], "O2:2:axis=0.0",
           "irrep:0,0,irrep:1,1,irrep:1,2", "irrep:1,0,irrep:1,1,irrep:0,0",
           dict(width=2.0, n_rings=3, frequencies_cutoff=1.0))
    yield ("o_regular", octa, [octa.regular_repr], [octa.regular_repr], "O", "regular",
           "regular", dict(width=1.5, n_rings=2, frequencies_cutoff=1.5))
    H = so3.fibergroup
    yield ("so3_irreps", so3, [H.irrep(0), H.irrep(1), H.irrep(2)],
           [H.irrep(1), H.irrep(0), H.irrep(2), H.irrep(1)], "SO3:2",
           "irrep:0,irrep:1,irrep:2", "irrep:1,irrep:0,irrep:2,irrep:1",
           dict(width=2.0, n_rings=3))
    K = o3.fibergroup
    yield ("o3_irreps", o3, [K.irrep(0, 0), K.irrep(1, 1), K.irrep(0, 2)],
           [K.irrep(1, 0), K.irrep(0, 1), K.irrep(0, 0)], "O3:2",
           "irrep:0,0,irrep:1,1,irrep:0,2", "irrep:1,0,irrep:0,1,irrep:0,0",
           dict(width=2.0, n_rings=3))


def _make(name, gs, rin, rout, kw, seed: int) -> tuple[dict, dict]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tin, tout = nn.FieldType(gs, rin), nn.FieldType(gs, rout)
    conv = (nn.R2PointConv if gs.dimensionality == 2 else nn.R3PointConv)(tin, tout, **kw)
    conv = conv.double()
    with torch.no_grad():
        if conv.bias is not None:
            conv.bias.copy_(torch.from_numpy(rng.normal(size=conv.bias.shape)))
    pos, ei = _graph(rng, 12, gs.dimensionality, 2.5)
    f = rng.normal(size=(len(pos), tin.size))
    x = nn.GeometricTensor(torch.from_numpy(f), tin, coords=torch.from_numpy(pos))
    with torch.no_grad():
        out = conv(x, torch.from_numpy(ei)).tensor.numpy()
        delta = torch.from_numpy(pos[ei[0]] - pos[ei[1]])
        filt = conv.expand_filter(delta).numpy()
        wr = rng.normal(size=(3, conv.weights.numel()))
        fr = np.stack([conv.basissampler(torch.from_numpy(w), delta).numpy() for w in wr])
    info = list(conv.basissampler.get_basis_info())
    arrays = dict(weights=conv.weights.detach().numpy(),
                  bias=(conv.bias.detach().numpy() if conv.bias is not None else np.zeros(0)),
                  features=f, positions=pos, edge_index=ei, output=out, delta=delta.numpy(),
                  filters=filt, weights_random=wr, filters_random=fr,
                  attr_radius=np.array([a["radius"] for a in info]),
                  attr_frequency=np.array([a["irrep:frequency"] for a in info]))
    meta = dict(dim=int(conv.weights.numel()), n_bias=int(arrays["bias"].size),
                rings=[float(r) for r in conv._rings], sigma=[float(s) for s in conv._sigma],
                maximum_frequency=int(conv._maximum_frequency), seed=seed, **kw)
    return arrays, meta


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {}
    for seed, (name, gs, rin, rout, group, fin, fout, kw) in enumerate(_cases()):
        arrays, meta = _make(name, gs, rin, rout, kw, seed)
        np.savez_compressed(out_dir / f"{name}.npz", **arrays)
        index[name] = dict(group=group, in_fields=fin, out_fields=fout, escnn_gspace=gs.name,
                           aggregation="mean", **meta)
        print(name, meta["dim"], arrays["edge_index"].shape, flush=True)
    import escnn
    index["_versions"] = dict(escnn=escnn.__version__, torch=torch.__version__,
                              numpy=np.__version__)
    (out_dir / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else root / "tests" / "data" / "escnn_point")
