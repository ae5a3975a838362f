"""Fourier non-linearities on JAX arrays (torch: cupysteer.torch.nn ``FourierPointwise``,
``FourierELU``): sample the field on the group, apply the function, project back."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..field_type import FieldType
from ..fourier import FourierSampling
from ._common import check_map

_FOURIER_FUNCTIONS = {"p_relu": jax.nn.relu, "p_elu": jax.nn.elu,
                      "p_sigmoid": jax.nn.sigmoid, "p_tanh": jnp.tanh}


def fourier_pointwise(x, sampling: FourierSampling, function: str = "p_relu"):
    """ŷ = A⁺ f(A x̂) for every field of x̂ (torch: ``FourierPointwise``): ``sampling`` is a
    :class:`cupysteer.fourier.FourierSampling`; x holds C / dim ρ fields of its spectral
    regular representation ρ."""
    if not isinstance(sampling, FourierSampling):
        raise TypeError(f"sampling must be a cupysteer.fourier.FourierSampling, got "
                        f"{type(sampling).__name__}")
    if function not in _FOURIER_FUNCTIONS:
        raise ValueError(f"function must be one of {', '.join(map(repr, _FOURIER_FUNCTIONS))}, "
                         f"got {function!r}")
    rho = sampling.representation
    channels = max(1, x.shape[1] // rho.size) if x.ndim >= 2 else 1
    check_map(x, FieldType(rho.group, [rho] * channels), "fourier_pointwise")
    A, Ainv = jnp.asarray(sampling.A, x.dtype), jnp.asarray(sampling.A_inv, x.dtype)
    x_hat = x.reshape((x.shape[0], channels, rho.size, -1))
    y = _FOURIER_FUNCTIONS[function](jnp.einsum("bcfp,gf->bcgp", x_hat, A))
    y_hat = jnp.einsum("bcgp,fg->bcfp", y, Ainv)
    return y_hat.reshape((x.shape[0], channels * Ainv.shape[0]) + x.shape[2:])


def fourier_elu(x, sampling: FourierSampling):
    """:func:`fourier_pointwise` with ELU (torch: ``FourierELU``)."""
    return fourier_pointwise(x, sampling, "p_elu")
