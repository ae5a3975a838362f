"""cupysteer.torch.nn.export: a model mixing steerable convolutions and every field-wise module
becomes a plain torch model with the same eval-mode outputs (float64 ≤ 1e-12, float32 ≤ 1e-5),
holding no cupysteer module but the plain ones of cupysteer.torch.nn.exporting; it survives
deepcopy, pickle and state-dict round trips and exports to ONNX (onnxruntime gives the same
outputs); the original model is left unchanged; unknown modules get clear errors."""
import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.torch import SteerableConv2d, SteerableConv3d, SteerableConvTranspose2d  # noqa: E402
from cupysteer.torch import nn as cnn  # noqa: E402
from cupysteer.torch.nn import plain as plain_module  # noqa: E402
from cupysteer.torch.nn._common import FieldwiseModule  # noqa: E402


class Net(torch.nn.Module):
    """A body, then two heads (a non-cupysteer container holding cupysteer modules)."""

    def __init__(self, body, heads):
        super().__init__()
        self.body = body
        self.heads = torch.nn.ModuleList(heads)

    def forward(self, x):
        y = self.body(x)
        return torch.cat([h(y).flatten(1) for h in self.heads], 1)


def planar_model():
    G = cs.DihedralGroup(4)
    reg, triv = G.regular_representation, G.trivial_representation
    irr = G.irrep(1, 1).representation
    t0 = cs.FieldType(G, [triv])
    tp = cs.FieldType(G, [reg, reg, triv])                     # pointwise
    tm = cs.FieldType(G, [triv, triv, irr, reg])               # gates + gated
    tg = cs.FieldType(G, [irr, reg])
    body = torch.nn.Sequential(
        SteerableConv2d(t0, tp, 3, padding=1), cnn.InnerBatchNorm(tp), cnn.ReLU(tp),
        cnn.ELU(tp, alpha=0.5), cnn.PointwiseNonLinearity(tp, "p_tanh"),
        cnn.PointwiseMaxPool2d(tp, 2), cnn.FieldDropout(tp, 0.3),
        SteerableConv2d(tp, tm, 3, padding=1), cnn.NormBatchNorm(tm), cnn.NormNonLinearity(tm),
        cnn.PointwiseAvgPool2d(tm, 3, 1, 1), cnn.GatedNonLinearity1(tm, drop_gates=False),
        SteerableConvTranspose2d(tm, tm, 3, padding=1), cnn.GatedNonLinearity1(tm),
        cnn.R2Upsampling(tg, scale_factor=2))
    heads = []
    for to_irreps in (False, True):   # restricted to the flips, disentangled, pooled
        restrict = cnn.RestrictionModule(tg, (0, 1))
        dis = cnn.DisentangleModule(restrict.out_type, to_irreps=to_irreps)
        heads.append(torch.nn.Sequential(restrict, dis, cnn.NormPool(dis.out_type)))
    return Net(body, heads), t0


class TwoInputs(torch.nn.Module):
    """Feeds the first ``n`` channels as gates and the rest as gated fields."""

    def __init__(self, gate, n):
        super().__init__()
        self.gate, self.n = gate, n

    def forward(self, x):
        return self.gate(x[:, :self.n], x[:, self.n:])


def other_modules_model():
    """The modules added next to the first ones: mask, antialiased pools, IID and GNorm batch
    norms, a Fourier non-linearity, norm max pooling, GatedNonLinearity2."""
    G = cs.DihedralGroup(4)
    reg, triv = G.regular_representation, G.trivial_representation
    irr = G.irrep(1, 1).representation
    t0 = cs.FieldType(G, [triv])
    tp = cs.FieldType(G, [reg, reg, triv])
    fourier = cnn.FourierELU(G, 2, [(0, 0), (1, 0), (1, 1)], inplace=False)
    tf = fourier.in_type
    gates, gated = cs.FieldType(G, [triv, triv]), cs.FieldType(G, [irr, reg])
    tg = cs.FieldType(G, [triv, triv, irr, reg])
    return torch.nn.Sequential(
        SteerableConv2d(t0, tp, 3, padding=1), cnn.MaskModule(tp, 9),
        cnn.PointwiseMaxPoolAntialiased2d(tp, 3, 1, 1), cnn.PointwiseAvgPoolAntialiased2d(
            tp, 0.66, 2), cnn.IIDBatchNorm2d(tp), SteerableConv2d(tp, tf, 3, padding=1),
        fourier, cnn.GNormBatchNorm(tf), cnn.NormMaxPool(tf, 2),
        SteerableConv2d(tf, tg, 3, padding=1),
        TwoInputs(cnn.GatedNonLinearity2((gates, gated)), 2)), t0


