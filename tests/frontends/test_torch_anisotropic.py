"""Torch layers on anisotropic / non-cubic grids: ``kernel_size`` per axis, ``spacing``.

The feature maps live on a grid with the same per-axis spacing as the filter; the layers are
exactly equivariant (float64) to the group elements that map both grids onto themselves."""
from __future__ import annotations

import copy
import io
import pickle

import pytest

torch = pytest.importorskip("torch", reason="the torch front end needs torch")

import cupysteer as cs  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.equivariance import point_permutation  # noqa: E402
from cupysteer.torch import (  # noqa: E402
    SteerableConv2d,
    SteerableConv3d,
    SteerableConvTranspose2d,
)


def _act(ftype, g, x, points):
    """(g·x)(p) = ρ(g) x(g⁻¹p) on a feature map whose pixels sit at ``points`` (physical)."""
    perm = point_permutation(ftype.group, g, points)
    assert perm is not None
    rho = torch.tensor(ftype.representation(g), dtype=x.dtype)
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    out = torch.empty_like(flat)
    out[:, :, torch.as_tensor(perm)] = torch.einsum("ab,nbp->nap", rho, flat)
    return out.reshape(x.shape)


def _grid_symmetries(G, *point_sets):
    return [g for g in G.space.grid_candidates(G)
            if all(point_permutation(G, g, p) is not None for p in point_sets)]


def _check_layer(conv, x, spacing, expected_count):
    G = conv.in_type.group
    space = G.space
    shape_in = tuple(x.shape[2:])
    with torch.no_grad():
        y = conv(x)
    shape_out = tuple(y.shape[2:])
    pin = space.grid_points(shape_in, 1, spacing)
    pout = space.grid_points(shape_out, 1, spacing)
    elements = _grid_symmetries(G, pin, pout, conv.basis.points)
    assert len(elements) == expected_count
    scale = y.abs().max()
    for g in elements:
        with torch.no_grad():
            gy = conv(_act(conv.in_type, g, x, pin))
        err = (gy - _act(conv.out_type, g, y, pout)).abs().max() / scale
        assert err <= 1e-10, (g, float(err))
    return y


def test_conv2d_rectangle_equivariance(float64):
    G = cs.DihedralGroup(4)
    tin = cs.FieldType(G, [G.trivial_representation, G.regular_representation])
    tout = cs.FieldType(G, [G.regular_representation] * 2)
    torch.manual_seed(0)
    conv = SteerableConv2d(tin, tout, (5, 3), padding=(2, 1), spacing=(1.0, 2.0))
    assert conv.kernel_size == (5, 3) and conv.spacing == (1.0, 2.0)
    assert "spacing=(1.0, 2.0)" in repr(conv)
    x = torch.randn(2, tin.size, 9, 5)  # 9 rows of 1, 5 columns of 2: a 8×8 physical box
    y = _check_layer(conv, x, (1.0, 2.0), 4)
    assert y.shape == (2, tout.size, 9, 5)


def test_conv_transpose2d_rectangle_equivariance(float64):
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    torch.manual_seed(1)
    conv = SteerableConvTranspose2d(t, t, (3, 5), padding=(1, 2), spacing=(2.0, 1.0))
    _check_layer(conv, torch.randn(1, t.size, 5, 9), (2.0, 1.0), 2)


def test_conv3d_mri_voxels_equivariance(float64):
    """Voxels 1×1×3 mm (x, y, z) sliced along D1 = z: spacing (3, 1, 1)."""
    G = r3.Octahedral()
    tin = cs.FieldType(G, [G.trivial_representation])
    tout = cs.FieldType(G, [G.regular_representation])
    torch.manual_seed(2)
    conv = SteerableConv3d(tin, tout, (3, 5, 5), padding=(1, 2, 2), spacing=(3, 1, 1))
    _check_layer(conv, torch.randn(1, 1, 5, 7, 7), (3.0, 1.0, 1.0), 8)


def test_conv3d_non_cubic_5x5x3_with_padding(float64):
    G = r3.FullOctahedral()
    tin = cs.FieldType(G, [G.trivial_representation, G.standard_representation])
    tout = cs.FieldType(G, [G.trivial_representation, G.standard_representation])
    torch.manual_seed(3)
    conv = SteerableConv3d(tin, tout, (5, 5, 3), padding=(2, 2, 1))
    assert conv.basis.filter_shape == (5, 5, 3) and conv.spacing is None
    filt, _ = conv.expand_parameters()
    assert filt.shape == (4, 4, 5, 5, 3)
    x = torch.randn(2, 4, 7, 7, 5)
    y = _check_layer(conv, x, None, 16)
    assert y.shape == (2, 4, 7, 7, 5)
    exported = conv.export()
    assert exported.kernel_size == (5, 5, 3)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), y, rtol=0, atol=1e-12)


