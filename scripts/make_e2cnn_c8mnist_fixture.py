"""Train e2cnn's C8 MNIST model (examples/model.ipynb, ``C8SteerableCNN``) briefly and save its
checkpoint as plain arrays: tests/data/e2cnn_c8mnist/.

Runs under the e2cnn virtual environment's python (benchmarks/e2cnn_env.sh: NumPy 1.26,
torch 2.13 CPU, e2cnn 0.2.3), never under the project's python; it does not import cupysteer.

    /tmp/e2cnn-venv/bin/python scripts/make_e2cnn_c8mnist_fixture.py [OUT_DIR]

The model is e2cnn's ``C8SteerableCNN`` line for line (MaskModule(in_type, 29, margin=1); six
blocks R2Conv → InnerBatchNorm → ReLU(inplace=True); PointwiseAvgPoolAntialiased(sigma=0.66,
stride=2) after blocks 2 and 4, (sigma=0.66, stride=1, padding=0) after block 6; GroupPooling;
torch Linear → BatchNorm1d → ELU → Linear) with one change: the numbers of regular fields are
divided by 8 (24, 48, 48, 96, 96, 64 → 3, 6, 6, 12, 12, 8) so that the fixture stays small.

It is trained for 20 Adam steps (lr 1e-3, batch 32) on synthetic 29×29 "digit-like" images (no
download): class c is a fixed random stroke template (seeded), drawn as Gaussian blobs along
its strokes, rotated by a random angle, shifted by up to one pixel and noised. Saved:

* ``model.npz`` (plain float32 arrays, except ``num_batches_tracked``: int64): every entry of
  e2cnn's eval-mode ``state_dict()`` except the derived ones too large to keep (the R2Conv
  ``filter`` of blocks 3–6 and every ``_basisexpansion.*`` sampled basis: their names and
  shapes are in meta.json); ``input`` (8 test images), ``logits_eval`` and ``logits_train``
  (e2cnn's model output on them in eval mode and, afterwards, in train mode without an
  optimizer step), ``labels``.
* ``modules.npz``: e2cnn's outputs of its antialiased pools and MaskModule (MODULE_CASES) on
  random inputs (2 regular C4 fields), ``case<i>.input`` / ``case<i>.output``.
* ``meta.json``: the architecture, the training settings and losses, the state-dict keys with
  shapes and dtypes, the versions.

torch >= 2 needs the run-time fix of benchmarks/_e2cnn_patch.py (a bool mask in
SingleBlockBasisExpansion.__init__); it is applied here the same way, site-packages untouched.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from e2cnn import gspaces, nn  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "data" / "e2cnn_c8mnist"
sys.path.insert(0, str(REPO / "benchmarks"))
from _e2cnn_patch import patch_bool_mask  # noqa: E402

patch_bool_mask()

SEED_INIT, SEED_TEMPLATES, SEED_DATA, SEED_TEST = 11, 12, 13, 14
STEPS, BATCH, LR, N_TEST = 20, 32, 1e-3, 8
FIELDS = (3, 6, 6, 12, 12, 8)  # e2cnn's example: 24, 48, 48, 96, 96, 64


class C8SteerableCNN(torch.nn.Module):
    """e2cnn's examples/model.ipynb model; only the field multiplicities are FIELDS."""

    def __init__(self, n_classes=10, fields=FIELDS):
        super().__init__()
        self.r2_act = gspaces.Rot2dOnR2(N=8)
        in_type = nn.FieldType(self.r2_act, [self.r2_act.trivial_repr])
        self.input_type = in_type
        out_type = nn.FieldType(self.r2_act, fields[0] * [self.r2_act.regular_repr])
        self.block1 = nn.SequentialModule(
            nn.MaskModule(in_type, 29, margin=1),
            nn.R2Conv(in_type, out_type, kernel_size=7, padding=1, bias=False),
            nn.InnerBatchNorm(out_type),
            nn.ReLU(out_type, inplace=True)
        )
        in_type = self.block1.out_type
        out_type = nn.FieldType(self.r2_act, fields[1] * [self.r2_act.regular_repr])
        self.block2 = nn.SequentialModule(
            nn.R2Conv(in_type, out_type, kernel_size=5, padding=2, bias=False),
            nn.InnerBatchNorm(out_type),
            nn.ReLU(out_type, inplace=True)
        )
        self.pool1 = nn.SequentialModule(
            nn.PointwiseAvgPoolAntialiased(out_type, sigma=0.66, stride=2)
        )
        in_type = self.block2.out_type
        out_type = nn.FieldType(self.r2_act, fields[2] * [self.r2_act.regular_repr])
        self.block3 = nn.SequentialModule(
            nn.R2Conv(in_type, out_type, kernel_size=5, padding=2, bias=False),
            nn.InnerBatchNorm(out_type),
            nn.ReLU(out_type, inplace=True)
        )
        in_type = self.block3.out_type
        out_type = nn.FieldType(self.r2_act, fields[3] * [self.r2_act.regular_repr])
        self.block4 = nn.SequentialModule(
            nn.R2Conv(in_type, out_type, kernel_size=5, padding=2, bias=False),
            nn.InnerBatchNorm(out_type),
            nn.ReLU(out_type, inplace=True)
        )
        self.pool2 = nn.SequentialModule(
            nn.PointwiseAvgPoolAntialiased(out_type, sigma=0.66, stride=2)
        )
        in_type = self.block4.out_type
        out_type = nn.FieldType(self.r2_act, fields[4] * [self.r2_act.regular_repr])
        self.block5 = nn.SequentialModule(
            nn.R2Conv(in_type, out_type, kernel_size=5, padding=2, bias=False),
            nn.InnerBatchNorm(out_type),
            nn.ReLU(out_type, inplace=True)
        )
        in_type = self.block5.out_type
        out_type = nn.FieldType(self.r2_act, fields[5] * [self.r2_act.regular_repr])
        self.block6 = nn.SequentialModule(
            nn.R2Conv(in_type, out_type, kernel_size=5, padding=1, bias=False),
            nn.InnerBatchNorm(out_type),
            nn.ReLU(out_type, inplace=True)
        )
        self.pool3 = nn.PointwiseAvgPoolAntialiased(out_type, sigma=0.66, stride=1, padding=0)
        self.gpool = nn.GroupPooling(out_type)
        c = self.gpool.out_type.size
        self.fully_net = torch.nn.Sequential(
            torch.nn.Linear(c, 64),
            torch.nn.BatchNorm1d(64),
            torch.nn.ELU(inplace=True),
            torch.nn.Linear(64, n_classes),
        )

    def forward(self, input: torch.Tensor):
        x = nn.GeometricTensor(input, self.input_type)
        x = self.block1(x)
        x = self.block2(x)
        x = self.pool1(x)
        x = self.block3(x)
        x = self.block4(x)
        x = self.pool2(x)
        x = self.block5(x)
        x = self.block6(x)
        x = self.pool3(x)
        x = self.gpool(x)
        x = x.tensor
        return self.fully_net(x.reshape(x.shape[0], -1))


