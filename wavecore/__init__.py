"""wavecore: differentiable Maxwell FDTD for ground-penetrating radar.

Public API
----------
tm2d              2-D TM (Ey, Hx, Hz) modelling and gradients (result.vjp)
maxwell3d         3-D Yee (Ex, Ey, Ez, Hx, Hy, Hz) modelling and gradients
estimate_storage  snapshot bytes and storage mode of a gradient run
estimate_memory   bytes a run allocates, before it starts
cfl_condition     internal time step and sub-stepping ratio
wavelets          ricker, gaussian, gaussian_derivative, morlet, sine_burst
show_config       version, backends, OpenMP, threads, build flags
UnitWarning       warned before a run whose arguments look like a unit mistake
clear_cuda_graph_cache, cuda_graph_cache_info, set_cuda_graph_cache_size
                  the module-level cache of experimental_cuda_graph runs
"""

from ._checks import UnitWarning
from ._debye import Debye
from ._gpu.graphs import clear_cuda_graph_cache, cuda_graph_cache_info, set_cuda_graph_cache_size
from ._maxwell3d import maxwell3d
from ._tm2d import tm2d
from .estimates import estimate_memory, estimate_storage, estimate_storage_bytes
from .callbacks import CallbackState
from .cfl import cfl_condition, max_stable_dt
from .config import show_config
from .constants import C0, EP0, MU0
from .debye_fit import DebyeFit, debye_permittivity, fit_debye
from .gradients import Gradients
from .memory import release_memory
from .result import ForwardResult, MemoryEstimate
from .state import WaveState
from .wavelets import gaussian, gaussian_derivative, morlet, ricker, sine_burst

__version__ = "0.1.0.dev0"

__all__ = [
    "tm2d", "maxwell3d", "estimate_storage", "estimate_storage_bytes", "estimate_memory",
    "MemoryEstimate", "Gradients", "cfl_condition", "max_stable_dt", "show_config", "CallbackState",
    "ForwardResult", "WaveState", "ricker", "gaussian", "gaussian_derivative", "morlet",
    "sine_burst", "EP0", "MU0", "C0", "clear_cuda_graph_cache", "cuda_graph_cache_info",
    "set_cuda_graph_cache_size", "UnitWarning", "Debye", "__version__",
    "fit_debye", "debye_permittivity", "DebyeFit", "release_memory",
]
