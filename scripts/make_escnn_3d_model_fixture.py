"""Train a small escnn 1.0.11 octahedral 3D CNN briefly and save its checkpoint as plain
arrays: tests/data/escnn_3d_model/.

Runs under the escnn virtual environment's python (benchmarks/escnn_env.sh), never under the
project's python; it does not import cupysteer.

    /tmp/escnn-venv/bin/python scripts/make_escnn_3d_model_fixture.py [OUT_DIR]

The model (O = octaOnR3(), the 24 rotations of the cube; 9×9×9 volumes)::

    block1  MaskModule(t0, 9, margin=1) → R3Conv t0 → 2 regular, k3 p1 → InnerBatchNorm → ReLU
    pool1   PointwiseAvgPoolAntialiased3D(sigma=0.6, stride=2)              (9³ → 5³)
    block2  R3Conv 2 regular → 3 regular, k3 p1 → IIDBatchNorm3d → ReLU
    gpool   GroupPooling → mean over the volume → torch Linear(3, 4)

(escnn's Fourier non-linearities are left out.) It is trained for 20 Adam steps on random
volumes with targets from a fixed random invariant function, then saved:

* ``model.npz``: every entry of escnn's eval-mode ``state_dict()`` except the sampled bases
  (``*_basisexpansion*``, names and shapes in meta.json); each R3Conv's ``filter`` (escnn's
  expansion of its weights in its own, randomly started basis) is kept: cupysteer refits its
  weights from it. ``input``, ``output_eval`` (eval mode) and ``output_train`` (train mode,
  afterwards).
* ``modules.npz``: escnn's outputs of its 3D antialiased pools and MaskModule (MODULE_CASES)
  on random inputs (one regular field of O), ``case<i>.input`` / ``case<i>.output``.
* ``meta.json``: architecture, training, state-dict keys with shapes and dtypes, versions.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from escnn import gspaces, nn  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "data" / "escnn_3d_model"
SEED_INIT, SEED_DATA, SEED_TEST = 21, 22, 23
STEPS, BATCH, LR, SIZE = 20, 8, 1e-2, 9


class OctaCNN(torch.nn.Module):
    def __init__(self, n_out=4):
        super().__init__()
        gs = gspaces.octaOnR3()
        t0 = nn.FieldType(gs, [gs.trivial_repr])
        t1 = nn.FieldType(gs, 2 * [gs.regular_repr])
        t2 = nn.FieldType(gs, 3 * [gs.regular_repr])
        self.input_type = t0
        self.block1 = nn.SequentialModule(
            nn.MaskModule(t0, SIZE, margin=1),
            nn.R3Conv(t0, t1, kernel_size=3, padding=1),
            nn.InnerBatchNorm(t1),
            nn.ReLU(t1),
        )
        self.pool1 = nn.PointwiseAvgPoolAntialiased3D(t1, sigma=0.6, stride=2)
        self.block2 = nn.SequentialModule(
            nn.R3Conv(t1, t2, kernel_size=3, padding=1),
            nn.IIDBatchNorm3d(t2),
            nn.ReLU(t2),
        )
        self.gpool = nn.GroupPooling(t2)
        self.head = torch.nn.Linear(self.gpool.out_type.size, n_out)

    def forward(self, x):
        x = nn.GeometricTensor(x, self.input_type)
        x = self.gpool(self.block2(self.pool1(self.block1(x)))).tensor
        return self.head(x.mean((2, 3, 4)))


MODULE_CASES = [  # (escnn module, keyword arguments, input spatial size)
    ("PointwiseAvgPoolAntialiased3D", {"sigma": 0.6, "stride": 2}, 9),
    ("PointwiseAvgPoolAntialiased3D", {"sigma": 0.4, "stride": 1, "padding": 0}, 5),
    ("PointwiseMaxPoolAntialiased3D", {"kernel_size": 2, "sigma": 0.4}, 6),
    ("MaskModule", {"S": 7, "margin": 1}, 7),
    ("MaskModule", {"S": 8, "margin": 10, "sigma": 1.0}, 8),
]


def module_outputs():
    """``modules.npz``: escnn's output for each MODULE_CASES entry on one regular field of
    O (24 channels)."""
    gs = gspaces.octaOnR3()
    t = nn.FieldType(gs, [gs.regular_repr])
    g = torch.Generator().manual_seed(SEED_TEST + 1)
    arrays = {}
    for i, (name, kw, size) in enumerate(MODULE_CASES):
        x = torch.randn(2, t.size, size, size, size, generator=g)
        with torch.no_grad():
            y = getattr(nn, name)(t, **kw)(nn.GeometricTensor(x, t)).tensor
        arrays[f"case{i}.input"], arrays[f"case{i}.output"] = x.numpy(), y.numpy()
    np.savez_compressed(OUT / "modules.npz", **arrays)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED_INIT)
    net = OctaCNN()
    g = torch.Generator().manual_seed(SEED_DATA)
    x_train = torch.randn(BATCH, 1, SIZE, SIZE, SIZE, generator=g)
    # targets: moments of the masked volume (invariant under the cube's rotations)
    y_train = torch.stack([x_train.mean((1, 2, 3, 4)), (x_train ** 2).mean((1, 2, 3, 4)),
                           x_train.abs().amax((1, 2, 3, 4)), (x_train ** 3).mean((1, 2, 3, 4))],
                          1)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    net.train()
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x_train), y_train)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    x_test = torch.randn(4, 1, SIZE, SIZE, SIZE, generator=torch.Generator().manual_seed(SEED_TEST))
    net.eval()
    with torch.no_grad():
        out_eval = net(x_test)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.train()
    with torch.no_grad():
        out_train = net(x_test)
    dropped = {k: list(v.shape) for k, v in state.items() if "basisexpansion" in k}
    arrays = {k: v.numpy() for k, v in state.items() if k not in dropped}
    arrays = {k: (v if v.dtype == np.int64 else np.ascontiguousarray(v, dtype=np.float32))
              for k, v in arrays.items()}
    arrays.update(input=x_test.numpy(), output_eval=out_eval.numpy(),
                  output_train=out_train.numpy())
    meta = {
        "generator": "scripts/make_escnn_3d_model_fixture.py",
        "description": "A small octahedral escnn model trained 20 Adam steps; see the "
                       "generator's docstring.",
        "training": {"steps": STEPS, "optimizer": "Adam", "lr": LR, "batch": BATCH,
                     "size": SIZE, "losses": losses,
                     "seeds": {"init": SEED_INIT, "data": SEED_DATA, "test": SEED_TEST}},
        "state_dict": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                       for k, v in state.items()},
        "dropped_derived_entries": dropped,
        "arrays": {k: list(v.shape) for k, v in arrays.items()},
        "escnn_version": metadata.version("escnn"),
        "torch_version": torch.__version__, "numpy_version": np.__version__,
        "python": sys.version.split()[0],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "model.npz", **arrays)
    module_outputs()
    meta["module_cases"] = {"in_type": "octaOnR3(), 1 regular field",
                            "cases": [list(c) for c in MODULE_CASES]}
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"losses {losses[0]:.4f} -> {losses[-1]:.4f}; model.npz "
          f"{(OUT / 'model.npz').stat().st_size} bytes; {len(arrays)} arrays")


if __name__ == "__main__":
    main()
