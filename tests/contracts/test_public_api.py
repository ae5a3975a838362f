"""Every public name and documented import path (README, docs/, examples, docstrings) resolves,
and so does the public surface of cupysteer 0.1 (commit 20ffba2, before the restructure into
r2/, r3/ and backends/): its module paths, its ``__all__`` names and its pickles.

A renamed or moved module must keep these working; adding a public name means adding it here.
"""
from __future__ import annotations

import importlib
import pickle

import numpy as np
import pytest

import cupysteer as cs

from _paths import DATA

TOP = ["__version__", "PlanarGroup", "CyclicGroup", "DihedralGroup", "FlipGroup", "SO2", "O2",
       "Subgroup", "trivial_group", "Irrep", "Representation", "directsum",
       "regular_representation", "quotient_representation", "FieldType", "Space",
       "BasisSettings", "grid_points", "resolve_settings", "EmptyBasisError", "LayerBasis",
       "ExpansionPlan", "he_init", "he_std", "BasisCache", "default_cache",
       "equivariance_errors", "point_symmetries", "r2", "r3"]

PATHS = {
    "cupysteer.r2": ["PlanarGroup", "CyclicGroup", "DihedralGroup", "SO2", "O2", "FlipGroup",
                     "trivial_group", "Subgroup", "Irrep", "rotation_matrix",
                     "restrict_irrep", "regular_representation", "quotient_representation",
                     "grid_points", "polar", "resolve_settings", "SPACE"],
    "cupysteer.r2.groups": ["CyclicGroup", "DihedralGroup", "SO2", "O2", "FlipGroup",
                            "PlanarGroup", "trivial_group", "rotation_matrix"],
    "cupysteer.r2.irreps": ["Irrep"],
    "cupysteer.r2.subgroups": ["Subgroup", "restrict_irrep"],
    "cupysteer.r2.representations": ["regular_representation", "quotient_representation"],
    "cupysteer.r2.harmonics": ["alias_offsets", "pair_harmonics", "evaluate_angular"],
    "cupysteer.r2.settings": ["grid_points", "resolve_settings", "polar"],
    "cupysteer.r2.pair_basis": ["sample_pair_basis", "sample_pair_bases"],
    "cupysteer.r2.space": ["SPACE", "Plane"],
    "cupysteer.r2.point": ["point_settings", "point_pair_basis", "evaluate_point_basis"],
    "cupysteer.r3.point": ["point_settings", "point_pair_basis", "evaluate_point_basis"],
    "cupysteer.pointconv": ["PointConvBasis", "point_settings", "AGGREGATIONS"],
    "cupysteer.backends.point_numpy": ["BLOCK_COLUMNS", "contract", "contract_adjoint_features",
                                       "contract_adjoint_weights", "block_groups", "check_table"],
    "cupysteer.r2.spelling": ["parse_group", "format_group", "parse_field", "format_field"],
    "cupysteer.r3": ["clebsch_gordan", "harmonic_matrix", "spherical_harmonics",
                     "spherical_harmonics_all", "wigner_D", "Group3", "Irrep3", "SO3", "O3",
                     "Octahedral", "FullOctahedral", "Icosahedral", "FullIcosahedral",
                     "RotationsZ", "DihedralZ", "Conical", "Cylindrical", "FullCylindrical",
                     "Mirror", "Inversion", "Trivial3", "axis_angle_matrix",
                     "regular_representation", "quotient_representation",
                     "standard_representation", "grid_points", "resolve_settings",
                     "grid_points3", "resolve_settings3", "harmonic_coefficients", "SPACE"],
    "cupysteer.r3.groups": ["SO3", "O3", "Octahedral", "FullOctahedral", "Icosahedral",
                            "FullIcosahedral", "RotationsZ", "DihedralZ", "Conical",
                            "Cylindrical", "FullCylindrical", "Mirror", "Inversion",
                            "Trivial3", "Group3", "Irrep3", "axis_angle_matrix"],
    "cupysteer.r3.irreps": ["Irrep3"],
    "cupysteer.r3.so3": ["clebsch_gordan", "harmonic_matrix", "spherical_harmonics",
                         "spherical_harmonics_all", "wigner_D"],
    "cupysteer.r3.representations": ["regular_representation", "quotient_representation",
                                     "standard_representation", "decompose"],
    "cupysteer.r3.settings": ["grid_points", "resolve_settings"],
    "cupysteer.r3.pair_basis": ["harmonic_coefficients", "sample_pair_basis",
                                "sample_pair_bases"],
    "cupysteer.r3.space": ["SPACE"],
    "cupysteer.r3.spelling": ["parse_group", "format_group", "parse_field", "format_field"],
    "cupysteer.space": ["Space"],
    "cupysteer.group": ["GroupBase", "IrrepBase"],
    "cupysteer.representation": ["Representation", "directsum", "regular_representation",
                                 "quotient_representation"],
    "cupysteer.field_type": ["FieldType"],
    "cupysteer.restriction": ["disentangle", "FieldDisentangling", "FieldRestriction",
                              "ZERO_TOLERANCE"],
    "cupysteer.fieldwise": ["FieldStructure", "FieldGroup", "PERMUTATION_TOLERANCE",
                            "check_elements"],
    "cupysteer.fourier": ["FourierSampling", "spectral_regular_representation", "group_grid",
                          "irrep_ids", "REGULARISATION"],
    "cupysteer.r2.grids": ["grid"],
    "cupysteer.r3.grids": ["grid"],
    "cupysteer.settings": ["BasisSettings", "GridGeometry", "grid_geometry", "physical_grid"],
    "cupysteer.pair_basis": ["PairBasis"],
    "cupysteer.layout": ["WeightBlock", "BlockTable", "Layout", "EmptyBasisError",
                         "build_layout", "make_plan"],
    "cupysteer.reference": ["dense", "padded_blocks", "padded_bytes"],
    "cupysteer.basis": ["LayerBasis", "EmptyBasisError"],
    "cupysteer.plan": ["ExpansionPlan"],
    "cupysteer.init": ["he_init", "he_std"],
    "cupysteer.cache": ["BasisCache", "default_cache"],
    "cupysteer.equivariance": ["equivariance_errors", "point_symmetries", "grid_candidates",
                               "point_permutation"],
    "cupysteer.fields_spec": ["parse_group", "parse_field", "parse_fields", "parse_field_type",
                              "format_group", "format_field", "format_field_type",
                              "GROUP_SPELLINGS", "FIELD_SPELLINGS", "GROUP_SPELLINGS_3D",
                              "FIELD_SPELLINGS_3D"],
    "cupysteer.dlpack": ["expand", "adjoint", "expand_bias", "to_numpy", "from_numpy",
                         "framework", "device", "why_copy"],
    "cupysteer.compat.e2cnn": ["GSpace", "TrivialOnR2", "Rot2dOnR2", "FlipRot2dOnR2",
                               "Flip2dOnR2", "FieldType", "R2ConvBasis"],
    "cupysteer.compat.escnn": ["rot3dOnR3", "flipRot3dOnR3", "octaOnR3", "fullOctaOnR3",
                               "icoOnR3", "fullIcoOnR3", "rot2dOnR3", "dihedralOnR3",
                               "conicalOnR3", "cylindricalOnR3", "fullCylindricalOnR3",
                               "mirOnR3", "invOnR3", "trivialOnR3", "FieldType",
                               "R3ConvBasis"],
    "cupysteer.compat.checkpoints": ["refit_weights", "from_e2cnn_state_dict",
                                     "from_escnn_state_dict"],
    "cupysteer.cli": ["main"],
    "cupysteer.backends.numpy_backend": ["NumpyExpander", "bias_expansion"],
    "cupysteer.backends.kernel_source": ["kernel_source"],
    "cupysteer.backends.launch_v2": ["launch_config_v2", "LaunchConfigV2", "prepare_v2"],
    "cupysteer.backends.point_cupy": ["PointLaunch", "contract", "contract_adjoint_features",
                                      "contract_adjoint_weights", "BLOCK_COLUMNS"],
    "cupysteer.backends.point_harmonics": ["RadialHarmonics", "HarmonicSample"],
}
FRAMEWORK_PATHS = {
    "cupysteer.torch": ["register_basis", "expand", "adjoint", "SteerableConv2d",
                        "SteerableConv3d", "SteerableConvTranspose2d", "SteerablePointConv"],
    "cupysteer.torch.point": ["SteerablePointConv", "contract_ops", "point_contract",
                              "prepare_table", "TorchTable"],
    "cupysteer.jax": ["expand", "adjoint", "expand_bias", "conv2d", "conv3d", "init_weights",
                      "expand_eager", "expand_many", "StaticBasis", "point_conv"],
    "cupysteer.torch.grouped": ["expand_together", "GroupedExpansion"],
    "cupysteer.torch.nn": ["PointwiseNonLinearity", "ReLU", "ELU", "NormNonLinearity",
                           "GatedNonLinearity1", "InnerBatchNorm", "NormBatchNorm",
                           "GroupPooling", "NormPool", "PointwiseMaxPool2d", "PointwiseMaxPool3d",
                           "PointwiseAvgPool2d", "PointwiseAvgPool3d", "PointwiseMaxPool",
                           "PointwiseAvgPool", "FieldDropout", "transform",
                           "check_equivariance", "grid_elements", "feature_points",
                           "PointwiseAvgPoolAntialiased", "PointwiseMaxPoolAntialiased",
                           "PointwiseAvgPoolAntialiased2d", "PointwiseAvgPoolAntialiased3d",
                           "PointwiseMaxPoolAntialiased2d", "PointwiseMaxPoolAntialiased3d",
                           "MaskModule",
                           "FourierPointwise", "FourierELU", "GatedNonLinearity2",
                           "GNormBatchNorm", "IIDBatchNorm1d", "IIDBatchNorm2d",
                           "IIDBatchNorm3d", "NormMaxPool", "R2Upsampling", "R3Upsampling",
                           "RestrictionModule", "DisentangleModule", "export"],
    "cupysteer.torch.native": ["Expansion", "expansion_for", "has_kernel", "preferred",
                               "expand", "adjoint"],
    "cupysteer.torch.nn.exporting": ["export", "EXPORTERS"],
    "cupysteer.torch.nn.plain": ["ChannelGather", "Elementwise", "FieldReduce", "NormScale",
                                 "Gate", "Gate2", "NormMaxPool", "FourierSampled", "Blur",
                                 "conv1x1", "membership"],
    "cupysteer.torch.nn.antialiased": ["gaussian_filter", "PointwiseAvgPoolAntialiased2d",
                                       "PointwiseAvgPoolAntialiased3d",
                                       "PointwiseMaxPoolAntialiased2d",
                                       "PointwiseMaxPoolAntialiased3d"],
    "cupysteer.torch.nn.mask": ["MaskModule", "radial_mask"],
    "cupysteer.torch.nn.upsampling": ["R2Upsampling", "R3Upsampling"],
    "cupysteer.torch.nn.restriction": ["RestrictionModule", "DisentangleModule"],
    "cupysteer.jax_nn": ["pointwise", "relu", "elu", "norm_nonlinearity", "gated1",
                         "group_pooling", "norm_pool", "pointwise_max_pool",
                         "pointwise_avg_pool", "inner_batch_norm", "inner_batch_statistics",
                         "norm_batch_norm", "norm_batch_statistics", "transform", "upsample",
                         "restrict", "disentangle",
                         "fourier_pointwise", "fourier_elu", "gated2", "norm_max_pool",
                         "gnorm_batch_statistics", "gnorm_batch_norm", "iid_batch_statistics",
                         "iid_batch_norm", "pointwise_avg_pool_antialiased",
                         "pointwise_max_pool_antialiased", "mask"],
    "cupysteer.flax": ["SteerableConv"],
    "cupysteer.equinox": ["SteerableConv"],
}