def test_copies_pickle_and_state_dict(float64):
    G = cs.DihedralGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    torch.manual_seed(4)
    conv = SteerableConv2d(t, t, (5, 3), padding=(2, 1), spacing=(1.0, 2.0))
    x = torch.randn(1, t.size, 7, 5)
    with torch.no_grad():
        y = conv(x)
    buf = io.BytesIO()
    torch.save(conv, buf)
    buf.seek(0)
    for c in (copy.deepcopy(conv), pickle.loads(pickle.dumps(conv)),
              torch.load(buf, weights_only=False)):
        assert c.spacing == (1.0, 2.0) and c.basis == conv.basis
        with torch.no_grad():
            torch.testing.assert_close(c(x), y, rtol=0, atol=0)
    fresh = SteerableConv2d(t, t, (5, 3), padding=(2, 1), spacing=(1.0, 2.0))
    fresh.load_state_dict(conv.state_dict())
    assert set(conv.state_dict()) == {"weights", "bias"}
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), y, rtol=0, atol=0)
    other = SteerableConv2d(t, t, (5, 3), padding=(2, 1))  # unit spacing: another basis
    assert other.basis != conv.basis and other.basis.definition != conv.basis.definition


def test_torch_compile_and_gradients(float64):
    G = r3.Octahedral()
    tin = cs.FieldType(G, [G.trivial_representation])
    tout = cs.FieldType(G, [G.regular_representation])
    conv = SteerableConv3d(tin, tout, (3, 5, 5), padding=(1, 2, 2), spacing=(3, 1, 1))
    x = torch.randn(1, 1, 3, 5, 5)
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), conv(x), rtol=0, atol=1e-12)
    compiled(x).square().sum().backward()
    assert conv.weights.grad is not None and conv.weights.grad.abs().max() > 0


def test_unit_spacing_layer_is_todays_layer():
    G = cs.CyclicGroup(8)
    t = cs.FieldType(G, [G.regular_representation])
    a = SteerableConv2d(t, t, 5, padding=2)
    b = SteerableConv2d(t, t, (5, 5), padding=2, spacing=1.0)
    assert a.basis == b.basis and b.spacing is None
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, t.size, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


@pytest.mark.parametrize("cls,kw,match", [
    (SteerableConv2d, dict(kernel_size=(5, 5, 5)), "kernel_size must be a positive int or 2"),
    (SteerableConv2d, dict(kernel_size=(5,)), "kernel_size must be a positive int or 2"),
    (SteerableConv2d, dict(kernel_size=(5, 0)), "kernel_size must be a positive int or 2"),
    (SteerableConv2d, dict(kernel_size=5, spacing=(1.0, 2.0, 3.0)), "spacing must be"),
    (SteerableConv2d, dict(kernel_size=5, spacing=(1.0, -1.0)), "finite and > 0"),
    (SteerableConv2d, dict(kernel_size=5, spacing=float("nan")), "finite and > 0"),
])
def test_clear_errors(cls, kw, match):
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    ks = kw.pop("kernel_size")
    with pytest.raises(ValueError, match=match):
        cls(t, t, ks, **kw)


def test_nn_equivariance_tools_take_the_spacing(float64):
    """``cupysteer.torch.nn``'s feature_points / grid_elements / transform / check_equivariance
    place an anisotropic map at its physical points (the layers' ``spacing=``)."""
    from cupysteer.torch import nn as csnn

    G = cs.DihedralGroup(4)
    space = G.space
    for shape, spacing in (((9, 5), (1.0, 2.0)), ((4, 6), (3.0, 2.0))):
        np_pts = csnn.feature_points(shape, spacing)
        assert (np_pts == space.grid_points(shape, 1, spacing)).all()
    t = cs.FieldType(G, [G.regular_representation])
    # a 5×5 map is a square with unit steps (8 symmetries), a rectangle with steps (1, 2)
    assert len(csnn.grid_elements(G, (5, 5))) == 8
    assert len(csnn.grid_elements(G, (5, 5), (1.0, 2.0))) == 4
    torch.manual_seed(3)
    conv = SteerableConv2d(t, t, (5, 3), padding=(2, 1), spacing=(1.0, 2.0))
    errors = csnn.check_equivariance(conv, t, t, x=torch.randn(1, t.size, 9, 5),
                                     atol=1e-10, spacing=(1.0, 2.0))
    assert len(errors) == 4  # the filter's own 5×3 box of steps (1, 2) is a rectangle
    x = torch.randn(1, t.size, 9, 5)
    g = errors[-1][0]
    pts = csnn.feature_points((9, 5), (1.0, 2.0))
    assert torch.equal(csnn.transform(x, t, g, spacing=(1.0, 2.0)), _act(t, g, x, pts))
    with pytest.raises(ValueError, match="spacing must be finite and > 0"):
        csnn.feature_points((3, 3), (1.0, -1.0))
    with pytest.raises(ValueError, match="spacing must be a positive number or one per"):
        csnn.feature_points((3, 3), (1.0, 2.0, 3.0))
