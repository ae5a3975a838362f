"""Train a small e2cnn 0.2.3 model and save it as plain arrays: tests/data/e2cnn_trained/.

Runs under the e2cnn virtual environment's python (benchmarks/e2cnn_env.sh: NumPy 1.26,
torch 2.13 CPU, e2cnn 0.2.3), never under the project's python; it does not import cupysteer.

    bash benchmarks/e2cnn_env.sh                       # prints the venv's python
    /tmp/e2cnn-venv/bin/python scripts/make_e2cnn_trained_fixture.py [OUT_DIR]

The model (D4 = FlipRot2dOnR2(4), every convolution with bias)::

    conv1  R2Conv [trivial] -> [regular, regular]                       k5, padding 2
    relu1  ReLU on every field (pointwise; regular fields)
    conv2  R2Conv [regular, regular] -> [regular, irrep(1,1), regular]   k3, padding 1
    act2   ReLU on the regular fields, NormNonLinearity('n_relu') on the irrep field
           (its parameter is norm2.log_bias; the bias subtracted from the norm is exp(log_bias))
    conv3  R2Conv [regular, irrep(1,1), regular] -> [trivial] * 3        k3, padding 1

is trained for 30 Adam steps on a synthetic task (random 1x17x17 images; targets: their 3x3
box mean, their square and their absolute value) from fixed seeds, then saved:

* ``model.npz`` (plain float32 arrays, keys named like the model's state_dict): ``convK.weights``,
  ``convK.bias``, ``norm2.log_bias`` (trained); ``convK.filter`` and ``convK.expanded_bias``
  (e2cnn's expansion of them, as in its eval-mode state_dict); ``input`` (4x1x17x17 test batch),
  ``output_eval`` and ``output_train`` (e2cnn's model output on it in eval and train mode);
  ``grad_output`` (a fixed random tensor G) and ``grad.<parameter>`` (the gradients of
  sum(output * G) with respect to every trainable parameter, train mode).
* ``meta.json``: the architecture (gspace and field types in the spellings of
  tests/r2/test_e2cnn_fixtures.py), training settings and loss curve, checks, and versions.

torch >= 2 needs the run-time fix of benchmarks/_e2cnn_driver.py (a bool mask in
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
from e2cnn import gspaces  # noqa: E402
from e2cnn import nn as enn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "data" / "e2cnn_trained"

SEED_INIT, SEED_DATA, SEED_TEST = 7, 8, 9
STEPS, BATCH, SIZE, LR = 30, 8, 17, 1e-2


sys.path.insert(0, str(REPO / "benchmarks"))
from _e2cnn_patch import patch_bool_mask  # noqa: E402

patch_bool_mask()

# ---- architecture (spellings of tests/r2/test_e2cnn_fixtures.py) -------------------------------

GSPACE = {"spec": ["fliprot", 4], "axis": math.pi / 2}
LAYERS = [
    {"name": "conv1", "in_fields": ["trivial"], "out_fields": ["regular", "regular"],
     "kernel_size": 5, "padding": 2},
    {"name": "conv2", "in_fields": ["regular", "regular"],
     "out_fields": ["regular", "irrep:1,1", "regular"], "kernel_size": 3, "padding": 1},
    {"name": "conv3", "in_fields": ["regular", "irrep:1,1", "regular"],
     "out_fields": ["trivial", "trivial", "trivial"], "kernel_size": 3, "padding": 1},
]


def field(gs, spec):
    if spec == "trivial":
        return gs.trivial_repr
    if spec == "regular":
        return gs.regular_repr
    kind, arg = spec.split(":")
    assert kind == "irrep", spec
    return gs.irrep(*(int(a) for a in arg.split(",")))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        gs = gspaces.FlipRot2dOnR2(N=GSPACE["spec"][1], axis=GSPACE["axis"])
        self.types = [enn.FieldType(gs, [field(gs, s) for s in LAYERS[0]["in_fields"]])]
        self.types += [enn.FieldType(gs, [field(gs, s) for s in L["out_fields"]]) for L in LAYERS]
        t0, t1, t2, t3 = self.types
        self.conv1 = enn.R2Conv(t0, t1, kernel_size=5, padding=2, bias=True)
        self.relu1 = enn.ReLU(t1)
        self.conv2 = enn.R2Conv(t1, t2, kernel_size=3, padding=1, bias=True)
        # act2: per field of t2, in order (a slice of channels each)
        self.slices, pos = [], 0
        for spec, rep in zip(LAYERS[1]["out_fields"], t2.representations):
            self.slices.append((spec, pos, pos + rep.size, enn.FieldType(gs, [rep])))
            pos += rep.size
        self.relu2 = enn.ReLU(enn.FieldType(gs, [gs.regular_repr]))
        self.norm2 = enn.NormNonLinearity(enn.FieldType(gs, [field(gs, "irrep:1,1")]),
                                          function="n_relu", bias=True)
        self.conv3 = enn.R2Conv(t2, t3, kernel_size=3, padding=1, bias=True)

    def forward(self, x):
        x = enn.GeometricTensor(x, self.types[0])
        y = self.conv2(self.relu1(self.conv1(x))).tensor
        parts = []
        for spec, lo, hi, t in self.slices:
            module = self.relu2 if spec == "regular" else self.norm2
            parts.append(module(enn.GeometricTensor(y[:, lo:hi], t)).tensor)
        y = enn.GeometricTensor(torch.cat(parts, dim=1), self.types[2])
        return self.conv3(y).tensor


def targets(x):
    return torch.cat([F.avg_pool2d(x, 3, stride=1, padding=1), x * x, x.abs()], dim=1)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED_INIT)
    net = Net()
    params = {k: v for k, v in net.named_parameters() if v.requires_grad}  # not norm2.eps
    init = {k: v.detach().clone() for k, v in params.items()}

    g = torch.Generator().manual_seed(SEED_DATA)
    x_train = torch.randn(BATCH, 1, SIZE, SIZE, generator=g)
    y_train = targets(x_train)
    opt = torch.optim.Adam(params.values(), lr=LR)
    net.train()
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = F.mse_loss(net(x_train), y_train)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    with torch.no_grad():
        losses.append(float(F.mse_loss(net(x_train), y_train)))  # after the last step

    g = torch.Generator().manual_seed(SEED_TEST)
    x_test = torch.randn(4, 1, SIZE, SIZE, generator=g)
    G = torch.randn(4, 3, SIZE, SIZE, generator=g)

    # train mode: output and gradients of sum(output * G)
    net.train()
    net.zero_grad()
    out_train = net(x_test)
    (out_train * G).sum().backward()
    grads = {f"grad.{k}": v.grad.detach().clone() for k, v in params.items()}

    # eval mode (e2cnn caches filter and expanded bias as buffers)
    net.eval()
    with torch.no_grad():
        out_eval = net(x_test)
    state = net.state_dict()

    arrays = {"input": x_test, "output_eval": out_eval, "output_train": out_train,
              "grad_output": G, **grads}
    for k in params:
        arrays[k] = state[k]
    for L in LAYERS:
        for suffix in ("filter", "expanded_bias"):
            arrays[f"{L['name']}.{suffix}"] = state[f"{L['name']}.{suffix}"]
    arrays = {k: np.ascontiguousarray(v.detach().numpy(), dtype=np.float32)
              for k, v in arrays.items()}

    layers = []
    for L in LAYERS:
        conv = getattr(net, L["name"])
        layers.append({**L, "stride": 1, "dilation": 1, "bias": True,
                       "n_params": int(conv.weights.numel()),
                       "n_bias": int(conv.bias.numel()),
                       "filter_shape": list(arrays[f"{L['name']}.filter"].shape)})
    rel_change = {k: float((params[k].detach() - init[k]).norm() / init[k].norm())
                  if float(init[k].norm()) > 0 else None for k in params}
    abs_change = {k: float((params[k].detach() - init[k]).abs().max()) for k in params}
    meta = {
        "generator": "scripts/make_e2cnn_trained_fixture.py",
        "description": "A small D4 e2cnn model trained for 30 Adam steps; see the generator's "
                       "docstring for the architecture and the arrays.",
        "gspace": {**GSPACE, "name": str(net.types[0].gspace.name)},
        "layers": layers,
        "nonlinearities": [
            {"after": "conv1", "fields": {"regular": "relu"}},
            {"after": "conv2", "fields": {"regular": "relu", "irrep:1,1": "norm_relu"},
             "norm_relu": "x * relu(|x| - exp(log_bias)) / max(|x|, eps), 0 where |x| <= eps "
                          "(|x| the norm of the field's channels at each pixel)",
             "parameter": "norm2.log_bias", "eps": 1e-10},
        ],
        "model": "conv1 -> relu -> conv2 -> (relu | norm_relu | relu) -> conv3",
        "training": {"steps": STEPS, "optimizer": "Adam", "lr": LR, "batch": BATCH,
                     "image": [1, SIZE, SIZE], "loss": "mse",
                     "targets": ["avg_pool2d(x, 3, stride=1, padding=1)", "x*x", "abs(x)"],
                     "seeds": {"init": SEED_INIT, "data": SEED_DATA, "test": SEED_TEST},
                     "losses": losses,
                     "relative_change_from_init": rel_change,
                     "max_abs_change_from_init": abs_change},
        "checks": {"max_abs_output_eval_minus_train":
                   float(np.abs(arrays["output_eval"] - arrays["output_train"]).max()),
                   "max_abs_output": float(np.abs(arrays["output_eval"]).max())},
        "e2cnn_eval_state_dict_keys": sorted(state),
        "arrays": {k: list(v.shape) for k, v in arrays.items()},
        "e2cnn_version": metadata.version("e2cnn"),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python": sys.version.split()[0],
        "compat_shim": "bool mask in SingleBlockBasisExpansion.__init__ (run-time patch)",
    }
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "model.npz", **arrays)
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"losses {losses[0]:.4f} -> {losses[-1]:.4f}; "
          f"eval-train {meta['checks']['max_abs_output_eval_minus_train']:.3g}; "
          f"model.npz {(OUT / 'model.npz').stat().st_size} bytes")


if __name__ == "__main__":
    main()
