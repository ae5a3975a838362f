r"""Whole-model checkpoints of e2cnn 0.2.3 / escnn 1.0.11 for the equivalent cupysteer model.

:func:`from_e2cnn_state_dict` / :func:`from_escnn_state_dict` take the cupysteer model (built
from :class:`~cupysteer.torch.SteerableConv2d`/``3d`` and :mod:`cupysteer.torch.nn` modules,
plain torch modules elsewhere) and the anchor's ``state_dict()``, and return a state dict for
``model.load_state_dict`` (or load it with ``load=True``).

Both state dicts are cut into *units*, one per module with state, in registration order:
a convolution (``weights``, ``bias``; e2cnn/escnn's derived ``filter``, ``expanded_bias``,
``bias_expansion``, ``_basisexpansion.*`` are not loaded), an ``InnerBatchNorm`` (one
``batch_norm_[size]`` BatchNorm per field size: the same keys in both libraries), a
``MaskModule`` (``mask``) or antialiased pool (``filter``) — fixed tensors, checked against the
cupysteer module's and not loaded — and any other module (``weight``, ``running_var``, …:
copied by name). Modules without state of their own (GroupPooling's ``indices`` only) are
skipped. Units are matched by name when the module names agree, otherwise in order, kind by
kind; every mismatch raises a ValueError naming both units and the fix.

Convolution weights use the anchor's order (cupysteer's native order), so e2cnn weights are
copied. escnn's bases of the subgroups of O(3) (O, I, C_N, D_N, …) start from an unseeded random
point, so its weights mean something else in every installation: the weights are refitted
from the filter escnn expanded (the ``filter`` entry of an eval-mode state dict) by
:func:`refit_weights` — exact, in milliseconds.
"""
from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np

from .. import r3 as _r3
from ..basis import LayerBasis

__all__ = ["refit_weights", "from_e2cnn_state_dict", "from_escnn_state_dict"]

_DERIVED_CONV = ("filter", "expanded_bias", "bias_expansion")
_INNER_BN = re.compile(r"^(?:(.*)\.)?(batch_norm_\[\d+\])\.(\w+)$")
_INDICES = re.compile(r"^(in_|out_)?indices_\d+$")
# derived buffers of escnn's IID/GNorm batch norms (rebuilt from the field type by cupysteer's)
_DERIVED = re.compile(r"^((in_|out_)?indices_\d+|\w+_avg|\w+_change_of_basis)$")
# escnn groups whose basis is analytic (the same for the same weights in every installation)
_ANALYTIC = (_r3.SO3, _r3.O3, _r3.Inversion, _r3.Trivial3)


# ---- the refit ---------------------------------------------------------------------------

def refit_weights(basis, filt, rtol: float = 1e-4) -> tuple[np.ndarray, float]:
    r"""The weights w of ``basis`` (a :class:`~cupysteer.LayerBasis`) whose expansion is the
    filter ``filt`` (``basis.shape``), and the relative residual ‖A w − F‖ / ‖F‖.

    With A the expansion, w = (AᵀA)⁻¹ AᵀF. AᵀF is one :meth:`~cupysteer.LayerBasis.adjoint`;
    AᵀA is block-diagonal: the fields' changes of basis Q are orthogonal and every irreps block
    β owns its own entries, so the block of β is the Gram matrix G_τ = B_τ B_τᵀ of its irreps
    pair τ's sampled basis (n_τ × n_τ). One small solve per irreps pair, for all its blocks at
    once: milliseconds instead of a dense (C_out·C_in·kᵈ × dim) least-squares problem. Exact
    (to float round-off) when F lies in the span; a residual above ``rtol`` raises.
    """
    F = np.asarray(filt, dtype=np.float64)
    if F.shape != tuple(basis.shape):
        raise ValueError(f"filt must have the layer's filter shape {tuple(basis.shape)}, got "
                         f"{F.shape}")
    plan = basis.plan
    y = basis.adjoint(F)
    w = np.zeros(basis.dim)
    for t in range(len(plan.pair_count)):
        blocks = np.flatnonzero(plan.block_pair == t)
        n = int(plan.pair_count[t])
        if blocks.size == 0 or n == 0:
            continue
        size = n * int(np.prod(plan.pair_shape[t])) * plan.num_points
        B = plan.basis[plan.pair_offset[t]:plan.pair_offset[t] + size].reshape(n, -1)
        idx = plan.weight_index[plan.block_weight[blocks][:, None] + np.arange(n)]
        w[idx] = np.linalg.solve(B @ B.T, y[idx].T).T
    norm = float(np.linalg.norm(F))
    residual = float(np.linalg.norm(basis.expand(w) - F)) / norm if norm else 0.0
    if not residual <= rtol:
        raise ValueError(f"the filter is not in the span of {basis!r} (relative residual "
                         f"{residual:.3g} > {rtol:g}): the cupysteer layer must have the "
                         f"checkpoint layer's field types, kernel size, rings, sigma and "
                         f"frequency cut-off")
    return w, residual


# ---- units -------------------------------------------------------------------------------

def _torch():
    import torch
    return torch


