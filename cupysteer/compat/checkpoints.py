r"""Whole-model checkpoints of e2cnn 0.2.3 / escnn 1.0.11 for the equivalent cupysteer model.

:func:`from_e2cnn_state_dict` / :func:`from_escnn_state_dict` take the cupysteer model (built
from :class:`~cupysteer.torch.SteerableConv2d`/``3d`` and :mod:`cupysteer.torch.nn` modules,
plain torch modules elsewhere) and the anchor's ``state_dict()``, and return a state dict for
``model.load_state_dict`` (or load it with ``load=True``).

Both state dicts are cut into *units*, one per module with state, in registration order.
Supported module kinds:

* a convolution (``weights``, ``bias``; the anchors' derived ``filter``, ``expanded_bias``,
  ``bias_expansion``, ``_basisexpansion.*`` are not loaded). The weights are checked against
  the checkpoint: with its ``filter`` (eval mode) or, in a training-mode checkpoint, the filter
  they expand to with its own ``_basisexpansion.block_expansion_(in, out).sampled_basis``
  (compared with ``basis.expand(w)``); without either, e2cnn's and the analytic escnn groups'
  weights are copied with a warning, the other escnn groups' raise.
* a ``MaskModule`` (``mask``) or antialiased pool (``filter``): fixed tensors, checked against
  the cupysteer module's and not loaded.
* every other module with state — ``InnerBatchNorm`` (one ``batch_norm_[size]`` BatchNorm per
  field size), ``NormBatchNorm`` (e2cnn's per-size ``<s>_weight``/``<s>_running_var``),
  ``IIDBatchNorm1d``/``2d``/``3d``, ``GNormBatchNorm``, ``NormNonLinearity``,
  ``GatedNonLinearity1`` (escnn's ``bias`` (1, n)), ``GatedNonLinearity2``, the Fourier
  non-linearities, plain torch layers: loaded into a copy of the cupysteer module through its
  own ``_load_from_state_dict`` (whose hooks take the anchors' entries and drop their derived
  ``indices``/``_avg``/``_change_of_basis``/``vars_*`` buffers: one source of truth) and read
  back.

Modules without state of their own (GroupPooling's ``indices`` only) are skipped. Units are
matched by name when the module names agree, otherwise in order, kind by kind; every mismatch
raises a ValueError naming both units and the fix.

Convolution weights use the anchor's order (cupysteer's native order), so e2cnn weights are
copied. escnn's bases of the subgroups of O(3) (O, I, C_N, D_N, …) start from an unseeded random
point, so its weights mean something else in every installation: the weights are refitted
by :func:`refit_weights` — exact, in milliseconds — from the filter escnn expanded (the
``filter`` entry of an eval-mode state dict) or, in a training-mode state dict, the filter the
weights expand to with the checkpoint's sampled bases.
"""
from __future__ import annotations

import copy
import re
import warnings
from collections import OrderedDict

import numpy as np

from .. import r3 as _r3
from ..basis import LayerBasis

__all__ = ["refit_weights", "from_e2cnn_state_dict", "from_escnn_state_dict"]

_DERIVED_CONV = ("filter", "expanded_bias", "bias_expansion")
_INNER_BN = re.compile(r"^(?:(.*)\.)?(batch_norm_\[\d+\])\.(\w+)$")
_INDICES = re.compile(r"^(in_|out_)?indices_\d+$")
_SAMPLED = re.compile(r"^_basisexpansion\.block_expansion_\('([^']*)', '([^']*)'\)"
                      r"\.sampled_basis$")
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


def _fields_by_name(ftype):
    """representation name → (its channels in field order, its number of fields), as the
    anchors' block expansions group the fields."""
    channels, count, pos = {}, {}, 0
    for rep in ftype.representations:
        channels.setdefault(rep.name, []).extend(range(pos, pos + rep.size))
        count[rep.name] = count.get(rep.name, 0) + 1
        pos += rep.size
    return channels, count