def pointwise_head_model():
    G = cs.CyclicGroup(4)
    t0 = cs.FieldType(G, [G.trivial_representation])
    t1 = cs.FieldType(G, [G.regular_representation, G.quotient_representation(2)])
    return torch.nn.Sequential(SteerableConv2d(t0, t1, 3, padding=1), cnn.GroupPooling(t1)), t0


def volume_model():
    O = r3.Octahedral()
    t0 = cs.FieldType(O, [O.trivial_representation])
    tp = cs.FieldType(O, [O.regular_representation])
    tm = cs.FieldType(O, [O.standard_representation, O.trivial_representation])
    return torch.nn.Sequential(
        SteerableConv3d(t0, tp, 3, padding=1), cnn.InnerBatchNorm(tp), cnn.ReLU(tp),
        cnn.PointwiseMaxPool3d(tp, 2), SteerableConv3d(tp, tm, 3, padding=1),
        cnn.NormBatchNorm(tm), cnn.PointwiseAvgPool3d(tm, 3, 1, 1), cnn.IIDBatchNorm3d(tm),
        cnn.PointwiseAvgPoolAntialiased3d(tm, 0.5, 1),
        cnn.R3Upsampling(tm, scale_factor=2), cnn.NormPool(tm)), t0


def _trained(model, t0, size, dtype):
    """Random affine parameters and running statistics from 3 training batches."""
    model = model.to(dtype)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "weight" in name and p.dim() == 1 or "log_bias" in name:
                p.copy_(torch.rand(p.shape, generator=gen, dtype=dtype) + 0.5)
            elif "bias" in name and p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=dtype) * 0.3)
        model.train()
        d = t0.group.space.dimension
        for _ in range(3):
            model(torch.randn(4, t0.size, *[size] * d, generator=gen, dtype=dtype))
    return model.eval()


MODELS = {"planar": (planar_model, 8), "pointwise": (pointwise_head_model, 6),
          "volume": (volume_model, 6), "others": (other_modules_model, 9)}


def _only_plain(model):
    """No steerable module is left: torch's modules, cupysteer's plain ones (and the test's
    containers) only."""
    for name, m in model.named_modules():
        assert not isinstance(m, FieldwiseModule) and not hasattr(m, "in_type"), name
        mod = type(m).__module__
        assert mod.startswith("torch.") or mod in (plain_module.__name__, __name__) or \
            type(m) is cnn.mask.Multiply, (name, type(m))


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_same_outputs(name, dtype, tol):
    build, size = MODELS[name]
    model, t0 = build()
    model = _trained(model, t0, size, dtype)
    d = t0.group.space.dimension
    x = torch.randn(3, t0.size, *[size] * d, generator=torch.Generator().manual_seed(1),
                    dtype=dtype)
    with torch.no_grad():
        y = model(x)
        plain = cnn.export(model)
        _only_plain(plain)
        assert not plain.training
        torch.testing.assert_close(plain(x), y, rtol=0, atol=tol * max(1.0, float(y.abs().max())))
        # the original is untouched: same outputs, modules unchanged
        assert any(isinstance(m, FieldwiseModule) for m in model.modules())
        torch.testing.assert_close(model(x), y, rtol=0, atol=0)


def test_copies_pickles_and_state_dicts():
    model, t0 = planar_model()
    model = _trained(model, t0, 8, torch.float64)
    plain = cnn.export(model)
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        y = plain(x)
        for other in (copy.deepcopy(plain), pickle.loads(pickle.dumps(plain))):
            torch.testing.assert_close(other(x), y, rtol=0, atol=0)
        fresh = cnn.export(_trained(planar_model()[0], t0, 8, torch.float64))
        assert not torch.equal(fresh(x), y)
        fresh.load_state_dict(plain.state_dict())
        torch.testing.assert_close(fresh(x), y, rtol=0, atol=0)