def _leaf(key: str) -> tuple[str, str]:
    prefix, _, leaf = key.rpartition(".")
    return prefix, leaf


def _source_units(state: dict) -> "OrderedDict[str, dict]":
    """prefix → {"kind", "entries": {local key: tensor}} in first-appearance order."""
    units: OrderedDict = OrderedDict()
    for key, value in state.items():
        if "._basisexpansion." in f".{key}":
            prefix = key.split("_basisexpansion.")[0].rstrip(".")
            local = key[len(prefix) + 1 if prefix else 0:]
        else:
            m = _INNER_BN.match(key)
            prefix, local = (m.group(1) or "", f"{m.group(2)}.{m.group(3)}") if m else _leaf(key)
        units.setdefault(prefix, {"entries": OrderedDict()})["entries"][local] = value
    for u in units.values():
        e = u["entries"]
        if "weights" in e:
            u["kind"] = "conv"
        elif any(k.startswith("batch_norm_[") for k in e):
            u["kind"] = "inner_bn"
        elif "mask" in e:
            u["kind"] = "mask"
        elif "filter" in e:
            u["kind"] = "blur"
        elif all(_INDICES.match(k) for k in e):
            u["kind"] = "stateless"
        else:
            u["kind"] = "generic"
    return OrderedDict((p, u) for p, u in units.items() if u["kind"] != "stateless")


def _target_kind(module) -> str | None:
    """The unit kind of a cupysteer module, by what it holds (cupysteer.torch is not imported
    here: this module loads without torch)."""
    if isinstance(getattr(module, "basis", None), LayerBasis) and hasattr(module, "weights"):
        return "conv"
    if any(name.startswith("batch_norm_[") for name, _ in module.named_children()):
        return "inner_bn"
    if isinstance(getattr(module, "_mask", None), np.ndarray):
        return "mask"
    if isinstance(getattr(module, "_gaussian", None), np.ndarray):
        return "blur"
    return None


def _target_units(model) -> "OrderedDict[str, tuple]":
    """prefix → (kind, module, own state keys) for every module with state, in order."""
    units: OrderedDict = OrderedDict()
    inner = []
    for name, mod in model.named_modules():
        if any(name.startswith(p + ".") or p == "" for p in inner):
            continue
        kind = _target_kind(mod)
        if kind == "inner_bn":
            inner.append(name)
            keys = [k for k in mod.state_dict()]
        else:
            keys = [k for k, v in mod._parameters.items() if v is not None]
            keys += [k for k, v in mod._buffers.items()
                     if v is not None and k not in mod._non_persistent_buffers_set]
        if kind is None and not keys:
            continue
        units[name] = (kind or "generic", mod, keys)
    return units


def _describe(prefix, kind, keys) -> str:
    return f"{prefix or '<model>'!r} ({kind}: {', '.join(sorted(keys))})"


def _match(source, target) -> list:
    """[(source prefix, target prefix)]: by name when the names agree, else in order."""
    if list(source) == list(target) or set(source) == set(target):
        pairs = [(p, p) for p in target]
    else:
        pairs = list(zip(source, target))
        if len(source) != len(target):
            extra = (f"the checkpoint's {_describe(p, u['kind'], u['entries'])}"
                     for p, u in list(source.items())[len(target):])
            extra = list(extra) or (f"the model's {_describe(p, k, keys)}"
                                    for p, (k, _, keys) in list(target.items())[len(source):])
            raise ValueError(f"the checkpoint has {len(source)} modules with state, the model "
                             f"{len(target)}; unmatched: {', '.join(extra)}. Build the "
                             f"cupysteer model with the same modules in the same order (names "
                             f"may differ)")
    for sp, tp in pairs:
        sk, tk = source[sp]["kind"], target[tp][0]
        if sk != tk:
            raise ValueError(f"checkpoint module {_describe(sp, sk, source[sp]['entries'])} "
                             f"does not match model module "
                             f"{_describe(tp, tk, target[tp][2])}; the modules must come in "
                             f"the same order with the same kinds")
    return pairs


# ---- conversion --------------------------------------------------------------------------

def _array(v) -> np.ndarray:
    return np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)


def _key(prefix, local):
    return f"{prefix}.{local}" if prefix else local


def _shape_check(key, src_key, value, want):
    if tuple(value.shape) != tuple(want):
        raise ValueError(f"{src_key}: shape {tuple(value.shape)} in the checkpoint, "
                         f"{tuple(want)} for the model's {key}; the cupysteer module must have "
                         f"the checkpoint module's field types and settings")