def _sampled_filter(sp, entries, basis, w):
    r"""The filter the checkpoint's own sampled bases (``_basisexpansion.block_expansion_(in,
    out).sampled_basis``, (d, o, i, P), present in train and eval mode) expand ``w`` to, as the
    anchors do: per representation pair (sorted by names), its weights (n_out·n_in, d), the
    block k,o,i,P = Σ_b w[k, b] B[b, o, i, P] placed at the pair's fields. None without them
    (all-zero bases, placeholders of entries whose values were not kept, count as absent)."""
    blocks = {}
    for k, v in entries.items():
        m = _SAMPLED.match(k)
        if m:
            blocks[(m.group(1), m.group(2))] = _array(v).astype(np.float64)
    if not any(np.any(B) for B in blocks.values()):
        return None
    (in_ch, in_n), (out_ch, out_n) = (_fields_by_name(basis.in_type),
                                      _fields_by_name(basis.out_type))
    F = np.zeros((basis.shape[0], basis.shape[1], int(np.prod(basis.shape[2:]))))
    pos = 0
    for pair in sorted(blocks):
        B = blocks[pair]
        n_o, n_i = out_n.get(pair[1], 0), in_n.get(pair[0], 0)
        size = n_o * n_i * B.shape[0]
        if not n_o or not n_i or B.shape[-1] != F.shape[2] or pos + size > w.size:
            raise ValueError(f"{_key(sp, '_basisexpansion')}: the checkpoint's basis block "
                             f"{pair} {B.shape} does not fit the model's layer ({basis!r}); "
                             f"build it with the checkpoint layer's field types and kernel "
                             f"size")
        f = np.einsum("boip,kb->koip", B, w[pos:pos + size].reshape(n_o * n_i, B.shape[0]))
        f = f.reshape(n_o, n_i, *B.shape[1:]).transpose(0, 2, 1, 3, 4)
        F[np.ix_(out_ch[pair[1]], in_ch[pair[0]])] = f.reshape(n_o * B.shape[1], -1, F.shape[2])
        pos += size
    return F.reshape(basis.shape)


def _conv(sp, tp, entries, module, library, out):
    torch = _torch()
    basis = module.basis
    w = _array(entries["weights"]).astype(np.float64)
    _shape_check(_key(tp, "weights"), _key(sp, "weights"), w, (basis.dim,))
    F = entries.get("filter")
    analytic = library == "e2cnn" or isinstance(basis.in_type.group, _ANALYTIC)
    source = f"the checkpoint's {_key(sp, 'filter')}"
    if F is None:
        F = _sampled_filter(sp, entries, basis, w)
        source = f"the expansion by the checkpoint's {_key(sp, '_basisexpansion')} bases"
    if F is not None:
        F = np.asarray(_array(F), dtype=np.float64)
        _shape_check(_key(tp, "filter"), _key(sp, "filter"), F, basis.shape)
        scale = max(float(np.abs(F).max()), 1e-30)
        if float(np.abs(basis.expand(w) - F).max()) > 1e-4 * scale:
            if analytic:
                raise ValueError(f"{_key(sp, 'weights')}: these weights expand to another "
                                 f"filter than {source}; the model's {tp!r} must have the "
                                 f"checkpoint layer's field types and basis settings")
            w, _ = refit_weights(basis, F)
    elif not analytic:
        raise ValueError(f"{_key(sp, 'weights')}: escnn's basis for "
                         f"{basis.in_type.group.name} starts from an unseeded random point, so "
                         f"its weights cannot be read without escnn's filter or bases: save "
                         f"the escnn state dict in eval mode (model.eval(); it then holds "
                         f"{_key(sp, 'filter')!r}) or keep its '_basisexpansion.*' entries")
    else:
        warnings.warn(f"{_key(sp, 'weights')}: the checkpoint holds neither {library}'s "
                      f"filter nor its '_basisexpansion.*' sampled bases, so the weights are "
                      f"copied unchecked; keep those entries to have the model's {tp!r} "
                      f"basis checked against the checkpoint's", stacklevel=4)
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


def _generic(sp, tp, kind, entries, keys, module, out):
    """Loaded through the module's own loading (its ``_load_from_state_dict`` hooks accept and
    drop the anchor's derived entries) into a copy, and read back."""
    torch = _torch()
    probe = copy.deepcopy(module)
    state = OrderedDict((k, torch.as_tensor(_array(v))) for k, v in entries.items())
    missing, unexpected, errors = [], [], []
    try:
        if kind == "inner_bn":  # its BatchNorms are children: load the whole module
            result = probe.load_state_dict(state, strict=False)
            missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
        else:
            probe._load_from_state_dict(state, "", {}, True, missing, unexpected, errors)
    except (RuntimeError, ValueError) as ex:
        errors.append(str(ex))
    if missing or unexpected or errors:
        detail = "; ".join([*errors, *([f"only in the checkpoint {sorted(unexpected)}"]
                                       if unexpected else []),
                            *([f"only in the model {sorted(missing)}"] if missing else [])])
        raise ValueError(f"checkpoint module {sp!r} does not load into model module {tp!r} "
                         f"({type(module).__name__}): {detail}; build the model's module as "
                         f"the checkpoint's (the same field types and settings, e.g. affine=…)")
    own = probe.state_dict()
    for k in keys:
        out[_key(tp, k)] = own[k].detach().clone()


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
            _generic(sp, tp, kind, entries, keys, module, out)
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
    SO(3), O(3), the inversion and the trivial group are refitted by :func:`refit_weights` from
    the checkpoint's ``filter`` (eval mode) or the filter of its sampled bases (train mode)."""
    return _convert(model, state_dict, "escnn", load)
