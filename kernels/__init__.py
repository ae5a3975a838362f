"""CUDA sources of cupysteer, shipped as package data (one kernel family per .cu file)."""
