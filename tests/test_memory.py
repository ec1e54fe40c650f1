"""Host buffers (one zeroed, huge-page aligned block) and the memory a run may use
(MemAvailable, cgroup v1/v2 limits, rlimits) checked before anything is allocated."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import wavecore
from wavecore import memory
from wavecore.memory import HUGE_PAGE, zeros_block


def test_zeros_block_carves_disjoint_aligned_arrays():
    shapes = {"a": (3, 5, 7), "b": (11,), "c": (2, 1000), "empty": (0, 4)}
    arrays = zeros_block(shapes, np.float32)
    assert list(arrays) == list(shapes)
    base = min(a.ctypes.data for a in arrays.values() if a.size)
    assert base % HUGE_PAGE == 0
    for name, array in arrays.items():
        assert array.shape == shapes[name] and array.dtype == np.float32
        assert array.flags.c_contiguous and array.flags.writeable
        assert array.size == 0 or array.ctypes.data % 64 == 0
        assert not array.any()
    for k, name in enumerate(shapes):  # writes stay in their own array
        arrays[name][...] = k + 1
    for k, name in enumerate(shapes):
        assert (arrays[name] == k + 1).all(), name


def test_runs_allocate_their_fields_from_one_block():
    shape = (6, 7, 8)
    res = wavecore.maxwell3d(np.full(shape, 4.0), np.zeros(shape), np.ones(shape),
                             0.01, 1e-11, np.ones((1, 1, 5)), [[[3, 3, 3]]], [[[2, 3, 3]]],
                             pml_width=2)
    def owner(a):
        while a.base is not None:
            a = a.base
        return id(a)

    # one allocation behind all fields and CPML memories
    assert len(res.final_state) == 18
    assert len({owner(a) for a in res.final_state.values()}) == 1


# -- available memory: cgroup v2 / v1 limits and rlimits (fake trees) --------------

GIB = 1 << 30


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_v2(tmp_path, job_max="max", job_current=0, parent_max=int(1.5 * GIB),
            parent_current=int(0.2 * GIB), inactive=0):
    """/sys/fs/cgroup of a SLURM job step: the limit sits on the job's parent."""
    root = tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpu memory\n")
    write(root / "slurm" / "memory.max", f"{parent_max}\n")
    write(root / "slurm" / "memory.current", f"{parent_current}\n")
    write(root / "slurm" / "memory.stat", f"anon 1\ninactive_file {inactive}\n")
    write(root / "slurm" / "job_1" / "memory.max", f"{job_max}\n")
    write(root / "slurm" / "job_1" / "memory.current", f"{job_current}\n")
    self_cgroup = tmp_path / "self_cgroup"
    self_cgroup.write_text("0::/slurm/job_1\n")
    return str(root), str(self_cgroup)


def fake_v1(tmp_path, limit=2 * GIB, usage=int(0.5 * GIB), inactive=int(0.25 * GIB)):
    root = tmp_path / "cgroup"
    group = root / "memory" / "docker" / "abc"
    write(group / "memory.limit_in_bytes", f"{limit}\n")
    write(group / "memory.usage_in_bytes", f"{usage}\n")
    write(group / "memory.stat", f"cache 5\ntotal_inactive_file {inactive}\n")
    write(root / "memory" / "docker" / "memory.limit_in_bytes", "9223372036854771712\n")
    write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")
    self_cgroup = tmp_path / "self_cgroup"
    self_cgroup.write_text("5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n")
    return str(root), str(self_cgroup)


def test_cgroup_v2_limit_of_a_parent_counts(tmp_path):
    root, me = fake_v2(tmp_path, inactive=int(0.1 * GIB))
    (limit,) = memory.cgroup_limits(root, me)
    assert limit.bytes == int(1.5 * GIB) - int(0.2 * GIB) + int(0.1 * GIB)
    assert "cgroup v2" in limit.source and "slurm" in limit.source
    root, me = fake_v2(tmp_path, job_max=GIB, job_current=GIB - 12345)
    assert min(a.bytes for a in memory.cgroup_limits(root, me)) == 12345


