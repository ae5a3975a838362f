"""A small escnn 1.0.11 octahedral CNN built only from cupysteer modules loads an escnn-trained
checkpoint through ``from_escnn_state_dict`` and gives escnn's outputs.

tests/data/escnn_3d_model (by scripts/make_escnn_3d_model_fixture.py, in the escnn venv): the
model below trained 20 Adam steps, its eval-mode state dict (escnn's ``_basisexpansion``
sampled bases dropped, named in meta.json), 4 test volumes and escnn's outputs in eval and
train mode. escnn's octahedral basis starts from an unseeded random point, so its weights are
refitted from the filters the checkpoint holds. The model class is the one of
docs/migrate_from_escnn.md (checked).
"""
import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cupysteer.compat import escnn as e  # noqa: E402
from cupysteer.compat.checkpoints import from_escnn_state_dict  # noqa: E402
from cupysteer.torch import SteerableConv3d  # noqa: E402
from cupysteer.torch import nn as snn  # noqa: E402

from _paths import DATA, REPO  # noqa: E402

DATA = DATA / "escnn_3d_model"
META = json.loads((DATA / "meta.json").read_text())
Z = dict(np.load(DATA / "model.npz"))


# ---- the port (docs/migrate_from_escnn.md, "A whole model") ------------------------------
class OctaCNN(torch.nn.Module):

    def __init__(self, n_out=4):
        super().__init__()
        gs = e.octaOnR3()
        t0 = e.FieldType(gs, [gs.trivial_repr])
        t1 = e.FieldType(gs, 2 * [gs.regular_repr])
        t2 = e.FieldType(gs, 3 * [gs.regular_repr])
        self.input_type = t0
        self.block1 = torch.nn.Sequential(
            snn.MaskModule(t0, 9, margin=1),
            SteerableConv3d(t0, t1, 3, padding=1),
            snn.InnerBatchNorm(t1),
            snn.ReLU(t1),
        )
        self.pool1 = snn.PointwiseAvgPoolAntialiased3d(t1, sigma=0.6, stride=2)
        self.block2 = torch.nn.Sequential(
            SteerableConv3d(t1, t2, 3, padding=1),
            snn.IIDBatchNorm3d(t2),
            snn.ReLU(t2),
        )
        self.gpool = snn.GroupPooling(t2)
        self.head = torch.nn.Linear(self.gpool.out_type.size, n_out)

    def forward(self, x):
        x = self.gpool(self.block2(self.pool1(self.block1(x))))
        return self.head(x.mean((2, 3, 4)))
# ---- end of the port ------------------------------------------------------------------------


def escnn_state():
    """The fixture's state dict in escnn's key order, the dropped sampled bases as zeros of
    their shapes (derived data the converter ignores)."""
    sd = {k: torch.from_numpy(Z[k]) for k in META["state_dict"] if k in Z}
    for k, shape in META["dropped_derived_entries"].items():
        sd[k] = torch.zeros(shape)
    return {k: sd[k] for k in META["state_dict"]}


@pytest.fixture
def model():
    m = OctaCNN()
    from_escnn_state_dict(m, escnn_state(), load=True)
    return m


def rel(a, b):
    return float(np.abs(a.detach().numpy() - b).max() / np.abs(b).max())


def test_fixture_is_trained():
    losses = META["training"]["losses"]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_outputs_equal_escnn(model, mode):
    model.train(mode == "train")
    with torch.no_grad():
        out = model(torch.from_numpy(Z["input"]))
    assert out.dtype == torch.float32 and out.shape == Z[f"output_{mode}"].shape
    assert rel(out, Z[f"output_{mode}"]) <= 1e-4


@pytest.mark.parametrize("layer", ["block1.1", "block2.0"])
def test_refitted_filters_equal_escnn(model, layer):
    conv = model.get_submodule(layer)
    filt, bias = conv.expand_parameters()
    assert rel(filt, Z[f"{layer}.filter"]) <= 1e-5
    np.testing.assert_allclose(bias.detach().numpy(), Z[f"{layer}.expanded_bias"], atol=1e-6)
    # the refit was needed: escnn's own weights mean another filter in cupysteer's basis
    w = torch.from_numpy(Z[f"{layer}.weights"]).double().numpy()
    assert np.abs(conv.basis.expand(w) - Z[f"{layer}.filter"]).max() > 1e-2


def test_port_is_invariant_under_the_cubes_rotations(model):
    """Every rotation of the cube maps the 9³ grid (and the 5³ grid after the pool) onto
    itself: the float64 port is invariant to 1e-10 (Rz, Rx, Ry by 90° generate O)."""
    m = model.double().eval()
    x = torch.from_numpy(Z["input"]).double()
    with torch.no_grad():
        y = m(x)
        for axes in ((3, 4), (2, 3), (2, 4)):
            for k in (1, 2, 3):
                assert float((m(torch.rot90(x, k, axes)) - y).abs().max()) <= 1e-10


def test_guide_shows_this_model():
    guide = (REPO / "docs" / "migrate_from_escnn.md").read_text()
    src = (REPO / "tests" / "frontends" / "test_escnn_model_port.py").read_text()
    port = re.search(r"(class OctaCNN\(torch\.nn\.Module\):.*?)# ---- end", src,
                     re.S).group(1).strip()
    assert port in guide
