"""Gradient time and peak memory of the storage modes: full storage in memory, disk,
and checkpointing (storage_mode="checkpoint") at several budgets.

Usage::

    python bench/bench_checkpointing.py                 # TM2D 300^2 x 1000 and 3-D 64^3
    python bench/bench_checkpointing.py --case m3d128   # 3-D 128^3 x 2000 steps in 8 GB
    python bench/bench_checkpointing.py --quick         # tiny grids (a test)

Every configuration runs in a fresh interpreter (its peak RSS, ``ru_maxrss``, is
its own): a first forward + gradient (``tm2d``/``maxwell3d`` with
``requires_grad=("epsilon", "sigma")``, then ``vjp``), then ``--repeats``
repeated calls (best kept). The configurations run interleaved, ``--rounds``
times, and each ratio is taken within a round against that round's
full-storage gradient (the figure given is the median over rounds). Budgets
are fractions of the full snapshot bytes (``storage_bytes_limit_host``;
"0.02+disk": that budget and a disk level for the checkpoints in the temporary
folder, ``storage_path``; "0.02+ram": the schedule "0.02+disk" chose with all
its checkpoints in memory, forced, which prices the disk accesses); the schedule (checkpoints, segments, recomputed steps) is the one the run
reports. float32, stencil 4, two threads. Results:
bench/results/checkpointing_<case>_<cpu>_<date>[_quick].{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wavecore  # noqa: E402
from wavecore import checkpointing  # noqa: E402
from bench_gpu import problem  # noqa: E402
from bench_tm2d import cpu_slug, machine_info, markdown_table, save_results  # noqa: E402

GIB = 2 ** 30
#: case -> (system, n, shots, nt, pml_width, configurations)
CASES = {
    "tm2d300": ("tm2d", 300, 2, 1000, 20,
                ("forward", "full", "disk", 0.5, 0.25, 0.1, 0.05, "0.02", "0.02+disk",
                 "0.02+ram")),
    "m3d64": ("maxwell3d", 64, 1, 300, 10,
              ("forward", "full", "disk", 0.25, 0.1, 0.05, "0.02", "0.02+disk", "0.02+ram")),
    "m3d128": ("maxwell3d", 128, 1, 2000, 20, ("8GB", "8GB+disk")),
}
QUICK = {"tm2d300": (60, 1, 120), "m3d64": (16, 1, 40), "m3d128": (16, 1, 60)}
TARGETS = ("epsilon", "sigma")


def setup(c):
    p = problem(c["system"], c["n"], c["shots"], np.float32, c["nt"])
    kw = dict(stencil=4, pml_width=c["pml"], n_threads=c["threads"])
    return p, kw


def full_bytes(c) -> int:
    p, kw = setup(c)
    return wavecore.estimate_storage(**p, **kw, system=c["system"], requires_grad=TARGETS,
                                     storage_mode="device").bytes


def _fraction(config) -> bool:
    """Whether ``config`` is a budget string ("0.02", "0.02+disk", "0.02+ram")."""
    try:
        return isinstance(config, str) and float(config.partition("+")[0]) > 0
    except ValueError:
        return False


def options(c, config):
    """Run options of ``config`` ("forward", "full", "disk", a budget fraction, "8GB")."""
    if config == "forward":
        return {}
    grad = dict(requires_grad=TARGETS)
    if config == "full":
        return {**grad, "storage_mode": "device"}
    if config == "disk":
        return {**grad, "storage_mode": "disk", "storage_path": tempfile.gettempdir()}
    if _fraction(config):  # "0.02", "0.02+disk", "0.02+ram"
        fraction, _, disk = config.partition("+")
        extra = {"storage_path": tempfile.gettempdir()} if disk == "disk" else {}
        return {**grad, "storage_mode": "checkpoint",
                "storage_bytes_limit_host": int(float(fraction) * c["full"]), **extra}
    if config in ("8GB", "8GB+disk"):  # the whole process within 8 GB: its own arrays aside
        p, kw = setup(c)
        est = wavecore.estimate_memory(**p, **kw, system=c["system"], requires_grad=TARGETS,
                                       storage_mode="device")
        rest = est.peak - est.snapshots
        budget = int(8 * GIB * 0.9) - rest - (400 << 20)  # the interpreter and numpy aside
        disk = {"storage_path": tempfile.gettempdir()} if config.endswith("+disk") else {}
        return {**grad, "storage_mode": "checkpoint", "storage_bytes_limit_host": budget, **disk}
    return {**grad, "storage_mode": "checkpoint",
            "storage_bytes_limit_host": int(config * c["full"])}


def disk_price(c):
    """Seconds of one checkpoint write and one read (a state, in a fresh unlinked
    file of the temporary folder, at distinct offsets as a schedule uses them)
    per second of a forward step: what the planner's DISK_ACCESS_STEPS prices."""
    from wavecore.storage import _open_unlinked, _read_all, _write_all  # noqa: PLC0415

    p, kw = setup(c)
    run = getattr(wavecore, c["system"])
    run(**p, **kw)  # first touch
    start = time.perf_counter()
    run(**p, **kw)
    step = (time.perf_counter() - start) / c["nt"]
    state = wavecore.estimate_storage(**p, **kw, system=c["system"], requires_grad=TARGETS,
                                      storage_mode="checkpoint",
                                      checkpoint_count=1).schedule.state_bytes
    data = np.random.default_rng(0).standard_normal(state // 8)
    view = memoryview(data).cast("B")
    slots = 16
    times = {"write": [], "read": []}
    for _ in range(3):  # a fresh file each round, as each run's store has (fresh pages)
        fd = _open_unlinked(tempfile.gettempdir(), "price")
        try:
            for kind, op in (("write", _write_all), ("read", _read_all)):
                start = time.perf_counter()
                for slot in range(slots):
                    op(fd, view, slot * view.nbytes, "price")
                times[kind].append((time.perf_counter() - start) / slots)
        finally:
            os.close(fd)
    write, read = statistics.median(times["write"]), statistics.median(times["read"])
    print(json.dumps(dict(step=step, state_bytes=state, write=write, read=read,
                          write_steps=write / step, read_steps=read / step)))


def force_in_memory(c, p, kw, opts):
    """Make the run use the "+disk" configuration's schedule with every
    checkpoint in memory (its budget raised to hold them)."""
    disk = wavecore.estimate_storage(**p, **kw, system=c["system"],
                                     **options(c, c["config"].replace("+ram", "+disk")))
    s = disk.schedule
    held = checkpointing._held(s.segment, s.segments, s.checkpoints,
                               disk.bytes_per_snapshot, s.state_bytes,
                               s.held_bytes - (s.ram_checkpoints + 1) * s.state_bytes
                               - s.segment * disk.bytes_per_snapshot)
    forced = dataclasses.replace(s, disk_checkpoints=0, disk_accesses=0, path=None,
                                 held_bytes=held, budget=held)
    checkpointing.plan_schedule = lambda *args, **kwargs: forced
    opts["storage_bytes_limit_host"] = held


def child(c):
    if c["config"] == "price":
        return disk_price(c)
    p, kw = setup(c)
    run = getattr(wavecore, c["system"])
    opts = options(c, c["config"])
    if c["config"].endswith("+ram") if isinstance(c["config"], str) else False:
        force_in_memory(c, p, kw, opts)

    def once():
        start = time.perf_counter()
        res = run(**p, **kw, **opts)
        if opts:
            res.vjp(res.receiver_data)
        return time.perf_counter() - start, res

    first, res = once()
    repeated = [once()[0] for _ in range(c["repeats"])]
    plan = res.plan.storage
    schedule = plan.schedule
    print(json.dumps(dict(
        first=first, best=min(repeated) if repeated else first,
        peak_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        mode=plan.mode, held=plan.held_bytes,
        schedule=None if schedule is None else dict(
            checkpoints=schedule.checkpoints, segments=schedule.segments,
            segment=schedule.segment, recomputed_steps=schedule.recomputed_steps,
            budget=schedule.budget, ratio=schedule.recompute_ratio,
            disk_checkpoints=schedule.disk_checkpoints,
            disk_accesses=schedule.disk_accesses))))


def run_child(c, config):
    out = subprocess.run([sys.executable, __file__, "--child",
                          json.dumps({**c, "config": config})],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def label(config) -> str:
    names = {"forward": "forward only", "full": "full storage (RAM)", "disk": "disk",
             "8GB": "checkpoint, 8 GB peak", "8GB+disk": "checkpoint, 8 GB peak + disk"}
    if _fraction(config):
        fraction, _, disk = config.partition("+")
        return f"checkpoint, {float(fraction):.0%} budget" + {
            "disk": " + disk", "ram": ": the + disk schedule in RAM", "": ""}[disk]
    return names[config] if config in names else f"checkpoint, {config:.0%} budget"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=tuple(CASES), action="append")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(json.loads(a.child))
    meta = machine_info()
    meta["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    for case in a.case or ("tm2d300", "m3d64"):
        system, n, shots, nt, pml, configs = CASES[case]
        if a.quick:  # tiny grids: 2 % of their snapshots holds less than two states
            n, shots, nt = QUICK[case]
            pml = min(pml, 4)
            configs = tuple(x for x in configs if not isinstance(x, float) or x >= 0.1)
            configs = tuple(dict.fromkeys(x.replace("0.02", "0.1") if isinstance(x, str)
                                          else x for x in configs))
        c = dict(system=system, n=n, shots=shots, nt=nt, pml=pml, threads=a.threads,
                 repeats=0 if case == "m3d128" else a.repeats)
        c["full"] = full_bytes(c)
        rounds = 1 if case == "m3d128" else a.rounds
        results = [{config: run_child(c, config) for config in configs} for _ in range(rounds)]
        price = None if case == "m3d128" else run_child(c, "price")
        report(a, meta, case, c, configs, results, price)


def report(a, meta, case, c, configs, results, price=None):
    def ratio(config, key="best"):
        base = "full" if "full" in configs else None
        if base is None:
            return None
        return statistics.median(r[config][key] / r[base][key] for r in results)

    rows = []
    for config in configs:
        last = results[-1][config]
        s = last["schedule"]
        rows.append([label(config), last["mode"],
                     f"{last['held'] / GIB:.3f}" if config != "forward" else "",
                     "" if s is None else
                     f"{s['checkpoints']} / {s['segments']} x {s['segment']}"
                     + (f" ({s['disk_checkpoints']} on disk, {s['disk_accesses']} accesses)"
                        if s.get("disk_checkpoints") else ""),
                     "" if s is None else f"{s['ratio']:.2f}",
                     f"{statistics.median(r[config]['first'] for r in results):.2f}",
                     f"{statistics.median(r[config]['best'] for r in results):.2f}",
                     "" if ratio(config) is None else f"{ratio(config):.2f}x",
                     f"{max(r[config]['peak_rss'] for r in results) / GIB:.2f}"])
    targets = []
    if 0.1 in configs:
        value = ratio(0.1)
        targets.append(("a 10 % budget costs <= 2.5x the full-storage gradient (repeated)",
                        f"{value:.2f}x", value <= 2.5))
    for config in ("8GB", "8GB+disk"):
        if config in configs:
            peak = results[-1][config]["peak_rss"]
            targets.append((f"{c['n']}^3 x {c['nt']} float32 gradient within 8 GB peak memory"
                            f" ({label(config)})", f"{peak / GIB:.2f} GiB peak RSS, "
                            f"{results[-1][config]['first']:.0f} s", peak <= 8 * GIB))
    dims = "^2" if c["system"] == "tm2d" else "^3"
    lines = [f"# Checkpointing: {c['system']} {c['n']}{dims}, {c['shots']} shot(s), {c['nt']} "
             f"steps, pml {c['pml']}, stencil 4, float32, {c['threads']} threads", "",
             f"{meta['cpu']} ({meta['cores']} cores), {meta['date']}, commit {meta['git']}; "
             f"full snapshots {c['full'] / GIB:.2f} GiB; {len(results)} interleaved round(s), "
             f"best of {max(c['repeats'], 1)} repeated call(s)", "",
             *markdown_table(["configuration", "mode", "held (GiB)", "checkpoints / segments",
                              "recomputed (forwards)", "first (s)", "repeated (s)",
                              "/ full", "peak RSS (GiB)"], rows), "", "## Targets", ""]
    if price is not None:
        lines[-2:-2] = [f"A disk checkpoint access (a state of {price['state_bytes'] / 2**20:.1f} "
                        f"MiB, temporary folder) costs {price['write_steps']:.2f} forward steps "
                        f"to write and {price['read_steps']:.2f} to read ({price['write'] * 1e3:.1f}"
                        f" / {price['read'] * 1e3:.1f} ms; a step {price['step'] * 1e3:.2f} ms); "
                        "the planner prices one at wavecore.checkpointing.DISK_ACCESS_STEPS = "
                        f"{checkpointing.DISK_ACCESS_STEPS}.", ""]
    word = {True: "met", False: "NOT met"}
    lines += [f"- {t}: {v} ({word[ok]})" for t, v, ok in targets]
    print("\n".join(lines))
    stem = f"checkpointing_{case}_{cpu_slug(meta)}_{meta['date'][:10]}" + (
        "_quick" if a.quick else "")
    record = dict(meta=meta, config=c, results=results, disk_price=price,
                  targets=[dict(target=t, value=v, passed=ok) for t, v, ok in targets])
    print(f"wrote {save_results(a.out, stem, lines, record)}")


if __name__ == "__main__":
    main()
