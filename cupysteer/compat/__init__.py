"""Compatibility layers for users of other steerable-CNN libraries (``compat.e2cnn``)."""
