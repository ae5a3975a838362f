"""The point-convolution kernels (``kernels/point_conv.cu``) on the CPU, launched by the CuPy
backend's own :class:`~cupysteer.backends.point_cupy.PointLaunch`.

:class:`CpuPointLaunch` only swaps the runtime (as :class:`harness.CpuExpander` does for the
grid kernels): the stand-in ``cupy`` of :class:`harness.HostCupy` (outputs poisoned with NaN
before every launch) and the module built by g++ from the very source text, options and
name expressions the CuPy path hands to ``cupy.RawModule``. Everything else — the CSRs,
the launch configurations, the argument lists and the checks — is the backend's code.
NumPy arrays in, NumPy arrays out.
"""
from __future__ import annotations

import numpy as np

from cupysteer.backends.point_cupy import (
    POINT_OPTIONS,
    PointLaunch,
    compile_point_module,
    point_name_expressions,
    point_source,
)
from cupysteer.backends.point_harmonics import HarmonicSample

from .harness import HostArray, HostCupy, emulated_module

__all__ = ["CpuPointLaunch", "point_module", "device"]


def point_module(sanitizer="env"):
    """The emulated module of point_conv.cu (cached per sanitizer)."""
    return emulated_module(point_source(), POINT_OPTIONS, point_name_expressions(), sanitizer)


def device(x):
    """NumPy arrays viewed as the stand-in's device arrays (a HarmonicSample's delta too;
    anything else unchanged)."""
    if isinstance(x, HarmonicSample):
        return x._replace(delta=device(x.delta))
    return x.view(HostArray) if isinstance(x, np.ndarray) else x


class CpuPointLaunch(PointLaunch):
    """:class:`PointLaunch` running the emulated kernels. ``threads`` may be lowered (fewer
    OS threads per emulated CUDA block); ``launches`` lists the kernels launched."""

    def __init__(self, *args, sanitizer="env", poison: bool = True, threads: int | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.cupy = HostCupy(sanitizer, poison)
        if threads is not None:
            self.threads = threads

    @property
    def launches(self) -> list:
        return self.cupy.launches

    def _cupy(self):
        return self.cupy

    def _module(self):
        return compile_point_module(self.cupy)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("cupy")
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.cupy = HostCupy()

    def contract(self, basis, weights, g):
        return np.asarray(super().contract(device(basis), device(weights), device(g)))

    def adjoint_features(self, basis, weights, grad_y):
        return np.asarray(super().adjoint_features(device(basis), device(weights),
                                                   device(grad_y)))

    def adjoint_weights(self, basis, grad_y, g, n_weights=None):
        return np.asarray(super().adjoint_weights(device(basis), device(grad_y), device(g),
                                                  n_weights))