def _conv(sp, tp, entries, module, library, out):
    torch = _torch()
    basis = module.basis
    w = _array(entries["weights"]).astype(np.float64)
    _shape_check(_key(tp, "weights"), _key(sp, "weights"), w, (basis.dim,))
    F = entries.get("filter")
    analytic = library == "e2cnn" or isinstance(basis.in_type.group, _ANALYTIC)
    if F is not None:
        F = _array(F).astype(np.float64)
        _shape_check(_key(tp, "filter"), _key(sp, "filter"), F, basis.shape)
        scale = max(float(np.abs(F).max()), 1e-30)
        if float(np.abs(basis.expand(w) - F).max()) > 1e-4 * scale:
            if analytic:
                raise ValueError(f"{_key(sp, 'weights')}: these weights expand to another "
                                 f"filter than the checkpoint's {_key(sp, 'filter')}; the "
                                 f"model's {tp!r} must have the checkpoint layer's field "
                                 f"types and basis settings")
            w, _ = refit_weights(basis, F)
    elif not analytic:
        raise ValueError(f"{_key(sp, 'weights')}: escnn's basis for "
                         f"{basis.in_type.group.name} starts from an unseeded random point, so "
                         f"its weights cannot be read without escnn's filter: save the escnn "
                         f"state dict in eval mode (model.eval(); it then holds "
                         f"{_key(sp, 'filter')!r})")
    dtype = module.weights.dtype
    out[_key(tp, "weights")] = torch.as_tensor(w, dtype=dtype)
    if "bias" in entries:
        if module.bias is None:
            raise ValueError(f"{_key(sp, 'bias')}: the checkpoint's layer has a bias, the "
                             f"model's {tp!r} none; build it with bias=True")
        b = _array(entries["bias"])
        _shape_check(_key(tp, "bias"), _key(sp, "bias"), b, module.bias.shape)
        out[_key(tp, "bias")] = torch.as_tensor(b, dtype=module.bias.dtype)
    unknown = set(entries) - {"weights", "bias", *_DERIVED_CONV} - {
        k for k in entries if k.startswith("_basisexpansion.")}
    if unknown:
        raise ValueError(f"checkpoint layer {sp!r}: unknown entries {sorted(unknown)}")


def _fixed(sp, tp, entries, module, name):
    """A MaskModule's mask / an antialiased pool's filter: compared, not loaded."""
    theirs = _array(entries[name]).astype(np.float64)
    ours = module._mask if name == "mask" else module._gaussian
    if theirs.shape[2:] != ours.shape or not np.allclose(
            theirs, np.broadcast_to(ours, theirs.shape), rtol=1e-5, atol=1e-7):
        raise ValueError(f"{_key(sp, name)}: the checkpoint's {name} {theirs.shape} differs "
                         f"from the model's {tp!r} ({module.extra_repr()}); build it with the "
                         f"checkpoint module's settings")


def _generic(sp, tp, entries, keys, module, out):
    torch = _torch()
    state = module.state_dict()
    missing, unexpected = set(keys) - set(entries), set(entries) - set(keys)
    unexpected = {k for k in unexpected if not _DERIVED.match(k.rpartition(".")[2])}
    if missing or unexpected:
        raise ValueError(f"checkpoint module {sp!r} and model module {tp!r} hold different "
                         f"entries: only in the checkpoint {sorted(unexpected)}, only in the "
                         f"model {sorted(missing)}; build the model's module as the "
                         f"checkpoint's (e.g. InnerBatchNorm with the same fields, affine=…)")
    for k in keys:
        v = torch.as_tensor(_array(entries[k]))
        _shape_check(_key(tp, k), _key(sp, k), v, state[k].shape)
        out[_key(tp, k)] = v.to(state[k].dtype)


def _convert(model, state_dict, library: str, load: bool):
    if not hasattr(model, "named_modules") or not hasattr(model, "load_state_dict"):
        raise TypeError(f"model must be the cupysteer torch model (a torch.nn.Module), got "
                        f"{type(model).__name__}")
    if not hasattr(state_dict, "items"):
        raise TypeError(f"state_dict must be the {library} model's state_dict() (a mapping "
                        f"of names to tensors), got {type(state_dict).__name__}")
    source, target = _source_units(dict(state_dict)), _target_units(model)
    out: OrderedDict = OrderedDict()
    for sp, tp in _match(source, target):
        kind, module, keys = target[tp]
        entries = source[sp]["entries"]
        if kind == "conv":
            _conv(sp, tp, entries, module, library, out)
        elif kind in ("mask", "blur"):
            _fixed(sp, tp, entries, module, "mask" if kind == "mask" else "filter")
        else:
            _generic(sp, tp, entries, keys, module, out)
    missing = [k for k in model.state_dict() if k not in out]
    if missing:
        raise ValueError(f"the checkpoint fills no value for the model's {missing}; build the "
                         f"model with the checkpoint's modules")
    if load:
        model.load_state_dict(out, strict=True)
    return out


def from_e2cnn_state_dict(model, state_dict, *, load: bool = False) -> "OrderedDict":
    """The state dict of the cupysteer ``model`` equivalent to an e2cnn 0.2.3 model whose
    ``state_dict()`` is ``state_dict`` (see the module docstring); loaded when ``load``."""
    return _convert(model, state_dict, "e2cnn", load)


def from_escnn_state_dict(model, state_dict, *, load: bool = False) -> "OrderedDict":
    """As :func:`from_e2cnn_state_dict` for escnn 1.0.11; convolutions of groups other than
    SO(3), O(3), the inversion and the trivial group are refitted from the checkpoint's
    ``filter`` (an eval-mode state dict holds it) by :func:`refit_weights`."""
    return _convert(model, state_dict, "escnn", load)
