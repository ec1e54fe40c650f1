"""The CUDA backend of wavecore: kernels.cu and the code that compiles and launches it.

Nothing here imports CuPy at import time; :mod:`wavecore._gpu.source` builds
the CUDA source, :mod:`wavecore._gpu.params` mirrors the parameter structs as
numpy dtypes, :mod:`wavecore._gpu.launch` runs the time loops on a launcher
(CuPy on a GPU, or :mod:`wavecore._gpu.emulator` on the CPU).
"""
