"""cupysteer.torch: the custom operators (gradcheck, opcheck, torch.compile), the layers
(equivariance, export, eval cache, state_dict, .to(), pickling, e2cnn checkpoints) and DDP."""
import copy
import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.nn import functional as F  # noqa: E402

import cupysteer as cs  # noqa: E402
import cupysteer.torch as cst  # noqa: E402
from cupysteer.compat import e2cnn as e  # noqa: E402
from cupysteer.torch import (  # noqa: E402
    SteerableConv2d,
    SteerableConvTranspose2d,
    adjoint,
    expand,
    register_basis,
)

from _paths import DATA, REPO  # noqa: E402

DATA = DATA / "e2cnn"


def c4_types():
    G = cs.CyclicGroup(4)
    return (cs.FieldType(G, [G.regular_representation, G.trivial_representation]),
            cs.FieldType(G, [G.irrep(1).representation, G.regular_representation,
                             G.trivial_representation]))


def d4_types():
    G = cs.DihedralGroup(4)
    return (cs.FieldType(G, [G.regular_representation, G.irrep(1, 1).representation]),
            cs.FieldType(G, [G.trivial_representation, G.regular_representation,
                             G.irrep(1, 0).representation]))


@pytest.fixture(scope="module")
def small_basis():
    return cs.LayerBasis(*c4_types(), 3)


# ---- operators ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_filter_equals_numpy(small_basis, dtype):
    w = torch.randn(3, small_basis.dim, dtype=dtype)
    f = expand(small_basis, w)
    assert f.dtype == dtype and f.shape == (3,) + small_basis.shape
    np.testing.assert_array_equal(f.numpy(), small_basis.expand(w.numpy()))
    np.testing.assert_allclose(expand(small_basis, w[0]).numpy(), f[0].numpy(), rtol=1e-6,
                               atol=1e-6)


def test_half_precision_weights(small_basis):
    w = torch.randn(small_basis.dim)
    f = expand(small_basis, w.to(torch.bfloat16))
    assert f.dtype == torch.bfloat16
    torch.testing.assert_close(f.float(), expand(small_basis, w.to(torch.bfloat16).float()),
                               rtol=1e-2, atol=1e-2)


def test_gradient_is_the_numpy_adjoint(small_basis):
    w = torch.randn(small_basis.dim, dtype=torch.float64, requires_grad=True)
    G = torch.randn(small_basis.shape, dtype=torch.float64)
    (expand(small_basis, w) * G).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), small_basis.adjoint(G.numpy()), rtol=1e-12)
    np.testing.assert_allclose(adjoint(small_basis, G).numpy(), w.grad.numpy(), rtol=1e-12)


def test_gradcheck_float64():
    G = cs.CyclicGroup(4)
    b = cs.LayerBasis(cs.FieldType(G, [G.regular_representation]),
                      cs.FieldType(G, [G.irrep(1).representation, G.trivial_representation]), 3)
    w = torch.randn(b.dim, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: expand(b, w), (w,))
    wb = torch.randn(2, b.dim, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: expand(b, w), (wb,), fast_mode=True)
    assert torch.autograd.gradgradcheck(lambda w: expand(b, w) ** 2, (wb,), fast_mode=True)
    Gr = torch.randn(b.shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda G: adjoint(b, G), (Gr,))


def test_opcheck(small_basis):
    key = register_basis(small_basis)
    utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    w = torch.randn(small_basis.dim, requires_grad=True)
    torch.library.opcheck(torch.ops.cupysteer.expand.default, (w, key), test_utils=utils)
    G = torch.randn((2,) + small_basis.shape, requires_grad=True)
    torch.library.opcheck(torch.ops.cupysteer.adjoint.default, (G, key), test_utils=utils)


def test_register_basis_is_content_keyed(small_basis):
    again = cs.LayerBasis(*c4_types(), 3, cache=False)
    assert register_basis(again) == register_basis(small_basis)
    assert register_basis(cs.LayerBasis(*c4_types(), 5)) != register_basis(small_basis)


def test_torch_compile_fullgraph():
    """Dynamo traces the op into one graph (fullgraph: no graph breaks) and AOTAutograd runs
    its fake kernel and autograd formula. The aot_eager backend keeps this fast: inductor's
    C++ compile of the same module took ~60 s on a 2-core CI machine."""
    tin, tout = c4_types()
    torch.manual_seed(0)
    model = torch.nn.Sequential(SteerableConv2d(tin, tout, 3, padding=1), torch.nn.ReLU())
    x = torch.randn(2, tin.size, 7, 7)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    y.square().sum().backward()
    g = model[0].weights.grad.clone()
    model.zero_grad()
    y_ref = model(x)
    y_ref.square().sum().backward()
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(g, model[0].weights.grad)
    model.eval()  # eval mode under compile expands inside the graph too
    torch.testing.assert_close(compiled(x), model(x))


