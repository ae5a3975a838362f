"""cupysteer.compat.checkpoints: the per-block refit and the state-dict converters' matching
and errors (the whole-model ports are in test_c8mnist_port.py and test_escnn_model_port.py)."""
import json

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import r3
from cupysteer.compat.checkpoints import refit_weights

import _r3_fixtures as fx
from _paths import DATA

ANALYTIC = (r3.SO3, r3.O3, r3.Inversion, r3.Trivial3)
SUBGROUP = [n for n in fx.names() if not isinstance(fx.layer(n).in_type.group, ANALYTIC)]


@pytest.mark.parametrize("name", SUBGROUP)
def test_refit_reproduces_escnn_subgroup_filters(name):
    """escnn's filters of subgroup layers (its random-start basis, tests/data/escnn3d): the
    refit weights expand to them to float32 round-off."""
    b = fx.layer(name)
    F = fx.arrays(name)["filter"].astype(np.float64)
    w, residual = refit_weights(b, F)
    assert w.shape == (b.dim,) and residual <= 1e-6
    assert np.abs(b.expand(w) - F).max() <= 1e-6 * max(1.0, np.abs(F).max())


LAYERS = {
    "C8 regular k5": lambda: _layer(cs.CyclicGroup(8), ["regular"] * 2, ["regular"] * 3, 5),
    "D4 irreps k5": lambda: _layer(cs.DihedralGroup(4), ["trivial", "irrep:1,1", "regular"],
                                   ["irrep:1,1", "irrep:1,0", "regular"], 5),
    "SO2 k7": lambda: _layer(cs.SO2(4), ["irrep:0", "irrep:1", "irrep:2"],
                             ["irrep:1", "irrep:3"], 7),
    "O regular k3": lambda: _layer(r3.Octahedral(), ["regular"], ["regular", "trivial"], 3),
    "I irreps k5": lambda: _layer(r3.Icosahedral(), ["trivial", "std"], ["std", "regular"], 5),
}


def _layer(G, fin, fout, k):
    from cupysteer.fields_spec import parse_field
    return cs.LayerBasis(cs.FieldType(G, [parse_field(G, s) for s in fin]),
                         cs.FieldType(G, [parse_field(G, s) for s in fout]), k)


@pytest.mark.parametrize("name", list(LAYERS))
def test_refit_recovers_the_weights_exactly(name):
    b = LAYERS[name]()
    w = np.random.default_rng(0).standard_normal(b.dim)
    got, residual = refit_weights(b, b.expand(w))
    assert np.abs(got - w).max() <= 1e-10 and residual <= 1e-12


def test_refit_refuses_filters_outside_the_span_and_wrong_shapes():
    b = LAYERS["C8 regular k5"]()
    F = np.random.default_rng(1).standard_normal(b.shape)
    with pytest.raises(ValueError, match="not in the span.*field types"):
        refit_weights(b, F)
    with pytest.raises(ValueError, match="filt must have the layer's filter shape"):
        refit_weights(b, F[:, :, :3])


# ---- the converters --------------------------------------------------------------------
torch = pytest.importorskip("torch")

from test_c8mnist_port import FIELDS, C8SteerableCNN, e2cnn_state  # noqa: E402
from test_escnn_model_port import OctaCNN, escnn_state  # noqa: E402

from cupysteer.compat import e2cnn as e  # noqa: E402
from cupysteer.compat import escnn as e3  # noqa: E402
from cupysteer.compat.checkpoints import (  # noqa: E402
    from_e2cnn_state_dict,
    from_escnn_state_dict,
)
from cupysteer.torch import SteerableConv2d, SteerableConv3d  # noqa: E402
from cupysteer.torch import nn as snn  # noqa: E402

Z = dict(np.load(DATA / "e2cnn_c8mnist" / "model.npz"))


def flat_port():
    """The C8 port as one flat Sequential: other module names, the same modules in order."""
    m = C8SteerableCNN(fields=FIELDS)
    mods = [*m.block1, *m.block2, *m.pool1, *m.block3, *m.block4, *m.pool2, *m.block5,
            *m.block6, m.pool3, m.gpool, torch.nn.Flatten(), *m.fully_net]
    return torch.nn.Sequential(*mods)


def test_modules_matched_in_order_when_names_differ():
    flat = flat_port()
    sd = from_e2cnn_state_dict(flat, e2cnn_state())
    assert list(sd) == list(flat.state_dict())
    flat.load_state_dict(sd)
    with torch.no_grad():
        out = flat.eval()(torch.from_numpy(Z["input"]))
    assert float((out - torch.from_numpy(Z["logits_eval"])).abs().max()) <= 1e-4 * float(
        np.abs(Z["logits_eval"]).max())