def test_cgroup_v1_limit_and_a_namespaced_path(tmp_path):
    root, me = fake_v1(tmp_path)
    (limit,) = memory.cgroup_limits(root, me)
    assert limit.bytes == 2 * GIB - int(0.5 * GIB) + int(0.25 * GIB)
    assert "cgroup v1" in limit.source
    # inside a container the listed path does not exist: the mount point is the group
    (tmp_path / "self_cgroup").write_text("4:memory:/kubepods/pod1\n")
    write(tmp_path / "cgroup" / "memory" / "memory.limit_in_bytes", f"{GIB}\n")
    write(tmp_path / "cgroup" / "memory" / "memory.usage_in_bytes", f"{GIB // 4}\n")
    (limit,) = memory.cgroup_limits(root, me)
    assert limit.bytes == GIB - GIB // 4


def test_no_cgroup_limit_and_unreadable_files(tmp_path):
    root, me = fake_v2(tmp_path, parent_max="max")
    assert memory.cgroup_limits(root, me) == []
    assert memory.cgroup_limits(str(tmp_path / "nowhere"), str(tmp_path / "nothing")) == []


def test_available_memory_is_the_least_of_meminfo_cgroup_and_rlimit(tmp_path, monkeypatch):
    root, me = fake_v2(tmp_path)
    monkeypatch.setattr(memory, "CGROUP_ROOT", root)
    monkeypatch.setattr(memory, "PROC_SELF_CGROUP", me)
    have = memory.host_available()
    assert have.bytes == int(1.5 * GIB) - int(0.2 * GIB) and "cgroup v2" in have.source
    from wavecore import storage
    assert storage.available_memory() == have.bytes


