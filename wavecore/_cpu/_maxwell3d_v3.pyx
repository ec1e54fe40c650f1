# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""The 3-D time loops of _maxwell3d.pyx built for x86-64-v3 (AVX2, FMA): setup.py compiles this
module with the v3 variant's flags; wavecore/_cpu/variants.py imports it only on
a CPU that supports them."""

include "_maxwell3d.pyx"