# ---- layers -------------------------------------------------------------------------------

def _transform(x, rho, g_spatial):
    """Act on [N, C, H, W]: ρ on channels, then the spatial transformation."""
    return g_spatial(torch.einsum("ab,nbhw->nahw", rho, x))


ROT90 = lambda x: torch.rot90(x, 1, dims=(-2, -1))  # noqa: E731  CCW, reference §1
FLIP = lambda x: torch.flip(x, dims=(-1,))  # noqa: E731  reflection (x, y) -> (-x, y)


@pytest.mark.parametrize("group,elements", [
    ("C4", [(1, ROT90)]),
    ("D4", [((0, 1), ROT90), ((1, 0), FLIP)]),
])
@pytest.mark.parametrize("cls", [SteerableConv2d, SteerableConvTranspose2d])
def test_layer_equivariance(group, elements, cls):
    tin, tout = c4_types() if group == "C4" else d4_types()
    torch.manual_seed(1)
    layer = cls(tin, tout, 5, padding=2)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, tin.size, 15, 15)
    y = layer(x)
    assert y.shape == (2, tout.size, 15, 15)
    for g, spatial in elements:
        rho_in = torch.tensor(tin.representation(g), dtype=torch.float32)
        rho_out = torch.tensor(tout.representation(g), dtype=torch.float32)
        lhs = layer(_transform(x, rho_in, spatial))
        rhs = _transform(y, rho_out, spatial)
        rel = ((lhs - rhs).abs().max() / y.abs().max()).item()
        assert rel <= 1e-5, (group, g, rel)


@pytest.mark.parametrize("cls", [SteerableConv2d, SteerableConvTranspose2d])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_export_same_outputs(cls, mode):
    tin, tout = d4_types()
    kw = dict(stride=2, padding=1, dilation=2)
    if cls is SteerableConvTranspose2d:
        kw["output_padding"] = 1
    layer = cls(tin, tout, 3, **kw).train(mode == "train")
    with torch.no_grad():
        layer.bias.normal_()
    plain = layer.export()
    assert type(plain) is (torch.nn.Conv2d if cls is SteerableConv2d else torch.nn.ConvTranspose2d)
    assert plain.training == (mode == "train")
    x = torch.randn(2, tin.size, 11, 11)
    torch.testing.assert_close(plain(x), layer(x))


@pytest.mark.parametrize("padding_mode", ["reflect", "circular"])
def test_padding_modes(padding_mode):
    tin, tout = c4_types()
    layer = SteerableConv2d(tin, tout, 3, padding=1, padding_mode=padding_mode)
    x = torch.randn(1, tin.size, 8, 8)
    torch.testing.assert_close(layer.export()(x), layer(x))


def test_parameters_like_e2cnn_and_state_dict_keys():
    tin, tout = c4_types()
    layer = SteerableConv2d(tin, tout, 5, padding=2)
    assert layer.weights.shape == (layer.basis.dim,)
    assert layer.bias.shape == (layer.basis.num_bias,) == (2,)  # regular + trivial field
    train_keys = list(layer.state_dict())
    layer.eval()
    layer(torch.randn(1, tin.size, 7, 7))
    assert list(layer.state_dict()) == train_keys == ["weights", "bias"]
    G = cs.CyclicGroup(4)
    no_trivial = SteerableConv2d(tin, cs.FieldType(G, [G.irrep(1).representation]), 3)
    assert no_trivial.bias is None and list(no_trivial.state_dict()) == ["weights"]


def test_initialisation_uses_torch_rng_and_he_std():
    tin, tout = c4_types()
    torch.manual_seed(3)
    a = SteerableConv2d(tin, tout, 5)
    torch.manual_seed(3)
    b = SteerableConv2d(tin, tout, 5)
    torch.testing.assert_close(a.weights, b.weights)
    z = SteerableConv2d(tin, tout, 5, initialize=False)
    assert not z.weights.any()
    torch.manual_seed(3)
    expected = torch.tensor(a.basis.he_std(), dtype=torch.float32) * torch.randn(a.basis.dim)
    torch.testing.assert_close(a.weights.detach(), expected)