def templates(rng, n_classes=10, strokes=3):
    """Per class: ``strokes`` strokes, each a list of points (a random quadratic curve)."""
    out = []
    for _ in range(n_classes):
        pts = []
        for _ in range(strokes):
            a, b, c = rng.uniform(-8, 8, size=(3, 2))
            t = np.linspace(0, 1, 24)[:, None]
            pts.append((1 - t) ** 2 * a + 2 * t * (1 - t) * b + t ** 2 * c)
        out.append(np.concatenate(pts))
    return out


def draw(points, rng):
    """A 29×29 image: Gaussian blobs (σ = 1 px) at the rotated, shifted points, plus noise."""
    angle = rng.uniform(0, 2 * math.pi)
    R = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    p = points @ R.T + rng.uniform(-1, 1, size=2)
    yy, xx = np.mgrid[0:29, 0:29] - 14.0
    img = np.exp(-((xx[..., None] - p[:, 0]) ** 2 + (yy[..., None] - p[:, 1]) ** 2) / 2.0)
    img = np.clip(img.sum(-1), 0, 1) + 0.05 * rng.standard_normal((29, 29))
    return img.astype(np.float32)


def batch(tmpl, rng, n):
    labels = rng.integers(0, len(tmpl), size=n)
    x = np.stack([draw(tmpl[c], rng) for c in labels])[:, None]
    return torch.from_numpy(x), torch.from_numpy(labels)


