"""Deployment: torch.export → save → load in a fresh process (the basis travels inside the
program as buffers, no operator key), torch.compile with the default inductor backend (train
mode, forward + backward), ONNX (the plain-conv ``export()`` form, and the training form whose
expansion onnxruntime folds to a constant filter), AOTInductor packaging on CPU."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
from cupysteer.torch import SteerableConv2d, SteerableConvTranspose2d  # noqa: E402

from _paths import REPO  # noqa: E402


def _types():
    G = cs.DihedralGroup(4)
    return (cs.FieldType(G, [G.regular_representation, G.irrep(1, 1).representation]),
            cs.FieldType(G, [G.trivial_representation, G.regular_representation]))


def small_model(seed=0):
    tin, tout = _types()
    torch.manual_seed(seed)
    return torch.nn.Sequential(SteerableConv2d(tin, tout, 3, padding=1), torch.nn.ReLU(),
                               SteerableConvTranspose2d(tout, tin, 3, padding=1))


def _x():
    return torch.randn(2, _types()[0].size, 7, 7, generator=torch.Generator().manual_seed(3))


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        OMP_NUM_THREADS="1")


FRESH = textwrap.dedent('''
    import sys
    import torch
    import cupysteer.torch  # noqa: F401  (all a user imports; nothing is registered)
    ep = torch.export.load(sys.argv[1])
    io = torch.load(sys.argv[2])
    ops = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert not any("cupysteer" in o for o in ops), ops
    y = ep.module()(io["x"])
    torch.testing.assert_close(y, io["y"], rtol=1e-5, atol=1e-5)
    print("ok", len(ep.constants) + len(list(ep.named_buffers())))
''')


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_export_save_load_in_a_fresh_process(tmp_path, mode):
    model = small_model().train(mode == "train")
    x = _x()
    ep = torch.export.export(model, (x,))
    assert not any("cupysteer" in str(n.target) for n in ep.graph.nodes)
    torch.export.save(ep, tmp_path / "model.pt2")
    with torch.no_grad():
        torch.save({"x": x, "y": model(x)}, tmp_path / "io.pt")
    del model, ep
    script = tmp_path / "fresh.py"
    script.write_text(FRESH)
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "model.pt2"),
                        str(tmp_path / "io.pt")], capture_output=True, text=True, timeout=240,
                       env=_env())
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr


def test_torch_compile_inductor_train_forward_backward():
    """The default backend (inductor, C++ on CPU), train mode: the native schedule is traced
    into the graph; outputs and weight gradients equal eager."""
    tin, tout = _types()
    torch.manual_seed(0)
    model = SteerableConv2d(tin, tout, 3, padding=1)
    x = _x()
    compiled = torch.compile(model, fullgraph=True)
    y = compiled(x)
    y.square().sum().backward()
    g = model.weights.grad.clone()
    model.zero_grad()
    y_ref = model(x)
    y_ref.square().sum().backward()
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g, model.weights.grad, rtol=1e-4, atol=1e-4)


def _onnx_run(model, x, tmp_path, name):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra")
    pytest.importorskip("onnxscript", reason="onnxscript is in the test extra")
    onnx = pytest.importorskip("onnx", reason="onnx is in the test extra")
    program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
    path = tmp_path / f"{name}.onnx"
    program.save(str(path))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # folds constants
    so.optimized_model_filepath = str(tmp_path / f"{name}.opt.onnx")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    optimised = [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]
    return y, optimised


def test_onnx_plain_conv_export(tmp_path):
    model = small_model().eval()
    plain = torch.nn.Sequential(model[0].export(), torch.nn.ReLU(), model[2].export()).eval()
    x = _x()
    y, ops = _onnx_run(plain, x, tmp_path, "plain")
    assert ops == ["Conv", "Relu", "ConvTranspose"]
    with torch.no_grad():
        np.testing.assert_allclose(y, model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_training_form_folds_to_a_constant_filter(tmp_path):
    """The steerable model itself exports (weights as initialisers, the expansion as
    gathers and einsums); onnxruntime's constant folding leaves only the convolutions."""
    model = small_model().eval()
    x = _x()
    y, ops = _onnx_run(model, x, tmp_path, "steerable")
    assert ops == ["Conv", "Relu", "ConvTranspose"], ops
    with torch.no_grad():
        np.testing.assert_allclose(y, model(x).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_aot_inductor_package_on_cpu(tmp_path):
    """AOTInductor (``torch._inductor.aoti_compile_and_package``): a shared library and its
    weights in one .pt2 that runs without Python model code (~30 s of C++ compile on 2 cores)."""
    model = SteerableConv2d(*_types(), 3, padding=1).eval()
    x = _x()
    ep = torch.export.export(model, (x,))
    path = torch._inductor.aoti_compile_and_package(ep, package_path=str(tmp_path / "m.pt2"))
    runner = torch._inductor.aoti_load_package(path)
    with torch.no_grad():
        torch.testing.assert_close(runner(x), model(x), rtol=1e-5, atol=1e-5)