def test_eval_caches_and_invalidates(monkeypatch):
    tin, tout = c4_types()
    layer = SteerableConv2d(tin, tout, 3, padding=1)
    x = torch.randn(1, tin.size, 7, 7)
    calls = []
    real = cst.ops._run

    def counting(method, *args):
        calls.extend([method] if method == "expand" else [])
        return real(method, *args)

    monkeypatch.setattr(cst.ops, "_run", counting)
    layer(x), layer(x)
    assert len(calls) == 2                       # train: expands at every forward
    layer.eval()
    with torch.no_grad():
        y0 = layer(x)
        layer(x)
    assert len(calls) == 3                       # eval: once
    y_grad = layer(x)                            # eval with gradients: cached forward ...
    assert len(calls) == 3
    y_grad.square().sum().backward()             # ... and the adjoint as backward
    g_eval = layer.weights.grad.clone()
    layer.zero_grad()
    layer.train()
    layer(x).square().sum().backward()
    torch.testing.assert_close(g_eval, layer.weights.grad)
    layer.eval()
    n = len(calls)
    with torch.no_grad():
        layer.weights.data.mul_(2)               # even a .data write is noticed
        y1 = layer(x)
    assert len(calls) == n + 1
    assert not torch.allclose(y0, y1)
    layer.load_state_dict({"weights": layer.weights.detach() / 2, "bias": layer.bias.detach()})
    with torch.no_grad():
        torch.testing.assert_close(layer(x), y0)


def test_to_dtype_does_not_touch_other_layers():
    tin, tout = c4_types()
    a = SteerableConv2d(tin, tout, 3, padding=1)
    b = SteerableConv2d(tin, tout, 3, padding=1)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, tin.size, 7, 7)
    a.eval(), b.eval()
    ya = a(x)
    b.to(torch.float64)
    assert b.weights.dtype == b.bias_expansion.dtype == torch.float64
    assert a.weights.dtype == a.bias.dtype == a.bias_expansion.dtype == torch.float32
    assert a.bias_expansion.data_ptr() != b.bias_expansion.data_ptr()
    assert a(x).dtype == torch.float32
    torch.testing.assert_close(a(x), ya)
    yb = b(x.double())
    assert yb.dtype == torch.float64
    torch.testing.assert_close(yb.float(), ya, rtol=1e-5, atol=1e-5)


def test_pickle_and_deepcopy():
    tin, tout = c4_types()
    layer = SteerableConv2d(tin, tout, 3, padding=1).eval()
    x = torch.randn(1, tin.size, 7, 7)
    y = layer(x)
    for other in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        torch.testing.assert_close(other(x), y)
        assert list(other.state_dict()) == list(layer.state_dict())
        with torch.no_grad():
            other.weights.zero_()
        torch.testing.assert_close(layer(x), y)
    t = SteerableConvTranspose2d(tin, tout, 3)
    torch.testing.assert_close(pickle.loads(pickle.dumps(t))(x), t(x))


def test_input_checks():
    tin, tout = c4_types()
    layer = SteerableConv2d(tin, tout, 3)
    with pytest.raises(ValueError, match="channels"):
        layer(torch.randn(1, tin.size + 1, 5, 5))
    with pytest.raises(TypeError, match="FieldType"):
        SteerableConv2d([1, 2], tout, 3)
    with pytest.raises(ValueError, match="padding_mode"):
        SteerableConv2d(tin, tout, 3, padding_mode="mirror")


# ---- e2cnn checkpoints --------------------------------------------------------------------

def _fixture(name):
    index = json.loads((DATA / "index.json").read_text())
    return {c["name"]: c for c in index["configs"]}[name], np.load(DATA / f"{name}.npz")