MODULE_CASES = [  # (e2cnn module, keyword arguments, input spatial size)
    ("PointwiseAvgPoolAntialiased", {"sigma": 0.66, "stride": 2}, 13),
    ("PointwiseAvgPoolAntialiased", {"sigma": 0.66, "stride": 1, "padding": 0}, 5),
    ("PointwiseAvgPoolAntialiased", {"sigma": 1.0, "stride": 3, "padding": 1}, 12),
    ("PointwiseAvgPoolAntialiased", {"sigma": 0.5, "stride": 2}, 10),
    ("PointwiseMaxPoolAntialiased", {"kernel_size": 2}, 12),
    ("PointwiseMaxPoolAntialiased", {"kernel_size": 3, "stride": 2, "padding": 1,
                                     "sigma": 0.4}, 13),
    ("MaskModule", {"S": 13, "margin": 1}, 13),
    ("MaskModule", {"S": 29, "margin": 0}, 29),
    ("MaskModule", {"S": 10, "margin": 20}, 10),
]


def module_outputs():
    """``modules.npz``: e2cnn's output for each MODULE_CASES entry on 2 regular C4 fields."""
    gs = gspaces.Rot2dOnR2(4)
    t = nn.FieldType(gs, 2 * [gs.regular_repr])
    g = torch.Generator().manual_seed(SEED_TEST + 1)
    arrays = {}
    for i, (name, kw, size) in enumerate(MODULE_CASES):
        x = torch.randn(2, t.size, size, size, generator=g)
        with torch.no_grad():
            y = getattr(nn, name)(t, **kw)(nn.GeometricTensor(x, t)).tensor
        arrays[f"case{i}.input"], arrays[f"case{i}.output"] = x.numpy(), y.numpy()
    np.savez_compressed(OUT / "modules.npz", **arrays)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED_INIT)
    net = C8SteerableCNN()
    tmpl = templates(np.random.default_rng(SEED_TEMPLATES))
    rng = np.random.default_rng(SEED_DATA)
    init = {k: v.detach().clone() for k, v in net.named_parameters()}
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    losses = []
    for _ in range(STEPS):
        x, y = batch(tmpl, rng, BATCH)
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))

    x_test, y_test = batch(tmpl, np.random.default_rng(SEED_TEST), N_TEST)
    net.eval()
    with torch.no_grad():
        logits_eval = net(x_test)
    # eval mode: with each R2Conv's filter; copied before the train-mode forward below
    # updates the batch norms' running statistics in place
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.train()
    with torch.no_grad():
        logits_train = net(x_test)

    dropped = {k: list(v.shape) for k, v in state.items() if "_basisexpansion" in k or (
        k.endswith(".filter") and k[:-len("filter")] + "weights" in state
        and v.numel() > 40000)}
    arrays = {k: v.detach().numpy() for k, v in state.items() if k not in dropped}
    arrays = {k: (v if v.dtype == np.int64 else np.ascontiguousarray(v, dtype=np.float32))
              for k, v in arrays.items()}
    arrays.update(input=x_test.numpy(), logits_eval=logits_eval.numpy(),
                  logits_train=logits_train.numpy(), labels=y_test.numpy())
    change = {k: float((v.detach() - init[k]).abs().max()) for k, v in net.named_parameters()
              if v.requires_grad}
    meta = {
        "generator": "scripts/make_e2cnn_c8mnist_fixture.py",
        "description": "e2cnn's C8SteerableCNN (examples/model.ipynb) with the field "
                       "multiplicities divided by 8, trained 20 Adam steps on synthetic "
                       "digit-like images; see the generator's docstring.",
        "fields": list(FIELDS), "fields_in_e2cnn_example": [24, 48, 48, 96, 96, 64],
        "training": {"steps": STEPS, "optimizer": "Adam", "lr": LR, "batch": BATCH,
                     "loss": "cross entropy", "losses": losses,
                     "seeds": {"init": SEED_INIT, "templates": SEED_TEMPLATES,
                               "data": SEED_DATA, "test": SEED_TEST},
                     "max_abs_change_from_init": change},
        "state_dict": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                       for k, v in state.items()},
        "dropped_derived_entries": dropped,
        "arrays": {k: list(v.shape) for k, v in arrays.items()},
        "e2cnn_version": metadata.version("e2cnn"),
        "torch_version": torch.__version__, "numpy_version": np.__version__,
        "python": sys.version.split()[0],
        "compat_shim": "bool mask in SingleBlockBasisExpansion.__init__ (run-time patch)",
    }
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "model.npz", **arrays)
    module_outputs()
    meta["module_cases"] = {"in_type": "Rot2dOnR2(4), 2 regular fields",
                            "cases": [list(c) for c in MODULE_CASES]}
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"losses {losses[0]:.4f} -> {losses[-1]:.4f}; model.npz "
          f"{(OUT / 'model.npz').stat().st_size} bytes; {len(arrays)} arrays, "
          f"{len(dropped)} derived entries dropped")


if __name__ == "__main__":
    main()
