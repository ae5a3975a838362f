"""Outputs of escnn 1.0.11's Fourier non-linearities and batch norms on fixed inputs:
tests/data/fieldwise/escnn.npz (+ escnn_meta.json).

Runs under the escnn virtual environment's python, never under the project's; it does not
import cupysteer::

    /tmp/escnn-venv/bin/python scripts/make_escnn_fieldwise_fixtures.py [OUT_DIR]

* Fourier cases (``fourier_<name>``): the module's buffers ``A`` and ``Ainv`` and its output
  ``out`` on ``x`` (2D maps 3×C×5×5, 3D maps 2×C×3×3×3; the trivial coefficients made
  positive as escnn's own check does, so that ReLU/ELU act non-trivially).
* Batch-norm cases (``bn_<name>``): parameters set to seeded random values and saved
  (``state0.<key>``), two training-mode passes on ``x1``/``x2`` (``train1``/``train2``), one
  eval-mode pass on ``x3`` (``eval``), the final state (``state1.<key>``), and per
  representation its change of basis (``basis.<name>``); on a copy of the initial module in
  training mode, the gradient ``grad_x`` of sum(out · ``grad_G``) with respect to ``x1``
  (escnn detaches the batch statistics). Parameters are randomised in the
  order of their names (escnn registers them in the order of a set), so reruns are equal.
Float32 everywhere.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch
from escnn import gspaces
from escnn import nn as enn

torch.set_num_threads(1)


class _ContiguousEinsum:
    """escnn 1.0.11's GNormBatchNorm ``.view``s the result of an einsum that torch >= 2 may
    return non-contiguous (a RuntimeError whenever a representation has a change of basis):
    its module sees this proxy of torch, whose einsum returns contiguous tensors (the values
    are unchanged; site-packages untouched)."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def einsum(*args, **kwargs):
        return torch.einsum(*args, **kwargs).contiguous()


_gnorm_module = sys.modules["escnn.nn.modules.batchnormalization.gnorm"]
_gnorm_module.torch = _ContiguousEinsum()


def fourier_cases():
    so2, o2 = gspaces.rot2dOnR2(-1), gspaces.flipRot2dOnR2(-1)
    so3, o3 = gspaces.rot3dOnR3(), gspaces.flipRot3dOnR3()
    return {
        "so2_elu": (lambda: enn.FourierELU(so2, 3, [(0,), (1,), (2,)], N=8), 2),
        "so2_relu_n7": (lambda: enn.FourierPointwise(so2, 2, [(0,), (1,), (2,)], N=7,
                                                     function="p_relu"), 2),
        "o2_elu": (lambda: enn.FourierELU(o2, 2, [(0, 0), (1, 0), (1, 1), (1, 2)], N=8), 2),
        "so3_elu_cube": (lambda: enn.FourierELU(so3, 2, [(0,), (1,)], type="cube"), 3),
        "so3_relu_ico_out": (lambda: enn.FourierPointwise(
            so3, 2, [(0,), (1,), (2,)], type="ico", out_irreps=[(0,), (1,)],
            function="p_relu"), 3),
        "o3_elu_cube": (lambda: enn.FourierELU(o3, 2, [(0, 0), (1, 0), (0, 1), (1, 1)],
                                               type="cube"), 3),
    }


def bn_cases():
    c8 = gspaces.rot2dOnR2(8)
    octa = gspaces.octaOnR3()
    so3 = gspaces.rot3dOnR3()
    R, T, I1 = c8.regular_repr, c8.trivial_repr, c8.irrep(1)
    t2d = enn.FieldType(c8, [R, I1, T, R, I1])
    t3d = enn.FieldType(octa, [octa.regular_repr, octa.fibergroup.standard_representation,
                               octa.trivial_repr])
    so3t = enn.FieldType(so3, [so3.irrep(0), so3.irrep(1), so3.irrep(2), so3.irrep(1)])
    return {
        "iid2d": (lambda: enn.IIDBatchNorm2d(t2d), 2,
                  "C8: [regular, irrep(1), trivial, regular, irrep(1)]"),
        "iid3d": (lambda: enn.IIDBatchNorm3d(t3d), 3,
                  "octahedral: [regular, standard, trivial]"),
        "gnorm2d": (lambda: enn.GNormBatchNorm(t2d), 2,
                    "C8: [regular, irrep(1), trivial, regular, irrep(1)]"),
        "gnorm3d": (lambda: enn.GNormBatchNorm(so3t), 3,
                    "SO(3): [irrep(0), irrep(1), irrep(2), irrep(1)]"),
    }


def randomise(m, gen):
    with torch.no_grad():
        for name, p in sorted(m.named_parameters()):  # escnn registers in set order
            if "weight" in name:
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))


def state(m):
    return {k: v.detach().numpy().copy() for k, v in m.state_dict().items()
            if "indices" not in k}


def positive_trivial(x, m):
    x = x.clone().view(x.shape[0], len(m.in_type), m.rho.size, *x.shape[2:])
    p = 0
    for irr in m.rho.irreps:
        irr = m.space.irrep(*irr)
        if irr.is_trivial():
            x[:, :, p] = x[:, :, p].abs()
        p += irr.size
    return x.view(x.shape[0], -1, *x.shape[3:])


