"""A rotation-invariant classifier of 2D point clouds with cupysteer.torch.SteerablePointConv.

Shapes (triangle, square, pentagon, star, ellipse, cross) are sampled as noisy points on their
outlines, randomly rotated and scaled; each cloud is a k-nearest-neighbour graph and a batch is
the disjoint union of its clouds (torch_geometric's batching, without torch_geometric). The
network lifts a constant feature to C8 regular fields, applies two more point convolutions with
ReLU (pointwise on regular fields: equivariant), pools over the group and the points and ends in
a linear layer: exactly invariant to rotations by multiples of 45° and close to invariant for
all others. The default run (``FULL``: 60 Adam steps of 24 clouds of 24 points, 5 neighbours,
four C8 regular fields per layer) reached 61% test accuracy (chance: 17%) with a logit
invariance error of 3.5e-06 under 45° rotations (seed 0, torch 2.13 CPU) in 47.8 s wall /
41.3 s user CPU, training 43.3 s, on the shared 2-core machine under a load average of 25-40
(the previous default, 120 steps of 32 clouds of 40 points: 73%, 120.6 s wall / 137.5 s user
on the same machine); an idle 2-core machine was not available to time it.
``--quick`` is a smoke test of a few steps.

    python examples/point_cloud_classifier.py [--quick]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from torch import nn

import cupysteer as cs
from cupysteer.torch import SteerablePointConv

CLASSES = ("triangle", "square", "pentagon", "star", "ellipse", "cross")


def _outline(kind: str, t: np.ndarray) -> np.ndarray:
    """Points on the outline of a shape at parameters t ∈ [0, 1)."""
    if kind == "ellipse":
        a = 2 * np.pi * t
        return np.stack([1.2 * np.cos(a), 0.6 * np.sin(a)], 1)
    if kind == "cross":
        corners = [(.3, 1), (-.3, 1), (-.3, .3), (-1, .3), (-1, -.3), (-.3, -.3), (-.3, -1),
                   (.3, -1), (.3, -.3), (1, -.3), (1, .3), (.3, .3)]
        v = np.array(corners)
    else:
        n = {"triangle": 3, "square": 4, "pentagon": 5, "star": 10}[kind]
        r = np.where(np.arange(n) % 2, 0.45, 1.0) if kind == "star" else np.ones(n)
        a = 2 * np.pi * np.arange(n) / n
        v = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    s = t * len(v)
    i = np.floor(s).astype(int) % len(v)
    f = (s - np.floor(s))[:, None]
    return (1 - f) * v[i] + f * v[(i + 1) % len(v)]


def make_clouds(n: int, points: int, rng: np.random.Generator):
    labels = rng.integers(0, len(CLASSES), n)
    clouds = []
    for y in labels:
        p = _outline(CLASSES[y], rng.uniform(0, 1, points))
        a = rng.uniform(0, 2 * np.pi)
        R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        clouds.append((p @ R.T) * rng.uniform(0.8, 1.2) + rng.normal(0, 0.02, p.shape))
    return np.stack(clouds), labels


def batch_graph(clouds: np.ndarray, k: int):
    """Disjoint union of k-NN graphs: positions (B·P, 2), edge_index (2, B·P·k), batch."""
    B, P, _ = clouds.shape
    d = np.linalg.norm(clouds[:, :, None] - clouds[:, None], axis=-1)
    nbr = np.argsort(d, axis=-1)[:, :, 1:k + 1]  # (B, P, k) sources of each target
    offs = (np.arange(B) * P)[:, None, None]
    src = (nbr + offs).ravel()
    dst = (np.arange(P)[None, :, None] + offs + 0 * nbr).ravel()
    return (torch.from_numpy(clouds.reshape(-1, 2)).float(),
            torch.from_numpy(np.stack([src, dst])), torch.arange(B).repeat_interleave(P))


class Net(nn.Module):
    def __init__(self, width: int = 4, cutoff: float = 6.0):
        super().__init__()
        G = cs.CyclicGroup(8)
        self.G = G
        triv = cs.FieldType(G, [G.trivial_representation])
        reg = cs.FieldType(G, [G.regular_representation] * width)
        kw = dict(width=0.6, n_rings=3, sigma=0.15, frequencies_cutoff=cutoff)
        self.convs = nn.ModuleList([SteerablePointConv(triv, reg, **kw),
                                    SteerablePointConv(reg, reg, **kw),
                                    SteerablePointConv(reg, reg, **kw)])
        self.width = width
        self.head = nn.Linear(width, len(CLASSES))

    def forward(self, x, edge_index, batch, n_graphs: int):
        h = torch.ones(len(x), 1)
        for conv in self.convs:
            h = torch.relu(conv(h, x, edge_index))
        h = h.reshape(len(x), self.width, 8).amax(-1)  # pool over the group (invariant)
        pooled = torch.zeros(n_graphs, self.width).index_add_(0, batch, h)
        return self.head(pooled / torch.bincount(batch, minlength=n_graphs)[:, None])


#: the default run and ``--quick`` (a smoke test of a few steps on little data)
FULL = dict(n_train=600, n_test=120, steps=60, points=24, batch=24, k=5, width=4,
            cutoff=6.0)
QUICK = dict(n_train=48, n_test=12, steps=3, points=16, batch=12, k=5, width=2,
             cutoff=3.0)


def train(n_train, n_test, steps, points, batch, k, width, cutoff, log=print):
    """Train on random clouds; returns (test accuracy, invariance error, seconds)."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    train, y_train = make_clouds(n_train, points, rng)
    test, y_test = make_clouds(n_test, points, rng)
    net = Net(width, cutoff)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    t0 = time.perf_counter()
    for step in range(steps):
        idx = rng.choice(n_train, batch, replace=False)
        x, ei, b = batch_graph(train[idx], k=k)
        loss = nn.functional.cross_entropy(net(x, ei, b, len(idx)), torch.from_numpy(y_train[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0 or step == steps - 1:
            log(f"step {step:3d}  loss {loss.item():.3f}")
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        x, ei, b = batch_graph(test, k=k)
        logits = net(x, ei, b, len(test))
        acc = (logits.argmax(1).numpy() == y_test).mean()
        R = torch.tensor([[math.cos(math.pi / 4), -math.sin(math.pi / 4)],
                          [math.sin(math.pi / 4), math.cos(math.pi / 4)]])
        err = (net(x @ R.T, ei, b, len(test)) - logits).abs().max().item()
    return float(acc), err, seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few steps on little data")
    a = p.parse_args(argv)
    acc, err, seconds = train(**(QUICK if a.quick else FULL))
    print(f"test accuracy {acc:.2f} ({len(CLASSES)} classes, random rotations), "
          f"trained in {seconds:.1f} s")
    print(f"logit invariance error under a 45° rotation of every cloud: {err:.2e}")
    return acc, err


if __name__ == "__main__":
    main()
