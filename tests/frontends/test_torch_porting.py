"""Porting traps from e2cnn/escnn: positional stride/padding refused with the reason,
``basisexpansion``/``recompute``/``basis_filter`` keywords, ``groups`` (e2cnn's grouped
convolution: equivariant, e2cnn's weight count), errors pointing to the right guide."""
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
from cupysteer.compat import e2cnn as e  # noqa: E402
from cupysteer.r3 import groups as g3  # noqa: E402
from cupysteer.torch import (  # noqa: E402
    SteerableConv2d,
    SteerableConv3d,
    SteerableConvTranspose2d,
)

G = cs.CyclicGroup(4)
T = cs.FieldType(G, [G.regular_representation, G.trivial_representation])


@pytest.mark.parametrize("cls", [SteerableConv2d, SteerableConvTranspose2d])
def test_positional_stride_or_padding_is_refused_with_the_reason(cls):
    with pytest.raises(TypeError, match=r"R2Conv reads the 4th positional argument as "
                                        r"padding.*migrate_from_e2cnn"):
        cls(T, T, 5, 2)
    layer = cls(T, T, 5, padding=2)
    assert layer(torch.randn(1, T.size, 9, 9)).shape == (1, T.size, 9, 9)


def test_3d_positional_points_to_the_escnn_guide():
    S = g3.SO3(1)
    t = cs.FieldType(S, [S.irrep(1).representation])
    with pytest.raises(TypeError, match="R3Conv.*migrate_from_escnn"):
        SteerableConv3d(t, t, 3, 1)


def test_e2cnn_keywords():
    gs = e.Rot2dOnR2(4)
    t = e.FieldType(gs, [gs.regular_repr] * 2)
    a = SteerableConv2d(t, t, 3, basisexpansion="blocks", recompute=True)
    assert a.basis.dim == SteerableConv2d(t, t, 3).basis.dim
    with pytest.raises(ValueError, match="basisexpansion.*migrate_from_e2cnn"):
        SteerableConv2d(t, t, 3, basisexpansion="singleblock")
    with pytest.raises(TypeError, match="basis_filter.*migrate_from_e2cnn"):
        SteerableConv2d(t, t, 3, basis_filter=lambda d: True)
    with pytest.raises(TypeError, match="unsupported keyword.*migrate_from_e2cnn"):
        SteerableConv2d(t, t, 3, frobnicate=1)


def _rot90(x, rho):
    return torch.rot90(torch.einsum("ab,nbhw->nahw", rho, x), 1, dims=(-2, -1))


def test_groups_is_e2cnns_grouped_convolution():
    tin = cs.FieldType(G, [G.regular_representation, G.irrep(1).representation] * 2)
    tout = cs.FieldType(G, [G.trivial_representation, G.regular_representation] * 2)
    layer = SteerableConv2d(tin, tout, 5, padding=2, groups=2)
    half = cs.FieldType(G, [G.regular_representation, G.irrep(1).representation])
    assert layer.basis.dim == cs.LayerBasis(half, tout, 5).dim   # e2cnn: one input group
    filt, _ = layer.expand_parameters()
    assert filt.shape == (tout.size, tin.size // 2, 5, 5)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, tin.size, 11, 11)
    y = layer(x)
    rho_in = torch.tensor(tin.representation(1), dtype=torch.float32)
    rho_out = torch.tensor(tout.representation(1), dtype=torch.float32)
    lhs, rhs = layer(_rot90(x, rho_in)), _rot90(y, rho_out)
    assert ((lhs - rhs).abs().max() / y.abs().max()).item() <= 1e-5
    plain = layer.export()
    assert plain.groups == 2
    torch.testing.assert_close(plain(x), y)


def test_groups_errors():
    with pytest.raises(ValueError, match="not divisible by groups"):
        SteerableConv2d(T, T, 3, groups=3)
    uneven = cs.FieldType(G, [G.regular_representation, G.trivial_representation])
    with pytest.raises(ValueError, match="repetitions"):
        SteerableConv2d(uneven, uneven, 3, groups=2)
    with pytest.raises(ValueError, match="groups must be a positive int"):
        SteerableConv2d(T, T, 3, groups=0)
    with pytest.raises(ValueError, match="groups=1 only.*migrate_from_e2cnn"):
        SteerableConvTranspose2d(T, T, 3, groups=2)


def test_groups_in_3d():
    O = g3.Octahedral()
    t = cs.FieldType(O, [O.trivial_representation, O.irrep(1).representation] * 2)
    layer = SteerableConv3d(t, t, 3, padding=1, groups=2)
    half = cs.FieldType(O, [O.trivial_representation, O.irrep(1).representation])
    assert layer.basis.dim == cs.LayerBasis(half, t, 3).dim
    x = torch.randn(1, t.size, 5, 5, 5)
    torch.testing.assert_close(layer.export()(x), layer(x))