# every module's __all__ at 0.1 (20ffba2), frozen
PATHS_0_1 = {
    "cupysteer.groups": ["PlanarGroup", "CyclicGroup", "DihedralGroup", "SO2", "O2", "FlipGroup",
                         "trivial_group", "Subgroup", "rotation_matrix"],
    "cupysteer.irreps": ["Irrep"],
    "cupysteer.harmonics": ["PairHarmonics", "pair_harmonics", "alias_offsets",
                            "evaluate_angular"],
    "cupysteer.settings": ["BasisSettings", "resolve_settings", "grid_points", "polar"],
    "cupysteer.pair_basis": ["PairBasis", "sample_pair_basis", "sample_pair_bases"],
    "cupysteer.representation": ["Representation", "directsum", "regular_representation",
                                 "quotient_representation", "ORTHOGONALITY_TOLERANCE"],
    "cupysteer.packed": ["PackedPlan", "pack_plans", "LaunchConfig", "launch_config",
                         "FP_FIELDS", "BLK_FIELDS"],
    "cupysteer.fields_spec3": ["parse_group3", "format_group3", "parse_field3", "format_field3"],
    "cupysteer._subgroups": ["make_subgroup", "restrict_irrep"],
    "cupysteer.r3.settings": ["grid_points3", "resolve_settings3"],
    "cupysteer.r3.pair_basis": ["harmonic_coefficients", "sample_pair_basis3",
                                "sample_pair_bases3"],
    "cupysteer.r3.representations": ["regular_representation", "quotient_representation",
                                     "standard_representation", "decompose", "P_STANDARD"],
    "cupysteer.r3": ["grid_points3", "resolve_settings3"],
}


