"""A small O-steerable 3D CNN on rotated tetracubes, built with ``cupysteer.torch``.

The data are made here with NumPy (no download): the 8 one-sided tetracubes (I, O, T, L, S,
branch and the two mirror-image screws), each cube a Gaussian blob, rendered into 1×12×12×12
volumes with random sub-voxel shifts, blob jitter and noise. Training volumes are always in
the canonical orientation; test volumes are rotated by random elements of the octahedral
group O (the 24 rotations of the cube, ``cupysteer.r3.Octahedral().elements()``, applied
exactly as permutations of the voxel grid). For a steerable CNN and a plain CNN with a
similar parameter count, trained the same way, it prints

* the accuracy on a canonical test set and on the rotated test set,
* the invariance error of the logits, max |logits(g·x) − logits(x)| over the 24 rotations g
  of a few test volumes.

The steerable network is O-invariant by construction (regular fields of O, pointwise ReLU,
2×2×2 average pooling on even sizes, max over each field's 24 group channels, global average
pooling), so its rotated-test accuracy equals its canonical one and its invariance error is
float32 round-off. O contains no reflection, so the two screws (mirror images of each other,
not related by any rotation) stay distinguishable. The plain CNN only knows one orientation.

    pip install -e ".[torch]"   # from a checkout of cupysteer
    python examples/torch_rotated_volumes.py            # under 1.5 minutes on 2 CPU cores
    python examples/torch_rotated_volumes.py --quick    # a few seconds (CI smoke test)

One run (seed 0, 30 epochs, torch 2.13.0, 2 CPU cores, 80 s in all, 67 s of it training the
steerable CNN): steerable O CNN, 9738 parameters, test accuracy 100.0% canonical and 100.0%
rotated, logit invariance error 5.2e-06 (logits up to 16.7); plain CNN, 10754 parameters,
100.0% canonical and 22.5% rotated, invariance error 2.4e+01 (logits up to 11.8).

``CUPYSTEER_EXAMPLES_QUICK=1`` in the environment also selects the quick mode.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import cupysteer as cs
from cupysteer import r3
from cupysteer.torch import SteerableConv3d

SIZE = 12  # volume side: even, so that two 2×2×2 poolings (12 → 6 → 3) commute with O

# The one-sided tetracubes: unit-cube centres (x, y, z). "screw R" is the mirror image of
# "screw L" (z → −z); no rotation maps one onto the other.
SHAPES = {
    "I": [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0)],
    "O": [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)],
    "T": [(0, 0, 0), (1, 0, 0), (2, 0, 0), (1, 1, 0)],
    "L": [(0, 0, 0), (1, 0, 0), (2, 0, 0), (2, 1, 0)],
    "S": [(0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0)],
    "branch": [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)],
    "screw L": [(1, 0, 0), (0, 0, 0), (0, 1, 0), (0, 1, 1)],
    "screw R": [(1, 0, 0), (0, 0, 0), (0, 1, 0), (0, 1, -1)],
}


# ---- data ---------------------------------------------------------------------------------
def voxel_points(size: int = SIZE) -> np.ndarray:
    """(size³, 3) points (x, y, z) of the voxels, escnn's axes (−z, −y, x), centre at 0."""
    h = (size - 1) / 2
    a, b, c = np.indices((size,) * 3).reshape(3, -1)
    return np.stack([c - h, h - b, h - a], axis=1)


def render(labels: np.ndarray, rng: np.random.Generator, spacing=2.0, sigma=0.7,
           shift=1.0, noise=0.05) -> np.ndarray:
    """Float32 (n, 1, S, S, S) volumes of the shapes ``labels`` in the canonical orientation."""
    pts = voxel_points()
    out = np.empty((len(labels), SIZE ** 3), dtype=np.float32)
    for i, lab in enumerate(labels):
        centres = np.array(list(SHAPES.values())[lab], dtype=np.float64) * spacing
        centres += rng.normal(0, 0.15, centres.shape) - centres.mean(0)  # jitter, centred
        centres += rng.uniform(-shift, shift, 3)
        d2 = ((pts[:, None, :] - centres[None]) ** 2).sum(-1)  # (S³, 4)
        amp = rng.uniform(0.8, 1.2, len(centres))
        out[i] = (amp * np.exp(-d2 / (2 * sigma ** 2))).sum(1) + rng.normal(0, noise, SIZE ** 3)
    return out.reshape(-1, 1, SIZE, SIZE, SIZE)


def rotate(volumes: np.ndarray, g: np.ndarray) -> np.ndarray:
    """g·v for a cube rotation g (3×3): (g·v)(p) = v(g⁻¹ p), an exact voxel permutation."""
    size = volumes.shape[-1]
    h = (size - 1) / 2
    x, y, z = (voxel_points(size) @ g).T  # rows pᵀ g = (g⁻¹ p)ᵀ, as g⁻¹ = gᵀ
    src = np.rint([h - z, h - y, x + h]).astype(int)  # back to indices on axes (−z, −y, x)
    flat = volumes.reshape(*volumes.shape[:-3], -1)
    return flat[..., np.ravel_multi_index(tuple(src), (size,) * 3)].reshape(volumes.shape)


