"""Exchange formats: SEG-Y out (for GPR processing tools), gprMax in.

SEG-Y stores the sample interval as an integer number of microseconds, far
too coarse for GPR (picoseconds). As GPR converters commonly do, the
interval field holds the interval in picoseconds (time scaled by 1e6); the
true interval in seconds is written in the textual header.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_segy(path, data: np.ndarray, dt: float, sources: np.ndarray, receivers: np.ndarray,
               spacing, note: str = "") -> Path:
    """Write ``data [shots, receivers, nt]`` (one component) as SEG-Y, one trace
    per shot and receiver (field record = shot + 1, trace number = receiver + 1),
    with source and group x/z in millimetres (coordinate scalar -1000)."""
    import segyio  # noqa: PLC0415 - optional: wavecore[hpc]

    data = np.asarray(data, np.float32)
    if data.ndim != 3:
        raise ValueError(f"data must be [shots, receivers, nt] (one component), got {data.shape}")
    n_shots, n_rec, nt = data.shape
    spec = segyio.spec()
    spec.format = 5  # IEEE float
    spec.samples = list(range(nt))
    spec.tracecount = n_shots * n_rec
    spec.sorting = 1
    path = Path(path)
    mm = np.asarray(spacing, float) * 1000.0

    def xz(cell):  # (z, x) or (z, y, x) cell -> (x, z) in mm
        return int(round(cell[-1] * mm[-1])), int(round(cell[0] * mm[0]))

    interval_ps = int(round(dt * 1e12))
    with segyio.create(str(path), spec) as f:
        f.text[0] = segyio.tools.create_text_header({
            1: "wavecore synthetic GPR data",
            2: f"true sample interval {dt:.6e} s; binary interval field in picoseconds",
            3: "coordinates in mm (scalar -1000 applies to metres x 1e-3)",
            4: note[:70]})
        f.bin.update(hdt=interval_ps, hns=nt, format=5)
        k = 0
        for s in range(n_shots):
            sx, sz = xz(sources[s][0])
            for r in range(n_rec):
                gx, gz = xz(receivers[s][r])
                f.header[k] = {segyio.su.fldr: s + 1, segyio.su.tracf: r + 1,
                               segyio.su.tracl: k + 1, segyio.su.sx: sx, segyio.su.gx: gx,
                               segyio.su.sdepth: sz, segyio.su.gelev: -gz,
                               segyio.su.scalco: -1000, segyio.su.scalel: -1000,
                               segyio.su.ns: nt, segyio.su.dt: interval_ps}
                f.trace[k] = data[s, r]
                k += 1
    return path


def read_gprmax(path) -> dict:
    """Receiver data of a gprMax ``.out`` file: ``data[component]`` as
    ``[n_receivers, iterations]``, ``dt`` (s), receiver and source positions (m).

    gprMax records before the field update: sample n there is sample n - 1 of
    wavecore (see docs/validation.md)."""
    import h5py  # noqa: PLC0415 - optional: wavecore[hpc]

    with h5py.File(path, "r") as f:
        dt = float(f.attrs["dt"])
        names = sorted(f["rxs"], key=lambda n: int(n[2:]))
        components = [c for c in ("Ex", "Ey", "Ez", "Hx", "Hy", "Hz") if c in f["rxs"][names[0]]]
        data = {c: np.stack([f["rxs"][n][c][...] for n in names]) for c in components}
        rx = np.array([f["rxs"][n].attrs["Position"] for n in names], float)
        src = (np.array([f["srcs"][n].attrs["Position"] for n in f["srcs"]], float)
               if "srcs" in f else np.zeros((0, 3)))
    return dict(data=data, dt=dt, receiver_positions=rx, source_positions=src)
