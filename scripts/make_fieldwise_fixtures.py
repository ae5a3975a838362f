"""Outputs of e2cnn 0.2.3's field-wise modules on fixed inputs: tests/data/fieldwise/e2cnn.npz.

Runs under the e2cnn virtual environment's python, never under the project's; it does not
import cupysteer::

    /tmp/e2cnn-venv/bin/python scripts/make_fieldwise_fixtures.py [OUT_DIR]

For every case (gspace rot2dOnR2(8) = C8), the module is built, its parameters set to seeded
random values (so that they matter; not NormNonLinearity's ``eps``), and saved before
(``<case>.state0.<key>``) and after (``<case>.state1.<key>``) running: two forward passes
in training mode on ``<case>.x1`` and ``<case>.x2`` (outputs ``<case>.train1``/``train2``:
batch statistics, running statistics updated) and one in eval mode on ``<case>.x3``
(``<case>.eval``); the cases of ``MORE_CASES`` with their own generator after
GatedNonLinearity2, and a small whole-model checkpoint (``ckpt.*``, see :func:`checkpoint`).
Float32; 2D maps 4×C×6×6. e2cnn_meta.json lists the cases, their field
types and state-dict keys. FieldDropout's training masks are random: compare its eval output
and the structure of its training output (each field zeroed or scaled by 1/(1 − p)).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch
from e2cnn import gspaces
from e2cnn import nn as enn

torch.manual_seed(0)
torch.set_num_threads(1)
gs = gspaces.Rot2dOnR2(8)
R, I1, I2, T = gs.regular_repr, gs.irrep(1), gs.irrep(2), gs.trivial_repr


def ftype(reps):
    return enn.FieldType(gs, reps)


CASES = {
    "norm_batch_norm": (lambda: enn.NormBatchNorm(ftype([I1, I2, I1, I2, I1])),
                        "[irrep(1), irrep(2), irrep(1), irrep(2), irrep(1)]"),
    "inner_batch_norm": (lambda: enn.InnerBatchNorm(ftype([R, T, R])),
                         "[regular, trivial, regular]"),
    "norm_relu": (lambda: enn.NormNonLinearity(ftype([I1, I2, I1]), "n_relu", bias=True),
                  "[irrep(1), irrep(2), irrep(1)] n_relu"),
    "norm_sigmoid": (lambda: enn.NormNonLinearity(ftype([I2, I1]), "n_sigmoid", bias=True),
                     "[irrep(2), irrep(1)] n_sigmoid"),
    "gated1": (lambda: enn.GatedNonLinearity1(ftype([T, T, I1, I2])),
               "[trivial, trivial, irrep(1), irrep(2)]"),
    "gated1_keep": (lambda: enn.GatedNonLinearity1(
        ftype([T, I1, T, I2]), gates=["gate", "gated", "gate", "gated"], drop_gates=False),
        "[trivial, irrep(1), trivial, irrep(2)] gates interleaved, drop_gates=False"),
    "norm_max_pool": (lambda: enn.NormMaxPool(ftype([I1, I2, R]), 2),
                      "[irrep(1), irrep(2), regular] kernel 2"),
    "norm_max_pool_3s2p1": (lambda: enn.NormMaxPool(ftype([I1, R]), 3, 2, 1),
                            "[irrep(1), regular] kernel 3 stride 2 padding 1"),
    "field_dropout": (lambda: enn.FieldDropout(ftype([I1, R, T]), 0.3),
                      "[irrep(1), regular, trivial] p=0.3"),
}


def randomise(m, gen):
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name == "eps":  # NormNonLinearity's eps: a parameter without gradient in e2cnn
                continue
            if "weight" in name:
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))


def state(m):
    return {k: v.detach().numpy().copy() for k, v in m.state_dict().items()
            if v.dtype.is_floating_point or k.endswith("num_batches_tracked")}


# gates and gated fields of mixed sizes, interleaved (appended: the cases above are unchanged)
MORE_CASES = {
    "gated1_mixed": (lambda: enn.GatedNonLinearity1(
        ftype([T, T, R, I1, T, I1]), gates=["gate", "gate", "gated", "gated", "gate", "gated"],
        drop_gates=False), "[trivial, trivial, regular, irrep(1), trivial, irrep(1)] "
                           "interleaved gates, drop_gates=False"),
}


def checkpoint(arrays, meta):
    """``ckpt.{eval,train}.<key>``: the whole state dicts (derived entries included) of
    R2Conv([trivial] → [trivial]*3 + [irrep(1), irrep(4), irrep(1)], 5) → GatedNonLinearity1
    → NormBatchNorm (field sizes 2, 1, 2) after two training passes, in eval and in training
    mode (the latter without ``filter``); ``ckpt.x``/``ckpt.y``: an eval-mode pass."""
    torch.manual_seed(3)
    tin = ftype([T])
    tmid = ftype([T, T, T, I1, gs.irrep(4), I1])
    m = enn.SequentialModule(enn.R2Conv(tin, tmid, 5), enn.GatedNonLinearity1(tmid),
                             enn.NormBatchNorm(ftype([I1, gs.irrep(4), I1])))
    m.train()
    for _ in range(2):
        m(enn.GeometricTensor(torch.randn(4, 1, 11, 11), tin))
    m.eval()
    x = torch.randn(2, 1, 11, 11)
    arrays.update({"ckpt.x": x.numpy(),
                   "ckpt.y": m(enn.GeometricTensor(x, tin)).tensor.detach().numpy()})
    arrays.update({f"ckpt.eval.{k}": v.numpy() for k, v in m.state_dict().items()})
    m.train()
    arrays.update({f"ckpt.train.{k}": v.numpy() for k, v in m.state_dict().items()})
    meta["cases"]["ckpt"] = {"model": "R2Conv(5) → GatedNonLinearity1 → NormBatchNorm"}


def record(cases, gen, arrays, meta):
    for case, (build, desc) in cases.items():
        m = build()
        randomise(m, gen)
        C = m.in_type.size
        xs = [torch.randn(4, C, 6, 6, generator=gen) for _ in range(3)]
        for k, v in state(m).items():
            arrays[f"{case}.state0.{k}"] = v
        m.train()
        outs = []
        for x in xs[:2]:
            torch.manual_seed(7)
            outs.append(m(enn.GeometricTensor(x, m.in_type)).tensor.detach())
        m.eval()
        outs.append(m(enn.GeometricTensor(xs[2], m.in_type)).tensor.detach())
        for i, x in enumerate(xs):
            arrays[f"{case}.x{i + 1}"] = x.numpy()
        for name, y in zip(("train1", "train2", "eval"), outs):
            arrays[f"{case}.{name}"] = y.numpy()
        for k, v in state(m).items():
            arrays[f"{case}.state1.{k}"] = v
        meta["cases"][case] = {"module": type(m).__name__, "in_type": desc,
                               "state_keys": sorted(state(m))}


def main(out_dir):
    gen = torch.Generator().manual_seed(1)
    arrays, meta = {}, {"e2cnn": "0.2.3", "torch": torch.__version__, "gspace": "Rot2dOnR2(8)",
                        "cases": {}}
    record(CASES, gen, arrays, meta)
    # GatedNonLinearity2: two inputs (gates, gated)
    gates_t, gated_t = ftype([T, T, T]), ftype([I2, I1, I1])
    m = enn.GatedNonLinearity2((gates_t, gated_t))
    g, x = torch.randn(4, 3, 6, 6, generator=gen), torch.randn(4, 6, 6, 6, generator=gen)
    y = m(enn.GeometricTensor(g, gates_t), enn.GeometricTensor(x, gated_t)).tensor.detach()
    arrays.update({"gated2.gates": g.numpy(), "gated2.x": x.numpy(), "gated2.out": y.numpy(),
                   "gated2.bias": m.bias.detach().numpy()})
    meta["cases"]["gated2"] = {"module": "GatedNonLinearity2",
                               "in_type": "([trivial]*3, [irrep(2), irrep(1), irrep(1)])"}
    record(MORE_CASES, torch.Generator().manual_seed(3), arrays, meta)
    checkpoint(arrays, meta)
    os.makedirs(out_dir, exist_ok=True)
    np.savez_compressed(os.path.join(out_dir, "e2cnn.npz"),
                        **{k: np.asarray(v, np.float32 if v.dtype.kind == "f" else v.dtype)
                           for k, v in arrays.items()})
    with open(os.path.join(out_dir, "e2cnn_meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/fieldwise")
