"""storage_mode="checkpoint": gradients recomputed from checkpoints equal the
full-storage gradients bit for bit (every backend, both systems, Debye poles,
bf16, sampling intervals, callbacks, vjp with keep, jvp, second_vjp), the
schedule is the binomial optimum within the budget, checkpoints the budget
cannot hold go to disk (the same bits, their file freed, a full disk raising),
and the peak memory of a run that full storage could not hold stays within the
budget."""

import errno
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import wavecore
from test_jvp import MODEL, POLES, debye, directions, problem, problem3, run
from wavecore import checkpointing, storage
from wavecore.checkpointing import plan_schedule, recomputed_segments

BACKENDS = ("cpu", "reference", "cuda-emulated")
NAMES = (*MODEL, "source_amplitude")


def cotangent(res, seed=0):
    return np.random.default_rng(seed).standard_normal(res.receiver_data.shape)


def assert_same(a, b):
    for name in a._names:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def case(system, backend="cpu", dispersion=False, **kw):
    """(problem, run options) of a small run with every gradient target."""
    p = problem(nt=45) if system == "tm2d" else problem3(nt=23)
    extra = dict(stencil=4, pml_width=2, requires_grad=NAMES, **kw)
    if dispersion:
        extra["dispersion"] = debye(np.shape(p["epsilon"]))
        extra["requires_grad"] = (*NAMES, *POLES)
    if system == "maxwell3d":
        extra["receiver_component"] = ("ex", "ey", "hz")
    return p, extra


def full_and_checkpointed(system, backend, checkpoint, **kw):
    p, extra = case(system, backend, **kw)
    full = run(p, system, backend, storage_mode="device", **extra)
    ckpt = run(p, system, backend, storage_mode="checkpoint", **checkpoint, **extra)
    return p, full, ckpt


# -- exactness ------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
@pytest.mark.parametrize("variant", ("plain", "debye", "bf16-interval"))
def test_checkpointed_gradients_equal_full_storage_bit_for_bit(backend, system, variant):
    kw = {"debye": dict(dispersion=True),
          "bf16-interval": dict(storage_compression="bf16",
                                model_gradient_sampling_interval=3)}.get(variant, {})
    if variant == "bf16-interval":
        p, extra = case(system, backend)
        p = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64
                 else v) for k, v in p.items()}
        extra.update(kw)
        full = run(p, system, backend, storage_mode="device", **extra)
        ckpt = run(p, system, backend, storage_mode="checkpoint", checkpoint_count=3, **extra)
    else:
        p, full, ckpt = full_and_checkpointed(system, backend, dict(checkpoint_count=3), **kw)
    schedule = ckpt.storage.schedule
    assert ckpt.storage.mode == "checkpoint" and schedule.segments > 4
    np.testing.assert_array_equal(ckpt.receiver_data, full.receiver_data)
    g = cotangent(full)
    reference = full.vjp(g)
    assert_same(reference, ckpt.vjp(g, keep=True))
    store = ckpt.gradient.store
    assert store.recomputed_steps == schedule.recomputed_steps > 0
    assert_same(reference, ckpt.vjp(g))  # a second pass: the schedule again from step 0
    assert store.recomputed_steps == 2 * schedule.recomputed_steps + ckpt.plan.nt_internal


@pytest.mark.parametrize("checkpoint", (dict(checkpoint_count=1), dict(checkpoint_count=50),
                                        dict(storage_bytes_limit_host=100_000),
                                        dict(storage_bytes_limit_host=10**9)))
def test_every_schedule_gives_the_same_gradient(checkpoint):
    p, full, ckpt = full_and_checkpointed("tm2d", "cpu", checkpoint)
    g = cotangent(full)
    assert_same(full.vjp(g), ckpt.vjp(g))
    schedule = ckpt.storage.schedule
    if "storage_bytes_limit_host" in checkpoint:
        assert schedule.held_bytes <= checkpoint["storage_bytes_limit_host"]
    if checkpoint.get("storage_bytes_limit_host") == 10**9:  # it all fits: one segment
        assert (schedule.segments, schedule.recomputed_steps) == (1, 0)


