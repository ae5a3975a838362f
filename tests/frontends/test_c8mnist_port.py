"""e2cnn's C8 MNIST model (examples/model.ipynb ``C8SteerableCNN``) built only from cupysteer
modules loads an e2cnn-trained checkpoint through ``from_e2cnn_state_dict`` and gives e2cnn's
logits.

tests/data/e2cnn_c8mnist (by scripts/make_e2cnn_c8mnist_fixture.py, in the e2cnn venv): the
model with its field multiplicities divided by 8, trained 20 Adam steps; its eval-mode state
dict (the larger derived ``filter``/``_basisexpansion`` entries dropped, named in meta.json),
8 test images and e2cnn's logits in eval and train mode. The model class below is the one of
docs/migrate_from_e2cnn.md, character for character (checked).
"""
import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cupysteer.compat import e2cnn as e  # noqa: E402
from cupysteer.compat.checkpoints import from_e2cnn_state_dict  # noqa: E402
from cupysteer.torch import SteerableConv2d  # noqa: E402
from cupysteer.torch import nn as snn  # noqa: E402

from _paths import DATA, REPO  # noqa: E402

DATA = DATA / "e2cnn_c8mnist"
META = json.loads((DATA / "meta.json").read_text())
Z = dict(np.load(DATA / "model.npz"))
FIELDS = tuple(META["fields"])


# ---- the port (docs/migrate_from_e2cnn.md, "A whole model") ------------------------------
class C8SteerableCNN(torch.nn.Module):

    def __init__(self, n_classes=10, fields=(24, 48, 48, 96, 96, 64)):
        super().__init__()
        self.r2_act = e.Rot2dOnR2(N=8)
        in_type = e.FieldType(self.r2_act, [self.r2_act.trivial_repr])
        t = [e.FieldType(self.r2_act, n * [self.r2_act.regular_repr]) for n in fields]
        self.input_type = in_type
        self.block1 = torch.nn.Sequential(
            snn.MaskModule(in_type, 29, margin=1),
            SteerableConv2d(in_type, t[0], 7, padding=1, bias=False),
            snn.InnerBatchNorm(t[0]),
            snn.ReLU(t[0], inplace=True),
        )
        self.block2 = torch.nn.Sequential(
            SteerableConv2d(t[0], t[1], 5, padding=2, bias=False),
            snn.InnerBatchNorm(t[1]),
            snn.ReLU(t[1], inplace=True),
        )
        self.pool1 = torch.nn.Sequential(
            snn.PointwiseAvgPoolAntialiased(t[1], sigma=0.66, stride=2),
        )
        self.block3 = torch.nn.Sequential(
            SteerableConv2d(t[1], t[2], 5, padding=2, bias=False),
            snn.InnerBatchNorm(t[2]),
            snn.ReLU(t[2], inplace=True),
        )
        self.block4 = torch.nn.Sequential(
            SteerableConv2d(t[2], t[3], 5, padding=2, bias=False),
            snn.InnerBatchNorm(t[3]),
            snn.ReLU(t[3], inplace=True),
        )
        self.pool2 = torch.nn.Sequential(
            snn.PointwiseAvgPoolAntialiased(t[3], sigma=0.66, stride=2),
        )
        self.block5 = torch.nn.Sequential(
            SteerableConv2d(t[3], t[4], 5, padding=2, bias=False),
            snn.InnerBatchNorm(t[4]),
            snn.ReLU(t[4], inplace=True),
        )
        self.block6 = torch.nn.Sequential(
            SteerableConv2d(t[4], t[5], 5, padding=1, bias=False),
            snn.InnerBatchNorm(t[5]),
            snn.ReLU(t[5], inplace=True),
        )
        self.pool3 = snn.PointwiseAvgPoolAntialiased(t[5], sigma=0.66, stride=1, padding=0)
        self.gpool = snn.GroupPooling(t[5])
        c = self.gpool.out_type.size
        self.fully_net = torch.nn.Sequential(
            torch.nn.Linear(c, 64),
            torch.nn.BatchNorm1d(64),
            torch.nn.ELU(inplace=True),
            torch.nn.Linear(64, n_classes),
        )

    def forward(self, x: torch.Tensor):
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
        return self.fully_net(x.reshape(x.shape[0], -1))
# ---- end of the port ------------------------------------------------------------------------


