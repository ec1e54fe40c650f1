"""Batch jobs from a TOML file: ``wavecore forward CONFIG``.

:mod:`.config` validates the file up front, :mod:`.io` loads models and
writes receiver data to HDF5 shot by shot (a rerun resumes), :mod:`.survey`
runs the shots serially or over an executor (local processes, Dask).
"""

from .config import ConfigError, JobConfig, load_config
from .survey import run_forward_job, step_progress

__all__ = ["ConfigError", "JobConfig", "load_config", "run_forward_job", "step_progress"]