def test_callbacks_fire_once_per_step_and_change_nothing():
    seen = {"forward": [], "backward": []}
    p, full, ckpt = full_and_checkpointed(
        "tm2d", "cpu", dict(checkpoint_count=2),
        forward_callback=lambda s: seen["forward"].append(s.step),
        backward_callback=lambda s: seen["backward"].append(s.step), callback_frequency=4)
    g = cotangent(full)
    reference = full.vjp(g)
    forward = list(seen["forward"])
    assert_same(reference, ckpt.vjp(g))
    nt = full.plan.nt_internal
    assert forward == list(range(0, nt, 4)) * 2  # the two forwards, none recomputed
    assert seen["backward"] == list(range(0, nt, 4))[::-1] * 2


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_jvp_and_second_vjp_equal_full_storage(backend, system):
    p, full, ckpt = full_and_checkpointed(system, backend, dict(checkpoint_count=2))
    v = directions(p, NAMES)
    np.testing.assert_array_equal(ckpt.jvp(**v, keep=True), full.jvp(**v, keep=True))
    c = cotangent(full, 3)
    extra = cotangent(full, 4)
    assert_same(full.gradient.second_vjp(v, c, vjp_cotangent=extra, keep=True),
                ckpt.gradient.second_vjp(v, c, vjp_cotangent=extra, keep=True))
    g = cotangent(full)
    assert_same(full.vjp(g), ckpt.vjp(g))  # after the tangent sweeps


def test_debye_second_vjp_equals_full_storage():
    p, full, ckpt = full_and_checkpointed("tm2d", "cpu", dict(checkpoint_count=3),
                                          dispersion=True)
    v = directions(p, (*NAMES, *POLES), dispersion=case("tm2d", dispersion=True)[1][
        "dispersion"])  # the same poles as the runs (a fixed seed)
    c = cotangent(full, 5)
    assert_same(full.second_vjp(v, c, keep=True), ckpt.second_vjp(v, c, keep=True))
    v = directions(p, NAMES)
    np.testing.assert_array_equal(full.jvp(**v), ckpt.jvp(**v))


# -- the schedule ---------------------------------------------------------------------