def e2cnn_state():
    """The fixture's state dict as e2cnn saved it (tensors), plus its dropped
    ``_basisexpansion`` entries as zero tensors of their shapes (derived data the converter
    ignores; their values were not kept)."""
    sd = {k: torch.from_numpy(Z[k]) for k in META["state_dict"] if k in Z}
    for k, shape in META["dropped_derived_entries"].items():
        if "_basisexpansion" in k:
            sd[k] = torch.zeros(shape)
    return {k: sd[k] for k in META["state_dict"] if k in sd}  # e2cnn's key order


@pytest.fixture
def model():
    m = C8SteerableCNN(fields=FIELDS)
    # the fixture dropped the filters and bases of blocks 3-6 (size): the converter says it
    # copies those weights unchecked (the logits below are the check)
    with pytest.warns(UserWarning, match="copied unchecked"):
        from_e2cnn_state_dict(m, e2cnn_state(), load=True)
    return m


def rel(a, b):
    return float(np.abs(a.detach().numpy() - b).max() / np.abs(b).max())


def test_fixture_is_trained():
    losses = META["training"]["losses"]
    assert losses[-1] < 0.6 * losses[0]
    assert min(META["training"]["max_abs_change_from_init"].values()) > 1e-3


def test_port_has_e2cnn_parameter_counts(model):
    for k, spec in META["state_dict"].items():
        if k.endswith(".weights"):
            conv = model.get_submodule(k[:-len(".weights")])
            assert conv.weights.numel() == int(np.prod(spec["shape"])), k


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_logits_equal_e2cnn(model, mode):
    model.train(mode == "train")
    with torch.no_grad():
        logits = model(torch.from_numpy(Z["input"]))
    model.eval()
    assert logits.dtype == torch.float32 and logits.shape == Z[f"logits_{mode}"].shape
    assert rel(logits, Z[f"logits_{mode}"]) <= 1e-4
    if mode == "eval":  # same predictions as e2cnn
        assert (logits.argmax(1).numpy() == Z["logits_eval"].argmax(1)).all()


def test_kept_filters_equal_e2cnn(model):
    """The two R2Conv filters kept in the fixture: cupysteer's expansion of the loaded
    weights is e2cnn's filter."""
    kept = [k for k in Z if k.endswith(".filter") and k[:-6] + "weights" in Z]
    assert len(kept) == 2
    for k in kept:
        filt, _ = model.get_submodule(k[:-len(".filter")]).expand_parameters()
        assert rel(filt, Z[k]) <= 1e-5, k


def test_batch_norm_statistics_loaded(model):
    bn = model.block3[1]
    got = dict(bn.named_buffers())
    for leaf in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_array_equal(got[f"batch_norm_[8].{leaf}"].numpy(),
                                      Z[f"block3.1.batch_norm_[8].{leaf}"])
    assert int(got["batch_norm_[8].num_batches_tracked"]) == META["training"]["steps"]


def test_port_is_invariant_under_rotations_by_90_degrees(model):
    """e2cnn's model is C8-invariant exactly for the grid's rotations (the mask, the blur, the
    29 → 25 → 13 → 7 → 5 → 1 sizes all keep the grid symmetric)."""
    x = torch.from_numpy(Z["input"]).double()
    m = model.double().eval()
    with torch.no_grad():
        y = m(x)
        for k in (1, 2, 3):
            assert float((m(torch.rot90(x, k, (2, 3))) - y).abs().max()) <= 1e-10


def test_exported_port_gives_e2cnns_logits(model):
    """``cupysteer.torch.nn.export``: every cupysteer module replaced by plain torch (the
    mask by a multiplication, the blurs by depthwise Conv2d)."""
    export = pytest.importorskip("cupysteer.torch.nn.exporting").export
    plain = export(model.eval())
    assert not any(isinstance(m, snn.MaskModule) or type(m).__name__.startswith("Steerable")
                   for m in plain.modules())
    with torch.no_grad():
        logits = plain(torch.from_numpy(Z["input"]))
    assert rel(logits, Z["logits_eval"]) <= 1e-4


def test_guide_shows_this_model():
    guide = (REPO / "docs" / "migrate_from_e2cnn.md").read_text()
    src = (REPO / "tests" / "frontends" / "test_c8mnist_port.py").read_text()
    port = re.search(r"(class C8SteerableCNN\(torch\.nn\.Module\):.*?)# ---- end", src,
                     re.S).group(1).strip()
    assert port in guide