def test_compat_layer_reproduces_e2cnn():
    """c3_reg_k5: e2cnn R2Conv(Rot2dOnR2(3), [regular]*2 -> [regular], 5, padding=2)."""
    cfg, z = _fixture("c3_reg_k5")
    gs = e.Rot2dOnR2(3)
    tin = e.FieldType(gs, [gs.regular_repr] * len(cfg["in_fields"]))
    tout = e.FieldType(gs, [gs.regular_repr] * len(cfg["out_fields"]))
    layer = SteerableConv2d(tin, tout, cfg["kernel_size"], padding=cfg["padding"],
                            dilation=cfg["dilation"], **cfg["user_kwargs"])
    # an e2cnn state_dict, with its derived entries, loads strictly
    state = {"weights": torch.from_numpy(z["weights"]),
             "filter": torch.from_numpy(z["filter"]),
             "expanded_bias": torch.from_numpy(z["expanded_bias"]),
             "bias_expansion": torch.from_numpy(z["bias_expansion"]).float()}
    if "bias" in z.files:
        state["bias"] = torch.from_numpy(z["bias"])
    layer.load_state_dict(state)
    filt, bias = layer.expand_parameters()
    scale = np.abs(z["filter"]).max()
    assert np.abs(filt.detach().numpy() - z["filter"]).max() <= 1e-5 * scale
    np.testing.assert_allclose(bias.detach().numpy(), z["expanded_bias"], atol=1e-6)
    x = torch.randn(2, tin.size, 13, 13)
    ref = F.conv2d(x, torch.from_numpy(z["filter"]), torch.from_numpy(z["expanded_bias"]),
                   padding=cfg["padding"])
    torch.testing.assert_close(layer.eval()(x), ref, rtol=1e-5, atol=1e-5)


# ---- DistributedDataParallel --------------------------------------------------------------

DDP_SCRIPT = textwrap.dedent('''
    import os, sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    import cupysteer as cs
    from cupysteer.torch import SteerableConv2d

    def build():
        G = cs.CyclicGroup(4)
        t_in = cs.FieldType(G, [G.trivial_representation])
        t_mid = cs.FieldType(G, [G.regular_representation] * 2)
        torch.manual_seed(0)
        return torch.nn.Sequential(SteerableConv2d(t_in, t_mid, 3, padding=1), torch.nn.ReLU(),
                                   SteerableConv2d(t_mid, t_in, 3, padding=1))

    def data(rank):
        g = torch.Generator().manual_seed(100 + rank)
        return torch.randn(2, 1, 9, 9, generator=g), torch.randn(2, 1, 9, 9, generator=g)

    def train(model, x, y, steps=3):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(steps):
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()

    def worker(rank, world, port, out):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        torch.set_num_threads(1)
        dist.init_process_group("gloo", rank=rank, world_size=world)
        model = torch.nn.parallel.DistributedDataParallel(build())
        train(model, *data(rank))
        torch.save(model.module.state_dict(), os.path.join(out, f"rank{rank}.pt"))
        dist.barrier()  # no rank tears gloo down while the other still has ops in flight
        dist.destroy_process_group()

    if __name__ == "__main__":
        mp.spawn(worker, args=(2, int(sys.argv[1]), sys.argv[2]), nprocs=2, join=True)
''')


def test_ddp_gloo_two_processes(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, str(script), str(port), str(tmp_path)],
                       capture_output=True, text=True, timeout=240, env=env)
    if r.returncode != 0 and "terminate called without an active exception" in r.stderr:
        # gloo's teardown can abort a worker on a loaded 2-core machine (a known race in
        # torch's process-group shutdown, seen in 1 of ~10 CI runs, not in cupysteer's code):
        # run the whole training once more on a fresh port; a second failure fails the test
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        r = subprocess.run([sys.executable, str(script), str(port), str(tmp_path)],
                           capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    s0, s1 = (torch.load(tmp_path / f"rank{i}.pt") for i in range(2))
    assert list(s0) == list(s1) == ["0.weights", "0.bias", "2.weights", "2.bias"]
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k
    # and they equal one process training on both ranks' data (equal batch sizes)
    ns = {}
    exec(compile(DDP_SCRIPT, str(script), "exec"), ns)
    model = ns["build"]()
    assert not torch.equal(model[0].weights, s0["0.weights"])
    (x0, y0), (x1, y1) = ns["data"](0), ns["data"](1)
    ns["train"](model, torch.cat([x0, x1]), torch.cat([y0, y1]))
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, s0[k], rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_layer_on_cuda_matches_cpu():
    """CUDA tensors run the CuPy kernels on torch's current stream, zero-copy via DLPack."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    pytest.importorskip("cupy")
    tin, tout = d4_types()
    layer = SteerableConv2d(tin, tout, 5, padding=2)
    x = torch.randn(2, tin.size, 15, 15)
    y = layer(x)
    y.square().sum().backward()
    g = layer.weights.grad.clone()
    gpu = copy.deepcopy(layer).cuda()
    gpu.zero_grad()
    # cuDNN's TF32 rounding alone is 7–100× the tolerance: compare float32 with float32
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        yg = gpu(x.cuda())
        yg.square().sum().backward()
    torch.testing.assert_close(yg.cpu(), y, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gpu.weights.grad.cpu(), g, rtol=1e-4, atol=1e-3)