def test_returned_state_dict_is_plain_and_loads_strictly():
    m = C8SteerableCNN(fields=FIELDS)
    sd = from_e2cnn_state_dict(m, e2cnn_state())
    assert sorted(sd) == sorted(m.state_dict())  # no mask, filter, indices, _basisexpansion
    assert all(isinstance(v, torch.Tensor) for v in sd.values())
    m.load_state_dict(sd, strict=True)
    # numpy arrays are accepted as well
    from_e2cnn_state_dict(m, {k: v.numpy() for k, v in e2cnn_state().items()}, load=True)


def test_clear_errors_for_models_that_do_not_match():
    sd = e2cnn_state()
    wrong_fields = C8SteerableCNN(fields=(3, 6, 6, 12, 12, 9))
    with pytest.raises(ValueError, match=r"block6\.0\.weights.*shape.*field types"):
        from_e2cnn_state_dict(wrong_fields, sd)
    short = torch.nn.Sequential(*list(flat_port())[:-1])
    with pytest.raises(ValueError, match="unmatched.*fully_net.3.*same order"):
        from_e2cnn_state_dict(short, sd)
    swapped = flat_port()
    swapped[1], swapped[2] = swapped[2], swapped[1]
    with pytest.raises(ValueError, match="does not match model module.*same order"):
        from_e2cnn_state_dict(swapped, sd)
    other_mask = C8SteerableCNN(fields=FIELDS)
    other_mask.block1[0] = snn.MaskModule(other_mask.input_type, 29, margin=5)
    with pytest.raises(ValueError, match=r"block1\.0\.mask.*margin"):
        from_e2cnn_state_dict(other_mask, sd)
    other_pool = C8SteerableCNN(fields=FIELDS)
    other_pool.pool1[0] = snn.PointwiseAvgPoolAntialiased(other_pool.block2[0].out_type,
                                                          sigma=0.5, stride=2)
    with pytest.raises(ValueError, match=r"pool1\.0\.filter.*sigma"):
        from_e2cnn_state_dict(other_pool, sd)
    with pytest.raises(TypeError, match="state_dict must be"):
        from_e2cnn_state_dict(C8SteerableCNN(fields=FIELDS), [1, 2])
    with pytest.raises(TypeError, match="model must be"):
        from_e2cnn_state_dict("model", sd)


def test_bias_and_wrong_weights_are_named():
    gs = e.Rot2dOnR2(4)
    t1, t2 = e.FieldType(gs, [gs.trivial_repr]), e.FieldType(gs, [gs.regular_repr])
    src = SteerableConv2d(t1, t2, 3, padding=1)
    state = dict(src.state_dict())
    with pytest.raises(ValueError, match="has a bias.*bias=True"):
        from_e2cnn_state_dict(SteerableConv2d(t1, t2, 3, padding=1, bias=False), state)
    # e2cnn's eval-mode filter is checked against the weights
    state["filter"] = src.expand_parameters()[0].detach() + 1.0
    with pytest.raises(ValueError, match="another filter.*field types"):
        from_e2cnn_state_dict(SteerableConv2d(t1, t2, 3, padding=1), state)


def test_escnn_subgroup_layers_need_the_filter():
    full = escnn_state()
    sd = {k: v for k, v in full.items()
          if not (k.endswith(".filter") and k[:-len("filter")] + "weights" in full)}
    with pytest.raises(ValueError, match=r"block1\.1\.weights.*unseeded.*eval mode"):
        from_escnn_state_dict(OctaCNN(), sd)


def test_escnn_analytic_groups_copy_the_weights():
    gs = e3.rot3dOnR3(2)
    t1 = e3.FieldType(gs, [gs.irrep(1)])
    t2 = e3.FieldType(gs, [gs.trivial_repr, gs.irrep(1)])
    src = SteerableConv3d(t1, t2, 3, padding=1)
    dst = SteerableConv3d(t1, t2, 3, padding=1)
    with pytest.warns(UserWarning, match="neither escnn's filter.*unchecked"):
        sd = from_escnn_state_dict(dst, dict(src.state_dict()), load=True)
    torch.testing.assert_close(sd["weights"], src.weights.detach(), rtol=0, atol=0)


def test_meta_lists_what_the_fixtures_dropped():
    meta = json.loads((DATA / "e2cnn_c8mnist" / "meta.json").read_text())
    assert all("_basisexpansion" in k or k.endswith(".filter")
               for k in meta["dropped_derived_entries"])