def big_tm2d(n_shots=40, nt=400, n=300, **kw):
    """A run whose fields and snapshots take GiB (only planned in these tests)."""
    eps = np.full((n, n), 4.0, np.float32)
    amp = np.zeros((n_shots, 1, nt), np.float32)
    src = np.full((n_shots, 1, 2), n // 2)
    rec = np.full((n_shots, 1, 2), n // 3)
    return (eps, np.zeros_like(eps), np.ones_like(eps), 0.01, 1e-11, amp, src, rec), kw


@pytest.fixture
def cgroup_1_5_gib(tmp_path, monkeypatch):
    root, me = fake_v2(tmp_path, parent_current=0)
    monkeypatch.setattr(memory, "CGROUP_ROOT", root)
    monkeypatch.setattr(memory, "PROC_SELF_CGROUP", me)
    wavecore.release_memory()  # no parked snapshot blocks counted beside the limit


@pytest.fixture
def no_buffers(monkeypatch):
    """Fail if a run gets as far as preparing (padding, allocating) its buffers."""
    import wavecore._driver as driver

    def refuse(*a, **k):
        raise AssertionError("the run allocated its buffers before checking the memory")
    monkeypatch.setattr(driver, "prepare_buffers", refuse)


def test_a_run_over_the_cgroup_limit_raises_before_allocating(cgroup_1_5_gib, no_buffers):
    args, _ = big_tm2d()
    est = wavecore.estimate_memory(*args, requires_grad="epsilon", storage_mode="device")
    assert est.peak > 3 * GIB and not est.fits and est.available == int(1.5 * GIB)
    with pytest.raises(MemoryError) as info:
        wavecore.tm2d(*args, requires_grad="epsilon", storage_mode="device")
    message = str(info.value)
    for words in ("GiB", "1.5 GiB", "cgroup v2", "40 shots", "300 x 300", "pml_width",
                  "internal steps", "storage_mode='device'"):
        assert words in message, (words, message)
    assert est.reason.split(":")[0] in message


def test_auto_chooses_disk_under_a_cgroup_limit(cgroup_1_5_gib, tmp_path):
    args, _ = big_tm2d(n_shots=2, nt=2000, n=200)
    plan = wavecore.estimate_storage(*args, requires_grad="epsilon", storage_path=tmp_path)
    assert plan.bytes > 1.5 * GIB and plan.mode == "disk" and plan.fits
    assert wavecore.estimate_memory(*args, requires_grad="epsilon",
                                    storage_path=tmp_path).fits


def test_impossible_requests_name_their_arguments_before_any_work(cgroup_1_5_gib,
                                                                 no_buffers):
    args, _ = big_tm2d(n_shots=1, nt=10, n=20)
    with pytest.raises(MemoryError, match=r"pml_width=\(1000000,") as info:
        wavecore.tm2d(*args, pml_width=10**6)
    assert "TiB" in str(info.value) or "GiB" in str(info.value)
    shape = (300, 300, 300)
    eps = np.full(shape, 4.0, np.float32)
    with pytest.raises(MemoryError, match="40 shots"):
        wavecore.maxwell3d(eps, np.zeros_like(eps), np.ones_like(eps), 0.01, 1e-12,
                           np.zeros((40, 1, 10), np.float32), np.full((40, 1, 3), 150),
                           np.full((40, 1, 3), 100))


def test_estimates_report_a_plan_that_does_not_fit(tmp_path, monkeypatch):
    args, _ = big_tm2d(n_shots=2, nt=50, n=40)
    plan = wavecore.estimate_storage(*args, requires_grad="epsilon", storage_mode="cpu",
                                     storage_bytes_limit_host=1000)
    assert not plan.fits and plan.available == 1000
    assert "storage_bytes_limit_host" in plan.reason and "does not fit" in plan.describe()
    est = wavecore.estimate_memory(*args, requires_grad="epsilon", storage_mode="cpu",
                                   storage_bytes_limit_host=1000)
    assert not est.fits and "storage_bytes_limit_host" in est.reason
    with pytest.raises(MemoryError, match="storage_bytes_limit_host"):
        wavecore.tm2d(*args, requires_grad="epsilon", storage_mode="cpu",
                      storage_bytes_limit_host=1000)

    from wavecore import storage

    class Usage:
        free = 10
    monkeypatch.setattr(storage.shutil, "disk_usage", lambda path: Usage)
    plan = wavecore.estimate_storage(*args, requires_grad="epsilon", storage_mode="disk",
                                     storage_path=tmp_path)
    assert not plan.fits and plan.available == 10 and "on disk" in plan.reason
    with pytest.raises(OSError, match="on disk"):
        wavecore.tm2d(*args, requires_grad="epsilon", storage_mode="disk",
                      storage_path=tmp_path)
    # a plan that fits says so
    monkeypatch.undo()
    ok = wavecore.estimate_memory(*args, requires_grad="epsilon")
    assert ok.fits and ok.reason == "" and ok.available > 0


def test_a_real_rlimit_as_is_honoured(tmp_path):
    """A real limit (RLIMIT_AS set in a child process): the run is refused with the
    limit named, before numpy fails."""
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import numpy as np, wavecore
        from test_memory import big_tm2d
        with open("/proc/self/status") as f:
            size = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (size + (1 << 30), resource.RLIM_INFINITY))
        args, _ = big_tm2d(n_shots=8, nt=400)
        try:
            wavecore.tm2d(*args, requires_grad="epsilon", storage_mode="device")
        except MemoryError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "RLIMIT_AS" in out.stdout and "8 shots" in out.stdout, out.stdout


@pytest.mark.parametrize("system", ["tm2d", "maxwell3d"])
def test_the_estimate_counts_every_array_a_run_holds(monkeypatch, system):
    """estimate.forward is what the prepared buffers of a forward run weigh:
    every array counted (fields, CPML memories, coefficients, the padded models,
    traces), within the CPML profiles and index arrays (a few hundred bytes)."""
    from wavecore import _driver

    held = []
    prepare = _driver.prepare_buffers

    def spy(*args, **kwargs):
        b = prepare(*args, **kwargs)
        arrays = [v for v in vars(b).values() if isinstance(v, np.ndarray)]
        arrays += [v for d in vars(b).values() if isinstance(d, dict)
                   for v in d.values() if isinstance(v, np.ndarray)]
        held.append(sum(a.nbytes for a in arrays))
        return b

    monkeypatch.setattr(_driver, "prepare_buffers", spy)
    shape = (30, 40) if system == "tm2d" else (12, 14, 16)
    loc = [[[5] * len(shape)], [[7] * len(shape)]]
    run = getattr(wavecore, system)
    eps, sig, mu = np.full(shape, 4.0), np.full(shape, 1e-3), np.ones(shape)
    amp = np.ones((2, 1, 20))
    res = run(eps, sig, mu, 0.01, 1e-11, amp, np.array(loc), np.array(loc), pml_width=6)
    est = res.memory
    assert held and est.snapshots == 0
    assert abs(held[0] - est.forward) <= 0.02 * held[0], (held[0], est.forward, est)