# ---- models ---------------------------------------------------------------------------------
class InnerBatchNorm(nn.Module):
    """Batch norm of regular fields: one mean/variance per field, shared by its |G| channels
    (so it commutes with the group's channel permutations)."""

    def __init__(self, fields: int, group_size: int):
        super().__init__()
        self.g = group_size
        self.bn = nn.BatchNorm1d(fields)

    def forward(self, x):
        n = x.shape[0]
        return self.bn(x.reshape(n, x.shape[1] // self.g, -1)).view(x.shape)


class SteerableCNN(nn.Module):
    def __init__(self, fields=(2, 4, 8), classes: int = len(SHAPES)):
        super().__init__()
        G = r3.Octahedral()
        R = G.regular_representation
        self.g = R.size  # 24
        types = [cs.FieldType(G, [G.trivial_representation])]
        types += [cs.FieldType(G, [R] * f) for f in fields]
        self.convs = nn.ModuleList(
            SteerableConv3d(a, b, k, padding=k // 2, bias=False)
            for a, b, k in zip(types[:-1], types[1:], (5, 3, 3)))
        self.norms = nn.ModuleList(InnerBatchNorm(f, self.g) for f in fields)
        self.head = nn.Linear(fields[-1], classes)

    def forward(self, x):
        for i, (conv, bn) in enumerate(zip(self.convs, self.norms)):
            x = F.relu(bn(conv(x)))
            if i < 2:
                x = F.avg_pool3d(x, 2)  # 12 → 6 → 3
        n, c = x.shape[:2]
        x = x.reshape(n, c // self.g, self.g, -1).amax(2)  # group pooling: invariant fields
        return self.head(x.mean(2))


class PlainCNN(nn.Module):
    def __init__(self, channels=(6, 12, 24), classes: int = len(SHAPES)):
        super().__init__()
        cin = (1,) + channels[:-1]
        self.convs = nn.ModuleList(nn.Conv3d(a, b, k, padding=k // 2, bias=False)
                                   for a, b, k in zip(cin, channels, (5, 3, 3)))
        self.norms = nn.ModuleList(nn.BatchNorm3d(c) for c in channels)
        self.head = nn.Linear(channels[-1], classes)

    def forward(self, x):
        for i, (conv, bn) in enumerate(zip(self.convs, self.norms)):
            x = F.relu(bn(conv(x)))
            if i < 2:
                x = F.avg_pool3d(x, 2)
        return self.head(x.mean((2, 3, 4)))


# ---- training and evaluation ------------------------------------------------------------------
def train(model, n_train: int, epochs: int, rng: np.random.Generator, batch=32, lr=3e-2):
    """Adam + one-cycle; fresh canonical-orientation volumes (new noise/shifts) every epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * -(-n_train // batch))
    y = np.arange(n_train) % len(SHAPES)
    for _ in range(epochs):
        model.train()
        x = torch.from_numpy(render(y, rng))
        perm = torch.from_numpy(rng.permutation(n_train))
        for i in range(0, n_train, batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(x[idx]), torch.from_numpy(y)[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model


@torch.no_grad()
def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


@torch.no_grad()
def invariance_error(model, x: np.ndarray, elements: np.ndarray) -> tuple[float, float]:
    """(max |logits(g·x) − logits(x)| over the volumes x and the elements g, max |logits(x)|)."""
    model.eval()
    ref = model(torch.from_numpy(x))
    err = max(float((model(torch.from_numpy(rotate(x, g))) - ref).abs().max())
              for g in elements)
    return err, float(ref.abs().max())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=None, help="default 30 (quick: 1)")
    p.add_argument("--quick", action="store_true", help="tiny run for CI")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--outdir", default=".", help="unused (nothing is saved); kept for "
                                                 "symmetry with the other examples")
    args = p.parse_args(argv)
    quick = args.quick or os.environ.get("CUPYSTEER_EXAMPLES_QUICK") == "1"
    epochs = args.epochs or (1 if quick else 30)

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    elements = r3.Octahedral().elements()  # (24, 3, 3)
    n_train, n_test = (32, 16) if quick else (256, 240)
    y_test = np.arange(n_test) % len(SHAPES)
    x_canon = render(y_test, rng)
    g_test = rng.integers(0, len(elements), n_test)
    x_rot = np.stack([rotate(v, elements[k]) for v, k in zip(x_canon, g_test)])
    x_inv = x_rot[:2 if quick else 8]
    print(f"tetracubes: {len(SHAPES)} shapes, {SIZE}³ volumes; {n_train} training volumes "
          f"(canonical orientation, fresh noise every epoch), {n_test} test volumes (canonical, "
          f"and rotated by random elements of O); {epochs} epochs")

    results = {}
    for name, model in (("steerable O CNN", SteerableCNN()), ("plain CNN", PlainCNN())):
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        t0 = time.perf_counter()
        train(model, n_train, epochs, np.random.default_rng(args.seed + 1))
        secs = time.perf_counter() - t0
        r = results[name] = {
            "parameters": n_params,
            "canonical_accuracy": accuracy(model, x_canon, y_test),
            "rotated_accuracy": accuracy(model, x_rot, y_test),
            "seconds": secs}
        r["invariance_error"], r["logit_scale"] = invariance_error(model, x_inv, elements)
        print(f"{name:16s} {n_params:6d} parameters  test accuracy canonical "
              f"{r['canonical_accuracy']:6.1%}  rotated {r['rotated_accuracy']:6.1%}  "
              f"trained in {secs:.0f} s\n{'':16s} logit invariance error under the 24 rotations "
              f"{r['invariance_error']:.1e} (logits up to {r['logit_scale']:.1f})")
    return results


if __name__ == "__main__":
    main()
