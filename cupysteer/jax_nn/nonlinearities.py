"""Pointwise and gated non-linearities on JAX arrays (torch: cupysteer.torch.nn
``PointwiseNonLinearity``, ``ReLU``, ``ELU``, ``GatedNonLinearity1``/``2``)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..field_type import FieldType
from ._common import _field_vector, _prepare

_NOT_POINTWISE = ("use norm_nonlinearity (norm-based, any field) or gated1 (gates: trivial "
                  "fields) for it, or change the representation to a regular or quotient one")


def pointwise(x, field_type: FieldType, function):
    """``function`` (elementwise on arrays) applied to every channel; pointwise fields only
    (torch: ``PointwiseNonLinearity``)."""
    if not callable(function):
        raise ValueError(f"function must be an elementwise callable, got {function!r}")
    _prepare(x, field_type, "pointwise").require_pointwise("pointwise", _NOT_POINTWISE)
    return function(x)


def relu(x, field_type: FieldType):
    """max(x, 0) on every channel; pointwise fields only (torch: ``ReLU``)."""
    _prepare(x, field_type, "relu").require_pointwise("relu", _NOT_POINTWISE)
    return jax.nn.relu(x)


def elu(x, field_type: FieldType, alpha: float = 1.0):
    """ELU on every channel; pointwise fields only (torch: ``ELU``)."""
    _prepare(x, field_type, "elu").require_pointwise("elu", _NOT_POINTWISE)
    return jax.nn.elu(x, alpha)


def gated1(x, field_type: FieldType, gates=None, drop_gates: bool = True, bias=None):
    """Gated fields times sigmoid(gate − bias) (torch: ``GatedNonLinearity1``; ``gates`` lists
    'gate'/'gated' per field, default: first half gates; as e2cnn, the gated fields sorted by
    size (stable) take the gates in turn). Gates: trivial fields of size 1; ``bias``: one per
    gate (gate order) or None. Output: the gated fields (``drop_gates``) or every field, the
    gates replaced by sigmoid(gate − bias)."""
    fs = _prepare(x, field_type, "gated1")
    n = fs.n_fields
    if gates is None:
        if n % 2:
            raise ValueError(f"field_type has {n} fields: without gates= the number must be "
                             f"even; pass gates=['gate', 'gated', …]")
        gates = ["gate"] * (n // 2) + ["gated"] * (n // 2)
    gates = list(gates)
    if len(gates) != n or any(g not in ("gate", "gated") for g in gates):
        raise ValueError(f"gates must list 'gate' or 'gated' for each of the {n} fields, got "
                         f"{gates!r}")
    gate_f = [f for f, g in enumerate(gates) if g == "gate"]
    gated_f = [f for f, g in enumerate(gates) if g == "gated"]
    if len(gate_f) != len(gated_f):
        raise ValueError(f"gates: {len(gate_f)} gates for {len(gated_f)} gated fields")
    fs.require_trivial("gated1: the gates", gate_f, "; mark it 'gated'")
    order = np.argsort(field_type.field_sizes[gated_f], kind="stable")
    gate_number = np.empty(len(gated_f), np.int64)
    gate_number[order] = np.arange(len(gated_f))              # gated field i → its gate
    gated_ch = np.concatenate([fs.channels(f) for f in gated_f])
    gate_of = np.concatenate([np.full(fs.channels(f).size, k)
                              for f, k in zip(gated_f, gate_number)])
    gate_ch = np.array([fs.channels(f)[0] for f in gate_f], np.int64)
    g = x[:, gate_ch]
    if bias is not None:
        g = g - _field_vector(bias, len(gate_f), "bias", x.dtype).reshape(
            (1, -1) + (1,) * (x.ndim - 2))
    sig = jax.nn.sigmoid(g)
    gated = x[:, gated_ch] * sig[:, gate_of]
    if drop_gates:
        return gated
    return x.at[:, gated_ch].set(gated).at[:, gate_ch].set(sig)


def gated2(gates, x, field_type: FieldType, bias=None):
    """x_f · sigmoid(gate − bias) (torch: ``GatedNonLinearity2``): ``field_type`` is the gated
    fields' type; ``gates`` [N, n_fields, …] (one trivial gate per field), given to the fields
    sorted by size (stable), as e2cnn; ``bias``: one per gate or None."""
    fs = _prepare(x, field_type, "gated2")
    n = fs.n_fields
    if jnp.shape(gates) != (x.shape[0], n) + x.shape[2:]:
        raise ValueError(f"gated2: gates must have shape {(x.shape[0], n) + x.shape[2:]} (one "
                         f"gate per field), got {jnp.shape(gates)}")
    gate_of_field = np.empty(n, np.int64)
    gate_of_field[fs.size_order] = np.arange(n)
    if bias is not None:
        gates = gates - _field_vector(bias, n, "bias", x.dtype).reshape(
            (1, -1) + (1,) * (x.ndim - 2))
    return x * jax.nn.sigmoid(gates)[:, gate_of_field[fs.channel_field]]