FIELDWISE = DATA / "fieldwise"


def _ckpt(library, mode):
    d = np.load(FIELDWISE / f"{library}.npz")
    head = f"ckpt.{mode}."
    sd = {k[len(head):]: torch.from_numpy(d[k]) for k in d.files if k.startswith(head)}
    return sd, torch.from_numpy(d["ckpt.x"]), d["ckpt.y"]


def _ckpt_model(library):
    """The cupysteer model of the fixtures' checkpoint (scripts/make_*fieldwise_fixtures.py)."""
    if library == "e2cnn":
        gs = e.Rot2dOnR2(8)
        T, I1, I4 = gs.trivial_repr, gs.irrep(1), gs.irrep(4)
        tin, tmid = e.FieldType(gs, [T]), e.FieldType(gs, [T, T, T, I1, I4, I1])
        gate = snn.GatedNonLinearity1(tmid)
        return torch.nn.Sequential(SteerableConv2d(tin, tmid, 5), gate,
                                   snn.NormBatchNorm(gate.out_type))
    G = cs.CyclicGroup(4)
    T, I1 = G.trivial_representation, G.irrep(1)
    tin, tmid = cs.FieldType(G, [T]), cs.FieldType(G, [T, T, I1, I1])
    gate = snn.GatedNonLinearity1(tmid)
    return torch.nn.Sequential(SteerableConv2d(tin, tmid, 3), gate,
                               snn.GNormBatchNorm(gate.out_type))


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("library", ["e2cnn", "escnn"])
def test_checkpoints_of_gates_and_field_batch_norms(library, mode):
    """e2cnn's NormBatchNorm (per-size entries, sizes 1 and 2) and GatedNonLinearity1 (its
    index buffers), escnn's GatedNonLinearity1 (bias (1, n)) and GNormBatchNorm (its
    aggregator/propagator buffers): loaded through the modules' own loading. A training-mode
    checkpoint has no ``filter``: the conv is checked (e2cnn) or refitted (escnn's C4 basis
    from a random point) with the checkpoint's sampled bases."""
    sd, x, y = _ckpt(library, mode)
    assert ("0.filter" in sd) == (mode == "eval")
    m = _ckpt_model(library)
    convert = from_e2cnn_state_dict if library == "e2cnn" else from_escnn_state_dict
    out = convert(m, sd, load=True)
    assert sorted(out) == sorted(m.state_dict())
    with torch.no_grad():
        got = m.eval()(x).numpy()
    np.testing.assert_allclose(got, y, atol=1e-5 * max(1.0, np.abs(y).max()), rtol=0)


def test_train_mode_checkpoint_conv_basis_is_checked():
    sd, _, _ = _ckpt("e2cnn", "train")
    key = next(k for k in sd if k.endswith("('irrep_0', 'irrep_1').sampled_basis"))
    other = dict(sd)
    other[key] = sd[key].flip(-1)  # another basis for the same number of weights
    with pytest.raises(ValueError, match=r"0\.weights.*another filter.*_basisexpansion"):
        from_e2cnn_state_dict(_ckpt_model("e2cnn"), other)
    bare = {k: v for k, v in sd.items() if "_basisexpansion" not in k}
    with pytest.warns(UserWarning, match=r"0\.weights.*neither.*unchecked"):
        from_e2cnn_state_dict(_ckpt_model("e2cnn"), bare)
    sd, _, _ = _ckpt("escnn", "train")
    bare = {k: v for k, v in sd.items() if "_basisexpansion" not in k}
    with pytest.raises(ValueError, match=r"0\.weights.*unseeded.*eval mode"):
        from_escnn_state_dict(_ckpt_model("escnn"), bare)


def test_field_module_mismatches_name_both_modules():
    sd, _, _ = _ckpt("e2cnn", "eval")
    sd = {k: v for k, v in sd.items() if not k.startswith("2.1_")}  # size 1 missing
    with pytest.raises(ValueError, match=r"checkpoint module '2'.*model module '2'.*2\.1_weight"
                                         r"|'1_weight'"):
        from_e2cnn_state_dict(_ckpt_model("e2cnn"), sd)
    sd, _, _ = _ckpt("escnn", "eval")
    sd["1.bias"] = torch.zeros(1, 3)
    with pytest.raises(ValueError, match=r"checkpoint module '1'.*model module '1'.*bias"
                                         r".*field types"):
        from_escnn_state_dict(_ckpt_model("escnn"), sd)