@pytest.mark.parametrize("module", sorted(PATHS_0_1))
def test_paths_of_0_1(module):
    m = importlib.import_module(module)
    missing = [n for n in PATHS_0_1[module] if not hasattr(m, n)]
    assert not missing, f"{module} lost {missing} (see cupysteer._moved)"


def test_moved_paths_answer_with_the_new_objects():
    import cupysteer.groups
    import cupysteer.packed
    from cupysteer.backends.launch import launch_config
    from cupysteer.settings import grid_points
    assert cupysteer.groups.CyclicGroup is cs.CyclicGroup
    assert cupysteer.packed.launch_config is launch_config
    assert grid_points is cs.r2.grid_points
    assert cs.CyclicGroup(4).space_dimension == 2 and cs.r3.SO3().space_dimension == 3
    np.testing.assert_array_equal(
        cs.pair_basis.sample_pair_basis(cs.CyclicGroup(4).irrep(1), cs.CyclicGroup(4).irrep(0),
                                        cs.r2.resolve_settings(5), cs.r2.grid_points(5)).values,
        cs.r2.pair_basis.sample_pair_basis(cs.CyclicGroup(4).irrep(1),
                                           cs.CyclicGroup(4).irrep(0),
                                           cs.r2.resolve_settings(5), cs.r2.grid_points(5)).values)


