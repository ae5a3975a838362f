"""Build shim: all metadata lives in setup.cfg.

setup.cfg cannot say "packages = find: plus one more", and the top-level
kernels/ directory must ship as the subpackage cupysteer.kernels (mapped in
setup.cfg's package_dir), so the package list is assembled here.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(
        include=["cupysteer", "cupysteer.*"],
        exclude=["tests", "tests.*", "benchmarks", "benchmarks.*",
                 "examples", "examples.*"],
    )
    + ["cupysteer.kernels"],
)
