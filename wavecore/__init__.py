"""wavecore: differentiable Maxwell FDTD for ground-penetrating radar.

Public API
----------
tm2d              2-D TM (Ey, Hx, Hz) modelling and gradients (result.vjp)
estimate_storage  snapshot bytes and storage mode of a gradient run
cfl_condition     internal time step and sub-stepping ratio
wavelets          ricker, gaussian, gaussian_derivative, morlet, sine_burst
show_config       version, backends, OpenMP, threads, build flags
"""

from ._tm2d import estimate_storage, estimate_storage_bytes, tm2d
from .callbacks import CallbackState
from .cfl import cfl_condition, max_stable_dt
from .config import show_config
from .constants import C0, EP0, MU0
from .gradients import Gradients
from .result import ForwardResult
from .state import WaveState
from .wavelets import gaussian, gaussian_derivative, morlet, ricker, sine_burst

__version__ = "0.1.0.dev0"

__all__ = [
    "tm2d", "estimate_storage", "estimate_storage_bytes", "Gradients", "cfl_condition", "max_stable_dt", "show_config", "CallbackState",
    "ForwardResult", "WaveState", "ricker", "gaussian", "gaussian_derivative", "morlet",
    "sine_burst", "EP0", "MU0", "C0", "__version__",
]