def test_pickles_of_0_1_load_and_expand_the_same_filters():
    """Objects pickled by 0.1 (tests/data/pickles_0.1, made at 20ffba2) load, compare equal to
    the same objects built now, and their layer bases expand the filters 0.1 expanded."""
    with open(DATA / "pickles_0.1" / "objects.pkl", "rb") as f:
        old = pickle.load(f)
    G = cs.DihedralGroup(4, axis=0.3)
    assert old["groups"][:5] == [G, cs.CyclicGroup(8), cs.SO2(3), cs.O2(2), cs.FlipGroup()]
    assert old["groups"][5:] == [cs.r3.Octahedral(), cs.r3.SO3(3), cs.r3.DihedralZ(4)]
    assert old["irreps"] == [G.irrep(1, 1), cs.CyclicGroup(8).irrep(2),
                             cs.r3.Octahedral().irrep(-1)]
    assert old["reps"][0] == cs.CyclicGroup(8).regular_representation
    assert old["reps"][1] == G.quotient_representation((None, 2))
    assert old["reps"][2] == cs.r3.Octahedral().standard_representation
    assert old["sub"] == G.subgroup((1, 2))
    for L, w, filt in zip(old["layers"], (old["w"], old["w3"]), (old["filt"], old["filt3"])):
        np.testing.assert_allclose(L.expand(w), filt, rtol=0, atol=1e-13)
        new = cs.LayerBasis(L.in_type, L.out_type, L.filter_shape[0], cache=False)
        assert new.dim == L.dim and new.weight_blocks == L.weight_blocks
        np.testing.assert_allclose(new.expand(w), filt, rtol=0, atol=1e-13)
        np.testing.assert_array_equal(L.dense(), new.dense())


@pytest.mark.parametrize("name", TOP)
def test_top_level(name):
    assert hasattr(cs, name) and name in cs.__all__


@pytest.mark.parametrize("module", sorted(PATHS))
def test_documented_paths(module):
    m = importlib.import_module(module)
    missing = [n for n in PATHS[module] if not hasattr(m, n)]
    assert not missing, f"{module} lost {missing}"


@pytest.mark.parametrize("module", sorted(FRAMEWORK_PATHS))
def test_framework_paths(module):
    framework = {"jax_nn": "jax"}.get(module.split(".")[1], module.split(".")[1])
    pytest.importorskip(framework, reason=f"{module} needs its framework")
    m = importlib.import_module(module)
    missing = [n for n in FRAMEWORK_PATHS[module] if not hasattr(m, n)]
    assert not missing, f"{module} lost {missing}"


def test_groups_of_both_spaces_name_their_space():
    assert cs.CyclicGroup(4).space is cs.r2.SPACE and cs.r3.Octahedral().space is cs.r3.SPACE
    assert cs.r2.SPACE.dimension == 2 and cs.r3.SPACE.dimension == 3


def test_spaces_pickle_by_reference():
    import pickle
    for space in (cs.r2.SPACE, cs.r3.SPACE):
        assert pickle.loads(pickle.dumps(space)) is space