def gradient(build, m, x):
    """grad_x of sum(out · G) in training mode (G seeded), on a copy of the module (a new one
    with its state: escnn's modules do not deepcopy)."""
    copy_ = build()
    copy_.load_state_dict(m.state_dict())
    m = copy_.train()
    x = x.clone().requires_grad_(True)
    out = m(enn.GeometricTensor(x, m.in_type)).tensor
    G = torch.randn(out.shape, generator=torch.Generator().manual_seed(5))
    (out * G).sum().backward()
    return {"grad_G": G.numpy(), "grad_x": x.grad.numpy()}


def checkpoint(arrays, meta):
    """``ckpt.{eval,train}.<key>``: the whole state dicts (derived entries included) of
    R2Conv([trivial] → [trivial]*2 + [irrep(1)]*2, 3) → GatedNonLinearity1 → GNormBatchNorm
    on C4 (a basis from an unseeded random point: the weights mean something only with the
    ``filter``/sampled bases) after two training passes, in eval and in training mode (the
    latter without ``filter``); ``ckpt.x``/``ckpt.y``: an eval-mode pass."""
    torch.manual_seed(3)
    c4 = gspaces.rot2dOnR2(4)
    tin = enn.FieldType(c4, [c4.trivial_repr])
    tmid = enn.FieldType(c4, [c4.trivial_repr] * 2 + [c4.irrep(1)] * 2)
    m = enn.SequentialModule(enn.R2Conv(tin, tmid, 3), enn.GatedNonLinearity1(tmid),
                             enn.GNormBatchNorm(enn.FieldType(c4, [c4.irrep(1)] * 2)))
    m.train()
    for _ in range(2):
        m(enn.GeometricTensor(torch.randn(4, 1, 9, 9), tin))
    m.eval()
    x = torch.randn(2, 1, 9, 9)
    arrays.update({"ckpt.x": x.numpy(),
                   "ckpt.y": m(enn.GeometricTensor(x, tin)).tensor.detach().numpy()})
    arrays.update({f"ckpt.eval.{k}": v.numpy() for k, v in m.state_dict().items()})
    m.train()
    arrays.update({f"ckpt.train.{k}": v.numpy() for k, v in m.state_dict().items()})
    meta["cases"]["ckpt"] = {"model": "C4 R2Conv(3) → GatedNonLinearity1 → GNormBatchNorm"}


def main(out_dir):
    gen = torch.Generator().manual_seed(2)
    arrays, meta = {}, {"escnn": "1.0.11", "torch": torch.__version__, "cases": {}}
    for name, (build, d) in fourier_cases().items():
        m = build().eval()
        size, batch = (5, 3) if d == 2 else (3, 2)
        x = positive_trivial(torch.randn(batch, m.in_type.size, *[size] * d, generator=gen), m)
        y = m(enn.GeometricTensor(x.clone(), m.in_type)).tensor.detach()
        key = f"fourier_{name}"
        arrays.update({f"{key}.x": x.numpy(), f"{key}.out": y.numpy(),
                       f"{key}.A": m.A.numpy(), f"{key}.Ainv": m.Ainv.numpy()})
        meta["cases"][key] = {"module": type(m).__name__, "rho": m.rho.name,
                              "irreps": [list(i) for i in m.rho.irreps]}
    for name, (build, d, desc) in bn_cases().items():
        m = build()
        randomise(m, gen)
        key = f"bn_{name}"
        size, batch = (5, 4) if d == 2 else (3, 3)
        xs = [torch.randn(batch, m.in_type.size, *[size] * d, generator=gen) + 0.5
              for _ in range(3)]
        for k, v in state(m).items():
            arrays[f"{key}.state0.{k}"] = v
        arrays.update({f"{key}.{k}": v for k, v in gradient(build, m, xs[0]).items()})
        m.train()
        outs = [m(enn.GeometricTensor(x, m.in_type)).tensor.detach() for x in xs[:2]]
        m.eval()
        outs.append(m(enn.GeometricTensor(xs[2], m.in_type)).tensor.detach())
        for i, x in enumerate(xs):
            arrays[f"{key}.x{i + 1}"] = x.numpy()
        for o, y in zip(("train1", "train2", "eval"), outs):
            arrays[f"{key}.{o}"] = y.numpy()
        for k, v in state(m).items():
            arrays[f"{key}.state1.{k}"] = v
        uniq = sorted(m.in_type._unique_representations, key=lambda r: r.name)
        for r in uniq:
            arrays[f"{key}.basis.{r.name}"] = r.change_of_basis
        meta["cases"][key] = {"module": type(m).__name__, "in_type": desc,
                              "representations": [r.name for r in uniq],
                              "state_keys": sorted(state(m))}
    checkpoint(arrays, meta)
    os.makedirs(out_dir, exist_ok=True)
    np.savez_compressed(os.path.join(out_dir, "escnn.npz"),
                        **{k: np.asarray(v, np.float32 if np.asarray(v).dtype.kind == "f"
                                         else np.asarray(v).dtype) for k, v in arrays.items()})
    with open(os.path.join(out_dir, "escnn_meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/fieldwise")
