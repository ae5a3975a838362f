"""cupysteer.torch.nn in whole models: SteerableConv2d with InnerBatchNorm, ReLU and
GroupPooling is equivariant end to end (check_equivariance, float64), and e2cnn's trained D4
model (tests/data/e2cnn_trained) is reproduced with e2cnn's ReLU and NormNonLinearity, the
latter loading e2cnn's state-dict keys."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
from cupysteer.compat import e2cnn as e  # noqa: E402
from cupysteer.torch import SteerableConv2d  # noqa: E402
from cupysteer.torch import nn as cnn  # noqa: E402

from _helpers import e2cnn_field, e2cnn_gspace  # noqa: E402
from _paths import DATA  # noqa: E402


@pytest.mark.parametrize("group", ["C4", "D4"])
def test_small_model_is_equivariant(float64, group):
    """conv → InnerBatchNorm → ReLU → conv → GroupPooling, SteerableConv2d and these modules
    only, equivariant end to end in both modes."""
    G = cs.CyclicGroup(4) if group == "C4" else cs.DihedralGroup(4)
    t0 = cs.FieldType(G, [G.trivial_representation])
    t1 = cs.FieldType(G, [G.regular_representation] * 2)
    t2 = cs.FieldType(G, [G.regular_representation, G.trivial_representation])
    model = torch.nn.Sequential(
        SteerableConv2d(t0, t1, 3, padding=1), cnn.InnerBatchNorm(t1), cnn.ReLU(t1),
        SteerableConv2d(t1, t2, 3, padding=1), cnn.GroupPooling(t2))
    for mode in (True, False):
        model.train(mode)
        errors = cnn.check_equivariance(model, t0, model[-1].out_type, size=9, atol=1e-10,
                                        rtol=0)
        assert len(errors) == len(G.elements())


def test_e2cnn_trained_model_with_these_modules():
    """tests/data/e2cnn_trained rebuilt: ReLU (e2cnn's ReLU) and NormNonLinearity('n_relu')
    loading e2cnn's state-dict keys (log_bias, eps, indices_2) give e2cnn's outputs."""
    root = DATA / "e2cnn_trained"
    meta = json.loads((root / "meta.json").read_text())
    Z = dict(np.load(root / "model.npz"))
    gs = e2cnn_gspace(meta["gspace"])
    types = [e.FieldType(gs, [e2cnn_field(gs, s) for s in meta["layers"][0]["in_fields"]])]
    types += [e.FieldType(gs, [e2cnn_field(gs, s) for s in L["out_fields"]])
              for L in meta["layers"]]
    convs = [SteerableConv2d(types[i], types[i + 1], L["kernel_size"], padding=L["padding"],
                             initialize=False) for i, L in enumerate(meta["layers"])]
    for conv, L in zip(convs, meta["layers"]):
        conv.load_state_dict({k: torch.from_numpy(Z[f"{L['name']}.{k}"])
                              for k in ("weights", "bias")})
    relu1 = cnn.ReLU(types[1])
    t2 = types[2]
    regular = e.FieldType(gs, [gs.regular_repr])
    relu2 = cnn.ReLU(regular)
    norm2 = cnn.NormNonLinearity(e.FieldType(gs, [e2cnn_field(gs, "irrep:1,1")]))
    keys = [k[len("norm2."):] for k in meta["e2cnn_eval_state_dict_keys"]
            if k.startswith("norm2.")]
    state = {"log_bias": torch.from_numpy(Z["norm2.log_bias"]), "eps": torch.tensor(1e-10),
             "indices_2": torch.tensor([0, 2])}
    assert sorted(state) == sorted(keys)
    norm2.load_state_dict(state, strict=True)

    def act2(y):
        sl = [t2.channels(f) for f in range(3)]
        return torch.cat([relu2(y[:, sl[0]]), norm2(y[:, sl[1]]), relu2(y[:, sl[2]])], 1)

    x = torch.from_numpy(Z["input"])
    with torch.no_grad():
        out = convs[2](act2(convs[1](relu1(convs[0](x)))))
    ref = Z["output_eval"]
    assert float(np.abs(out.numpy() - ref).max() / np.abs(ref).max()) <= 1e-5