def test_single_modules_and_what_they_become():
    G = cs.DihedralGroup(4)
    tp = cs.FieldType(G, [G.regular_representation])
    assert type(cnn.export(cnn.ReLU(tp, inplace=True))) is torch.nn.ReLU
    assert type(cnn.export(cnn.ELU(tp, alpha=0.3))).__name__ == "ELU"
    assert cnn.export(cnn.ELU(tp, alpha=0.3)).alpha == 0.3
    assert type(cnn.export(cnn.PointwiseNonLinearity(tp, "p_sigmoid"))) is torch.nn.Sigmoid
    custom = cnn.export(cnn.PointwiseNonLinearity(tp, torch.nn.functional.softplus))
    assert isinstance(custom, plain_module.Elementwise)
    assert type(cnn.export(cnn.InnerBatchNorm(tp))) is torch.nn.BatchNorm2d
    assert type(cnn.export(cnn.PointwiseMaxPool2d(tp, 2))) is torch.nn.MaxPool2d
    assert type(cnn.export(cnn.FieldDropout(tp))) is torch.nn.Identity
    assert type(cnn.export(SteerableConv2d(tp, tp, 3))) is torch.nn.Conv2d
    # exporting an exported model changes nothing
    plain = cnn.export(torch.nn.Sequential(cnn.GroupPooling(tp)))
    assert isinstance(cnn.export(plain)[0], plain_module.FieldReduce)


@pytest.mark.parametrize("name", ["planar", "others", "volume"])
def test_onnx_round_trip(tmp_path, name):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra")
    pytest.importorskip("onnxscript", reason="onnxscript is in the test extra")
    build, size = MODELS[name]
    model, t0 = build()
    model = _trained(model, t0, size, torch.float32)
    plain = cnn.export(model)
    d = t0.group.space.dimension
    x = torch.randn(2, 1, *[size] * d, generator=torch.Generator().manual_seed(3))
    program = torch.onnx.export(plain, (x,), dynamo=True, verbose=False)
    path = tmp_path / "plain.onnx"
    program.save(str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(ref).max()))


def test_clear_errors():
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])

    class Unknown(FieldwiseModule):
        def forward(self, x):
            return x

    with pytest.raises(NotImplementedError, match=r"Unknown at 1 has no plain equivalent.*"
                                                   r"define Unknown.export\(\)"):
        cnn.export(torch.nn.Sequential(cnn.ReLU(t), Unknown(t)))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        cnn.export(lambda x: x)
    with pytest.raises(ValueError, match="track_running_stats=False"):
        cnn.export(cnn.InnerBatchNorm(t, track_running_stats=False))


@pytest.mark.parametrize("make", [
    lambda tp, tm: cnn.InnerBatchNorm(tp, affine=False, momentum=None),
    lambda tp, tm: cnn.NormBatchNorm(tm, affine=False),
    lambda tp, tm: cnn.NormBatchNorm(cs.FieldType(tm.group, [tm.representations[2]] * 2)),
    lambda tp, tm: cnn.IIDBatchNorm2d(tm, affine=False),
    lambda tp, tm: cnn.GNormBatchNorm(tm, affine=False),
    lambda tp, tm: cnn.GatedNonLinearity1(tm, ["gate", "gated", "gate", "gated"],
                                          drop_gates=False),
    lambda tp, tm: cnn.NormNonLinearity(tm, "squash", bias=False)])
def test_batch_norm_and_gate_variants(make):
    """affine=False, cumulative momentum, fields without trivial irreps, gates by size."""
    G = cs.DihedralGroup(4)
    tp = cs.FieldType(G, [G.regular_representation] * 2)
    tm = cs.FieldType(G, [G.trivial_representation, G.regular_representation,
                          G.trivial_representation, G.irrep(1, 1).representation])
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        m = make(tp, tm)
        t = m.in_type
        gen = torch.Generator().manual_seed(4)
        m.train()
        for _ in range(3):
            m(torch.randn(4, t.size, 5, 5, generator=gen) * 2 + 1)
        m.eval()
        x = torch.randn(2, t.size, 5, 5, generator=gen)
        with torch.no_grad():
            torch.testing.assert_close(cnn.export(m)(x), m(x), rtol=0, atol=1e-12)
    finally:
        torch.set_default_dtype(old)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_export_keeps_the_device(name):
    """A model moved to another device exports there (every parameter and buffer: none made
    on the default device)."""
    model, t0 = MODELS[name][0]()
    plain = cnn.export(model.eval().to("meta"))
    tensors = list(plain.parameters()) + list(plain.buffers())
    assert tensors and all(t.device.type == "meta" for t in tensors)