def test_recomputed_segments_is_the_schedule_librarys_count():
    from checkpoint_schedules import EndForward, Forward, MultistageCheckpointSchedule

    for n, s in ((2, 1), (10, 2), (37, 4), (100, 5), (60, 59), (200, 3)):
        for disk in sorted({0, s // 2, s}):  # checkpoints on disk recompute no more
            steps, after = 0, False
            for action in MultistageCheckpointSchedule(n, s - disk, disk):
                if isinstance(action, EndForward):
                    after = True
                elif isinstance(action, Forward) and after:
                    steps += action.n1 - action.n0
                if after and type(action).__name__ == "EndReverse":
                    break
            assert recomputed_segments(n, s) == steps, (n, s, disk)
    assert recomputed_segments(1, 0) == 0
    with pytest.raises(ValueError):
        recomputed_segments(5, 0)


def test_plan_is_cheapest_within_the_budget():
    args = dict(n_snapshots=400, interval=1, nt_internal=400, snapshot_bytes=1000,
                state_bytes=3000, scratch_bytes=100)

    def price(steps, segment, segments):  # the planner's: steps, and per segment a little
        return steps + checkpointing._SEGMENT_OVERHEAD_STEPS * (steps / segment + segments)

    costs = []
    for budget in (20_000, 40_000, 80_000, 160_000, 400_000):
        plan = plan_schedule(budget=budget, **args)
        assert plan.held_bytes <= budget
        best = price(plan.recomputed_steps, plan.segment, plan.segments)
        # no segment length within the budget (with as many checkpoints as fit) is cheaper
        for segment in range(1, 401):
            segments = -(-400 // segment)
            if segments == 1:
                if segment * 1000 <= budget:
                    assert plan.recomputed_steps == 0
                continue
            s = min((budget - 3000 - segment * 1000 - 100) // 3000, segments - 1)
            if s >= 1:
                steps = recomputed_segments(segments, s) * segment
                assert best <= 1.03 * price(steps, segment, segments), (budget, segment)
        costs.append(plan.recomputed_steps)
    assert costs == sorted(costs, reverse=True) and costs[-1] == 0
    assert plan_schedule(budget=5000, **args) is None  # less than two states


def test_estimate_storage_reports_the_schedule_and_auto_chooses_it(monkeypatch):
    p, extra = case("tm2d")
    plan = wavecore.estimate_storage(**p, storage_mode="checkpoint", checkpoint_count=4,
                                     **extra)
    assert (plan.mode, plan.checkpoints, plan.chunk) == ("checkpoint", 4, 1)
    assert plan.recomputed_steps == plan.schedule.recomputed_steps > 0
    assert "4 checkpoints" in plan.describe()
    full = wavecore.estimate_storage(**p, storage_mode="device", **extra)
    assert plan.held_bytes < full.bytes == plan.bytes
    # auto: no memory limit fits and the disk has no room -> checkpoints
    monkeypatch.setattr(storage, "_check_disk", lambda path: ("/tmp", 1000))
    limits = dict(storage_bytes_limit_device=1000, storage_bytes_limit_host=200_000)
    auto = wavecore.estimate_storage(**p, **limits, **extra)
    assert auto.mode == "checkpoint" and auto.fits and auto.held_bytes <= 200_000
    res = wavecore.tm2d(**p, **limits, **extra)
    assert res.storage.mode == "checkpoint"


def test_bad_options_raise_before_any_work(tmp_path):
    p, extra = case("tm2d")
    bad = [(dict(storage_mode="cpu", checkpoint_count=3), "checkpoint_count"),
           (dict(storage_mode="checkpoint", checkpoint_count=0), "checkpoint_count"),
           (dict(storage_mode="checkpoint", storage_chunk_steps=4), "storage_chunk_steps"),
           (dict(storage_mode="checkpoint", storage_path=tmp_path / "absent"), "storage_path"),
           (dict(storage_mode="cpu", storage_path=tmp_path), "storage_path")]
    for kw, word in bad:
        with pytest.raises(ValueError, match=word):
            wavecore.tm2d(**p, **{**extra, **kw})
    with pytest.raises(ValueError, match="checkpoint_count"):
        wavecore.tm2d(**p, checkpoint_count=2)  # without gradients
    with pytest.raises(MemoryError, match="checkpointing needs at least"):
        wavecore.tm2d(**p, storage_mode="checkpoint", storage_bytes_limit_host=100, **extra)
    plan = wavecore.estimate_storage(**p, storage_mode="checkpoint",
                                     storage_bytes_limit_host=100, **extra)
    assert not plan.fits and "budget" in plan.reason


# -- the disk level -------------------------------------------------------------------

def open_files_in(folder) -> int:
    """This process's open descriptors of files in ``folder`` (unlinked ones too)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(f"{folder}/")
        except OSError:
            pass
    return count


def disk_options(p, extra, folder, system="tm2d", count=6, in_ram=2):
    """Options of a run with ``count`` checkpoints of which a budget holds ``in_ram``."""
    def schedule(n):
        return wavecore.estimate_storage(**p, system=system, storage_mode="checkpoint",
                                         checkpoint_count=n, **extra).schedule

    held, state = schedule(count).held_bytes, schedule(1).state_bytes
    budget = held - (count - in_ram) * state
    return dict(storage_mode="checkpoint", storage_path=folder, checkpoint_count=count,
                storage_bytes_limit_host=budget, storage_bytes_limit_device=budget)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_disk_checkpoints_give_the_same_gradient_bit_for_bit(backend, system, tmp_path):
    p, extra = case(system, backend)
    full = run(p, system, backend, storage_mode="device", **extra)
    ckpt = run(p, system, backend, **disk_options(p, extra, tmp_path, system), **extra)
    schedule = ckpt.storage.schedule
    assert (schedule.checkpoints, schedule.disk_checkpoints) == (6, 4)
    assert schedule.path == str(tmp_path) and schedule.disk_accesses > 0
    assert "4 on disk" in ckpt.storage.describe()
    assert open_files_in(tmp_path) == 1  # one unlinked file
    assert not os.listdir(tmp_path)
    g = cotangent(full)
    reference = full.vjp(g, keep=True)
    assert_same(reference, ckpt.vjp(g, keep=True))
    v = directions(p, NAMES)
    np.testing.assert_array_equal(ckpt.jvp(**v, keep=True), full.jvp(**v))
    assert_same(reference, ckpt.vjp(g))  # the schedule again, from segment 0 on disk or not
    assert open_files_in(tmp_path) == 0  # freed with the store


@pytest.mark.parametrize("backend", ("cpu", "cuda-emulated"))
def test_every_checkpoint_on_disk(backend, tmp_path):
    """A budget of the working state alone: segment 0's checkpoint on disk too."""
    p, extra = case("tm2d")
    ckpt = run(p, "tm2d", backend, **disk_options(p, extra, tmp_path, in_ram=0), **extra)
    assert (ckpt.storage.schedule.ram_checkpoints, ckpt.storage.schedule.disk_checkpoints) \
        == (0, 6)
    full = run(p, "tm2d", backend, storage_mode="device", **extra)
    g = cotangent(full)
    reference = full.vjp(g)
    assert_same(reference, ckpt.vjp(g, keep=True))
    assert_same(reference, ckpt.vjp(g))
    assert open_files_in(tmp_path) == 0


def test_a_budget_with_a_disk_level_plans_and_runs_bit_for_bit(tmp_path, monkeypatch):
    """The planner's own choice (no checkpoint_count) with a disk level, run on the
    CPU; and "auto" choosing checkpoints with a disk level when the disk can hold
    checkpoints but not the snapshots."""
    p, extra = case("tm2d")
    least = wavecore.estimate_storage(**p, storage_mode="checkpoint", checkpoint_count=1,
                                      **extra).schedule.held_bytes
    options = dict(storage_mode="checkpoint", storage_bytes_limit_host=least,
                   storage_path=tmp_path)
    ram = wavecore.estimate_storage(**p, **{**options, "storage_path": None}, **extra).schedule
    ckpt = wavecore.tm2d(**p, **options, **extra)
    schedule = ckpt.storage.schedule
    assert schedule.disk_checkpoints > 0 and schedule.budget == least
    assert schedule.recomputed_steps < ram.recomputed_steps and schedule.held_bytes <= least
    full = wavecore.tm2d(**p, storage_mode="device", **extra)
    g = cotangent(full)
    assert_same(full.vjp(g), ckpt.vjp(g))
    total = wavecore.estimate_storage(**p, storage_mode="device", **extra).bytes
    monkeypatch.setattr(storage, "_check_disk", lambda path: (str(tmp_path), total // 2))
    auto = wavecore.estimate_storage(**p, storage_bytes_limit_device=1000,
                                     storage_bytes_limit_host=least, **extra)
    assert auto.mode == "checkpoint" and auto.schedule.disk_checkpoints > 0
    assert auto.schedule.disk_bytes <= total // 2


def test_the_planner_uses_the_disk_where_it_saves_recomputation(tmp_path, monkeypatch):
    args = dict(n_snapshots=400, interval=1, nt_internal=400, snapshot_bytes=1000,
                state_bytes=3000, scratch_bytes=100, budget=20_000)
    ram = plan_schedule(**args)
    disk = plan_schedule(**args, disk_bytes=300_000, path=str(tmp_path))
    assert ram.disk_checkpoints == 0 and disk.disk_checkpoints > 0
    assert disk.held_bytes <= 20_000
    assert disk.recomputed_steps < ram.recomputed_steps / 2
    assert disk.disk_bytes <= 300_000
    assert disk.disk_accesses == checkpointing.disk_accesses(
        disk.segments, disk.ram_checkpoints, disk.disk_checkpoints)
    # a disk access dearer than the recomputation it saves: memory only
    monkeypatch.setattr(checkpointing, "DISK_ACCESS_STEPS", 1e6)
    assert plan_schedule(**args, disk_bytes=300_000, path=str(tmp_path)) == ram
    assert plan_schedule(**args, disk_bytes=2_000, path=str(tmp_path)) == ram  # no room


@pytest.mark.parametrize("budget, disk_states", ((20_000, 100), (20_000, 10), (40_000, 5),
                                                 (12_000, 300)))
def test_the_disk_plan_is_the_cheapest_of_every_split(budget, disk_states):
    """Against every segment length and every count of disk checkpoints, priced
    with the accesses of the schedule itself."""
    args = dict(n_snapshots=400, interval=1, nt_internal=400, snapshot_bytes=1000,
                state_bytes=3000, scratch_bytes=100, budget=budget)

    def price(s):
        recomputed = s.recomputed_steps / s.segment
        return (s.recomputed_steps + checkpointing.DISK_ACCESS_STEPS * s.disk_accesses
                + checkpointing._SEGMENT_OVERHEAD_STEPS * (recomputed + s.segments))

    plan = plan_schedule(**args, disk_bytes=disk_states * 3000, path="/d")
    assert plan.held_bytes <= budget and plan.disk_checkpoints <= disk_states
    best = math.inf
    for segment in range(1, 400):
        segments = -(-400 // segment)
        ram = (budget - checkpointing._held(segment, segments, 0, 1000, 3000, 100)) // 3000
        if ram < 0:
            continue
        ram = min(ram, segments - 1)
        for disk in range(max(1 - ram, 0), min(disk_states, segments - 1 - ram) + 1):
            steps = recomputed_segments(segments, ram + disk) * segment
            best = min(best, price(checkpointing.Schedule(
                segment, segments, ram + disk, steps, 3000, 0, budget, 400, disk,
                checkpointing.disk_accesses(segments, ram, disk))))
    assert price(plan) <= best * 1.001


def test_a_full_disk_raises_naming_the_checkpoint_and_frees_the_file(tmp_path, monkeypatch):
    p, extra = case("tm2d")
    options = disk_options(p, extra, tmp_path)
    real = os.pwrite
    writes = []

    def full_disk(fd, data, offset):
        if len(writes) >= 3:
            return 0  # the disk takes nothing more
        writes.append(offset)
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", full_disk)
    with pytest.raises(OSError, match="checkpoint of segment") as info:
        wavecore.tm2d(**p, **options, **extra)
    assert info.value.errno == errno.ENOSPC and str(tmp_path) in str(info.value)
    assert open_files_in(tmp_path) == 0
    monkeypatch.setattr(os, "pwrite", real)
    res = wavecore.tm2d(**p, **options, **extra)
    monkeypatch.setattr(os, "pwrite", full_disk)
    writes.clear()
    with pytest.raises(OSError, match="checkpoint of segment"):  # during the recomputation
        res.vjp(cotangent(res), keep=True)
    assert open_files_in(tmp_path) == 0 and res.gradient.closed


# -- memory -----------------------------------------------------------------------------

def test_peak_memory_stays_within_the_budget():
    """A float32 TM2D gradient whose snapshots (about 330 MiB) are more than 4x its
    budget: the peak RSS of the process grows by no more than the budget plus the
    run's own arrays (fields, coefficients, traces, adjoint)."""
    script = textwrap.dedent("""
        import json, resource, sys
        import numpy as np
        import wavecore
        nz = nx = 140
        nt = 1400
        eps = np.full((nz, nx), 4.0, np.float32)
        sig = np.full((nz, nx), 1e-3, np.float32)
        mu = np.ones((nz, nx), np.float32)
        amp = np.zeros((1, 1, nt), np.float32); amp[0, 0, :40] = np.hanning(40)
        src = np.array([[[5, nx // 2]]]); rec = np.array([[[5, nx // 2 + 3]]])
        dt = 0.9 * wavecore.max_stable_dt((0.02, 0.02), wavecore.C0 / 2, 4)
        args = (eps, sig, mu, 0.02, dt, amp, src, rec)
        budget = 64 << 20
        kw = dict(stencil=4, requires_grad=("epsilon", "sigma"), storage_mode="checkpoint",
                  storage_bytes_limit_host=budget)
        full = wavecore.estimate_storage(*args, stencil=4, requires_grad=("epsilon", "sigma"))
        est = wavecore.estimate_memory(*args, **kw)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        res = wavecore.tm2d(*args, **kw)
        g = res.vjp(np.ones_like(res.receiver_data))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps(dict(full=full.bytes, budget=budget, held=res.storage.held_bytes,
                              rest=est.peak - est.snapshots, growth=peak - before,
                              finite=bool(np.isfinite(g.epsilon).all()))))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "WAVECORE_MEMORY_POOL": "0"},
                         check=True).stdout
    m = json.loads(out.strip().splitlines()[-1])
    print(m)
    assert m["full"] > 4 * m["budget"] and m["held"] <= m["budget"] and m["finite"]
    assert m["growth"] <= m["budget"] + m["rest"] + (24 << 20)
