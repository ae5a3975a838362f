"""Equivariant non-linearities on plain tensors (e2cnn's names, parameters and defaults).

* :class:`PointwiseNonLinearity` (:class:`ReLU`, :class:`ELU`): an elementwise function on
  pointwise fields (ρ(g) a permutation of each field's channels), which it commutes with.
* :class:`NormNonLinearity`: each field scaled by f(‖x_f‖ − b_f)/‖x_f‖; the field norm is
  invariant for every (orthogonal) representation, so any field is accepted.
* :class:`GatedNonLinearity1`: each gated field times sigmoid(gate − bias), its gate a trivial
  field (e2cnn's learnt ``bias``; gates given to the gated fields in size order).
* :class:`GatedNonLinearity2`: the same with the gates and the gated fields in two tensors
  (e2cnn's two-input form) and a learnt bias: gated_i · sigmoid(gate_i − bias_i).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...field_type import FieldType
from ._common import FieldwiseModule, as_index, field_structure, sub_type

__all__ = ["PointwiseNonLinearity", "ReLU", "ELU", "NormNonLinearity", "GatedNonLinearity1",
           "GatedNonLinearity2"]

_POINTWISE = {"p_relu": F.relu, "p_elu": F.elu, "p_sigmoid": torch.sigmoid,
              "p_tanh": torch.tanh}
_NOT_POINTWISE = ("use NormNonLinearity (norm-based, any field) or GatedNonLinearity1 "
                  "(gates: trivial fields) for it, or change the representation to a regular "
                  "or quotient one")


class PointwiseNonLinearity(FieldwiseModule):
    """e2cnn's ``PointwiseNonLinearity(in_type, function='p_relu')``: ``function`` applied to
    every channel. ``function`` is one of e2cnn's ``'p_relu'``, ``'p_elu'``, ``'p_sigmoid'``,
    ``'p_tanh'`` or a callable acting elementwise on a tensor (its elementwise action is the
    caller's promise; the field types are checked). Every field must be pointwise."""

    def __init__(self, in_type, function="p_relu"):
        super().__init__(in_type)
        if isinstance(function, str):
            if function not in _POINTWISE:
                raise ValueError(f"function must be one of {', '.join(map(repr, _POINTWISE))} "
                                 f"or an elementwise callable, got {function!r}")
            function = _POINTWISE[function]
        elif not callable(function):
            raise ValueError(f"function must be one of {', '.join(map(repr, _POINTWISE))} or "
                             f"an elementwise callable, got {function!r}")
        self.fields.require_pointwise(type(self).__name__, _NOT_POINTWISE)
        self.function = function

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.function(x)


class ReLU(PointwiseNonLinearity):
    """e2cnn's ``ReLU(in_type, inplace=False)`` (pointwise fields only)."""

    def __init__(self, in_type, inplace: bool = False):
        super().__init__(in_type, F.relu)
        self.inplace = bool(inplace)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return F.relu(x, inplace=self.inplace)


class ELU(PointwiseNonLinearity):
    """e2cnn's ``ELU(in_type, alpha=1.0, inplace=False)`` (pointwise fields only)."""

    def __init__(self, in_type, alpha: float = 1.0, inplace: bool = False):
        super().__init__(in_type, F.elu)
        self.alpha = float(alpha)
        self.inplace = bool(inplace)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return F.elu(x, alpha=self.alpha, inplace=self.inplace)


def _squash(t: torch.Tensor) -> torch.Tensor:
    return t / (1.0 + t)


_NORM_FUNCTIONS = {"n_relu": torch.relu, "n_sigmoid": torch.sigmoid, "squash": _squash}


class NormNonLinearity(FieldwiseModule):
    r"""e2cnn's ``NormNonLinearity(in_type, function='n_relu', bias=True)``.

    Every field x_f is multiplied by f(‖x_f‖ − b_f) / ‖x_f‖ (by 0 where ‖x_f‖ < ``eps``), with
    f = relu (``'n_relu'``), sigmoid (``'n_sigmoid'``) or t/(1+t) (``'squash'``, no bias) and
    b_f = exp(``log_bias``). ‖x_f‖ is the norm of the field's channels, invariant for every
    field (orthogonal representations), so every field type is accepted.

    Parameters and buffers as e2cnn: ``log_bias`` of shape (1, n_fields, 1, …, 1), zeros, its
    entries ordered by field size (ascending, stable: e2cnn's order — field order when the
    sizes do not decrease); ``eps`` = 1e-10 (a parameter without gradient in e2cnn, a buffer
    here: the same state-dict entry).
    """

    def __init__(self, in_type, function: str = "n_relu", bias: bool = True):
        super().__init__(in_type)
        if function not in _NORM_FUNCTIONS:
            raise ValueError(f"function must be one of {', '.join(map(repr, _NORM_FUNCTIONS))}, "
                             f"got {function!r}")
        if function == "squash" and bias:
            raise ValueError("function='squash' takes no bias (as e2cnn): pass bias=False")
        self.function = function
        self.n_fields = n = self.fields.n_fields
        if bias:
            self.log_bias = nn.Parameter(torch.zeros(1, n, *[1] * self.spatial_dims))
        else:
            self.register_parameter("log_bias", None)
        self.register_buffer("eps", torch.tensor(1e-10))
        # field f uses log_bias[:, position of f in the size order]
        self.register_buffer("bias_index", as_index(np.argsort(self.fields.size_order)),
                             persistent=False)
        self.register_buffer("channel_field", as_index(self.fields.channel_field),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        norms2 = field_squared_norms(x, self.channel_field, self.n_fields)
        eps = self.eps.to(x.dtype)
        norms = torch.sqrt(torch.clamp(norms2, min=eps * eps))
        if self.log_bias is not None:
            norms_shifted = norms - torch.exp(self.log_bias.index_select(1, self.bias_index))
        else:
            norms_shifted = norms
        scale = _NORM_FUNCTIONS[self.function](norms_shifted) / norms
        scale = torch.where(norms2 < eps * eps, torch.zeros_like(scale), scale)
        return x * scale.index_select(1, self.channel_field)


def field_squared_norms(x: torch.Tensor, channel_field: torch.Tensor, n_fields: int):
    """(N, n_fields, *spatial): the squared norm of every field's channels."""
    out = x.new_zeros((x.shape[0], n_fields) + tuple(x.shape[2:]))
    return out.index_add(1, channel_field, x * x)


class GatedNonLinearity1(FieldwiseModule):
    """e2cnn's ``GatedNonLinearity1(in_type, gates=None, drop_gates=True)``.

    ``gates`` lists, per field, ``'gate'`` or ``'gated'``; by default the first half of the
    fields are gates and the second half the gated fields. Gates must be trivial fields of size
    1 (checked numerically), the gated fields may be any fields. As e2cnn, the gated fields
    sorted by size (ascending, stable) take the gates in turn (the i-th gated field the i-th
    gate when the sizes do not decrease), and a gated field is multiplied by
    sigmoid(gate − bias_gate). The output holds the gated fields (``drop_gates=True``) or
    every field, the gates replaced by sigmoid(gate − bias) (``drop_gates=False``).

    Parameter ``bias`` (1, n_gates, 1, …, 1), e2cnn's state-dict entry; initialised to zeros
    (e2cnn draws it from a standard normal, as it does, and cupysteer's
    :class:`GatedNonLinearity2` does, for the two-input gate) so that an untrained module is
    the plain gate. Loading takes escnn's ``bias`` of shape (1, n_gates) and fills a missing
    one with zeros.
    """

    def __init__(self, in_type, gates=None, drop_gates: bool = True):
        super().__init__(in_type)
        n = self.fields.n_fields
        if gates is None:
            if n % 2:
                raise ValueError(f"in_type has {n} fields: without gates=, the first half are "
                                 f"the gates and the second half the gated fields, so the "
                                 f"number must be even; pass gates=['gate', 'gated', …]")
            gates = ["gate"] * (n // 2) + ["gated"] * (n // 2)
        gates = list(gates) if isinstance(gates, (list, tuple)) else gates
        if not isinstance(gates, list) or len(gates) != n or any(
                g not in ("gate", "gated") for g in gates):
            raise ValueError(f"gates must list 'gate' or 'gated' for each of the {n} fields of "
                             f"in_type, got {gates!r}")
        gate_fields = [f for f, g in enumerate(gates) if g == "gate"]
        gated_fields = [f for f, g in enumerate(gates) if g == "gated"]
        if len(gate_fields) != len(gated_fields):
            raise ValueError(f"gates: {len(gate_fields)} gates for {len(gated_fields)} gated "
                             f"fields; every gated field needs one gate")
        self.fields.require_trivial("GatedNonLinearity1: the gates", gate_fields,
                                    "; mark it 'gated' or use a trivial field as its gate")
        self.gates = gates
        self.drop_gates = bool(drop_gates)
        if self.drop_gates:
            self.out_type = sub_type(in_type, gated_fields)
        sizes = in_type.field_sizes[gated_fields]
        by_size = np.array(gated_fields)[np.argsort(sizes, kind="stable")]
        gate_number = np.zeros(in_type.size, dtype=np.int64)  # channel -> its gate's index
        for i, gated in enumerate(by_size):
            gate_number[self.fields.channels(gated)] = i
        gated_ch = np.concatenate([self.fields.channels(f) for f in gated_fields])
        gate_ch = np.array([self.fields.channels(f)[0] for f in gate_fields], np.int64)
        self.bias = nn.Parameter(torch.zeros(1, len(gate_fields), *[1] * self.spatial_dims))
        self.register_buffer("gated_channels", as_index(gated_ch), persistent=False)
        # per gated channel: its gate's index among the gates
        self.register_buffer("gate_of_channel", as_index(gate_number[gated_ch]),
                             persistent=False)
        self.register_buffer("gate_channels", as_index(gate_ch), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        sig = torch.sigmoid(x.index_select(1, self.gate_channels) - self.bias)
        gated = x.index_select(1, self.gated_channels) * sig.index_select(1, self.gate_of_channel)
        if self.drop_gates:
            return gated
        out = x.index_copy(1, self.gated_channels, gated)
        return out.index_copy(1, self.gate_channels, sig)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Also drops e2cnn's derived ``input_indices_*``/``output_indices_*``/
        ``gates_indices`` buffers, takes escnn's ``bias`` of shape (1, n_gates) and fills a
        missing ``bias`` (state dicts of cupysteer before it had one) with zeros."""
        for k in [k for k in state_dict if k.startswith(prefix)]:
            rest = k[len(prefix):]
            if "." not in rest and rest.startswith(("input_indices_", "output_indices_",
                                                    "gates_indices")):
                del state_dict[k]
        bias = state_dict.get(prefix + "bias")
        if bias is None:
            state_dict[prefix + "bias"] = torch.zeros_like(self.bias)
        elif tuple(bias.shape) == tuple(self.bias.shape[:2]):
            state_dict[prefix + "bias"] = bias.reshape(self.bias.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class GatedNonLinearity2(FieldwiseModule):
    """e2cnn's ``GatedNonLinearity2(in_type=(gates_type, gated_type))``; called as
    ``module(gates, x)``.

    ``gates_type``: trivial fields of size 1, one per field of ``gated_type`` (any fields).
    The gates are given to the gated fields in e2cnn's order: the gated fields sorted by size
    (ascending, stable) take the gates in turn (field order when the sizes do not decrease).
    Output (``out_type = gated_type``): gated field f times sigmoid(gate_f − bias_f).
    Parameter ``bias`` of shape (1, n_gates, 1, …, 1), initialised from a standard normal as
    e2cnn (unlike :class:`GatedNonLinearity1` here, whose bias starts at zeros; e2cnn draws
    both from a standard normal). Equivariant because the gates are invariant scalars.
    """

    def __init__(self, in_type):
        if not isinstance(in_type, (tuple, list)) or len(in_type) != 2 or not all(
                isinstance(t, FieldType) for t in in_type):
            raise TypeError("in_type must be a pair (gates_type, gated_type) of cupysteer "
                            f"FieldTypes (e2cnn's GatedNonLinearity2), got {in_type!r:.120}")
        gates_type, gated_type = in_type
        if gates_type.group != gated_type.group:
            raise ValueError(f"the gates and the gated fields must share one group, got "
                             f"{gates_type.group!r} and {gated_type.group!r}")
        super().__init__(gated_type)
        gates = field_structure(gates_type, "in_type[0] (the gates)")
        gates.require_trivial("GatedNonLinearity2: the gates (in_type[0])",
                              range(gates.n_fields))
        if gates.n_fields != self.fields.n_fields:
            raise ValueError(f"GatedNonLinearity2: {gates.n_fields} gates for "
                             f"{self.fields.n_fields} gated fields; in_type[0] needs one "
                             f"trivial field per field of in_type[1]")
        self.in_type = (gates_type, gated_type)
        self.out_type = gated_type
        n = gates.n_fields
        self.bias = nn.Parameter(torch.randn(1, n, *[1] * self.spatial_dims))
        gate_of_field = np.empty(n, dtype=np.int64)
        gate_of_field[self.fields.size_order] = np.arange(n)
        self.register_buffer("gate_of_channel", as_index(gate_of_field[self.fields.channel_field]),
                             persistent=False)

    def forward(self, gates: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        n = self.bias.shape[1]
        if not isinstance(gates, torch.Tensor) or gates.shape != (x.shape[0], n) + x.shape[2:]:
            raise ValueError(f"GatedNonLinearity2: gates must have shape "
                             f"{(x.shape[0], n) + tuple(x.shape[2:])} (one trivial field per "
                             f"gated field, x's batch and grid), got "
                             f"{getattr(gates, 'shape', type(gates).__name__)}")
        sig = torch.sigmoid(gates - self.bias)
        return x * sig.index_select(1, self.gate_of_channel)
