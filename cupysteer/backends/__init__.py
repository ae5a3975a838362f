"""Execution backends of the expansion plan: everything that executes an
:class:`~cupysteer.plan.ExpansionPlan` lives here (the core never imports this package at
module level; :class:`~cupysteer.LayerBasis` loads a backend when it first runs one).

* :mod:`.numpy_backend`: the reference, :class:`NumpyExpander` (NumPy on the CPU);
* :mod:`.tables`: index tables shared by the NumPy and JAX executors (fields grouped by
  representation, blocks grouped by irreps pair, the bias expansion);
* :mod:`.packing`: the plans packed into the kernels' integer tables (:func:`pack_plans`,
  :class:`PackedPlan`, the tables' column names); :mod:`.launch`: the launch configuration
  (tiles, grid, shared memory) of a packed plan for kernels/expand.cu (``method="fused_v1"``),
  :mod:`.launch_v2` for kernels/expand_v2.cu (``method="fused"``: per-device opt-in shared
  memory, point tiles of the adjoint and its second pass);
* :mod:`.kernel_source`: the CUDA source (with the generated column defines), compile options,
  template instantiations and argument lists;
* :mod:`.cupy_backend`: the fused launcher, :class:`CupyExpander` (CuPy, CUDA devices);
* :mod:`.padded`: the padded e2cnn-storage + cuBLAS baseline (``method="padded"``);
* :mod:`.jax_schedule`: the gather/einsum schedule of :mod:`cupysteer.jax` (pure
  ``jax.numpy``).

Nothing is imported here: importing a submodule loads only what it needs (CuPy and JAX are
optional).
"""
