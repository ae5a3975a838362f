"""Compatibility layers for users of other steerable-CNN libraries: :mod:`.e2cnn` (e2cnn 0.2.3
gspaces, field types and ``R2ConvBasis`` over the planar groups of :mod:`cupysteer.r2`) and
:mod:`.escnn` (escnn 1.0.11 gspaces on R³, field types and ``R3ConvBasis`` over
:mod:`cupysteer.r3`)."""
