"""The pool of snapshot and adjoint blocks (wavecore.memory.POOL): a repeated
gradient of one shape reuses the blocks of the previous one (not a block an array
kept by a callback still views), results are the same bit for bit
with and without it, the pool is bounded by the largest recent request and
``wavecore.release_memory()`` empties it."""

import numpy as np
import pytest

import wavecore
from test_jvp import problem, run
from wavecore.memory import POOL, BlockPool, carve, carved_bytes

NAMES = ("epsilon", "sigma")


@pytest.fixture
def fresh_pool(monkeypatch):
    monkeypatch.delenv("WAVECORE_MEMORY_POOL", raising=False)
    POOL.release()
    yield POOL
    POOL.release()


def test_a_repeated_gradient_reuses_the_snapshot_block(fresh_pool):
    p = problem(nt=30)
    first = run(p, requires_grad=NAMES, storage_mode="device")
    block = first.gradient.store._block
    g1 = first.vjp(first.receiver_data)
    assert fresh_pool.parked_bytes >= block.nbytes  # given back when vjp freed the store
    hits = fresh_pool.hits
    again = run(p, requires_grad=NAMES, storage_mode="device")
    assert fresh_pool.hits == hits + 1
    assert again.gradient.store._block.ctypes.data == block.ctypes.data  # the same pages
    g2 = again.vjp(again.receiver_data)
    assert np.array_equal(g1.epsilon, g2.epsilon) and np.array_equal(g1.sigma, g2.sigma)


def test_a_repeated_gradient_reuses_the_adjoint_block(fresh_pool):
    p = problem(nt=30)
    c = np.random.default_rng(2).standard_normal(run(p).receiver_data.shape)
    g1 = run(p, requires_grad=NAMES, storage_mode="cpu").vjp(c)
    hits, parked = fresh_pool.hits, fresh_pool.parked_bytes
    res = run(p, requires_grad=NAMES, storage_mode="cpu")  # its snapshots: one hit
    assert fresh_pool.hits == hits + 1
    g2 = res.vjp(c)  # its adjoint fields, memories and accumulators: the second
    assert fresh_pool.hits == hits + 2 and fresh_pool.parked_bytes == parked
    assert np.array_equal(g1.epsilon, g2.epsilon) and np.array_equal(g1.sigma, g2.sigma)


def test_an_adjoint_field_a_callback_kept_is_not_reused(fresh_pool):
    p = problem(nt=30)
    c = np.random.default_rng(2).standard_normal(run(p).receiver_data.shape)
    kept = []

    def keep_lambda(state):
        if state.step == 0:
            kept.append(state.wavefields["lam_ey"])  # a live buffer, kept past the call

    run(p, requires_grad=NAMES, backward_callback=keep_lambda).vjp(c)
    value = kept[0].copy()
    assert np.any(value != 0)
    hits = fresh_pool.hits
    run(p, requires_grad=NAMES).vjp(np.zeros_like(c))  # would zero a reused block
    assert fresh_pool.hits == hits + 1  # the snapshots' block only
    assert np.array_equal(kept[0], value)


def test_results_are_the_same_without_the_pool(fresh_pool, monkeypatch):
    p = problem(nt=30)
    c = np.random.default_rng(1).standard_normal(run(p).receiver_data.shape)
    out = []
    for enabled in ("1", "1", "0"):  # the second call reuses the first's dirty block
        monkeypatch.setenv("WAVECORE_MEMORY_POOL", enabled)
        res = run(p, requires_grad=NAMES, storage_mode="cpu")
        v = {"epsilon": p["epsilon"] * 0.1}
        out.append((res.vjp(c, keep=True).epsilon, res.jvp(**v, keep=True),
                    res.second_vjp(v, c).sigma))
    for got in out[1:]:
        for a, b in zip(got, out[0]):
            assert np.array_equal(a, b)


def test_the_pool_is_bounded_and_released(fresh_pool):
    pool = BlockPool()
    blocks = [pool.take(n) for n in (3 << 20, 5 << 20, 1 << 20)]
    assert all(b.ctypes.data % (2 << 20) == 0 for b in blocks)
    for b in blocks:
        pool.give(b)
    # at most what was in use at once: 4 + 6 + 2 MiB (whole huge pages)
    assert pool.parked_bytes == 12 << 20
    pool.release()
    for size in (3 << 20, 1 << 20):  # two periods of use, one block each
        pool.give(pool.take(size))
    assert pool.parked_bytes == 4 << 20  # the 1 MiB request reused the 4 MiB block
    pool.give(pool.take(5 << 20))  # a larger period: its 6 MiB block, the 4 MiB one parked
    assert pool.parked_bytes == 6 << 20  # 4 + 6 MiB is over the peak: the oldest dropped
    pool.release()
    blocks = [pool.take(n) for n in (3 << 20, 1 << 20)]
    for b in blocks:
        pool.give(b)
    hits = pool.hits
    small = pool.take(1 << 20)
    assert pool.hits == hits + 1 and small.nbytes == 2 << 20  # the smallest that fits
    pool.give(small)
    parked = pool.parked_bytes
    assert parked > 0 and pool.release() == parked and pool.parked_bytes == 0
    run(problem(nt=20), requires_grad=NAMES).vjp(np.zeros((2, 3, 20)))
    assert POOL.parked_bytes > 0
    freed = wavecore.release_memory()
    assert freed["host"] > 0 and POOL.parked_bytes == 0


def test_carve_lays_arrays_out_in_one_block():
    shapes = {"a": (3, 5), "b": (7,)}
    block = BlockPool().take(carved_bytes(shapes, np.float32))
    arrays = carve(block, shapes, np.float32)
    arrays["a"][:] = 1.0
    arrays["b"][:] = 2.0
    assert arrays["a"].shape == (3, 5) and np.all(arrays["a"] == 1.0)
    assert np.all(arrays["b"] == 2.0)
    assert arrays["b"].ctypes.data - arrays["a"].ctypes.data == 64  # the next cache line


def test_quick_memory_pool_benchmark(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(repo / "bench" / "bench_memory_pool.py"),
                          "--quick", "--out", str(tmp_path)], capture_output=True, text=True,
                         cwd=repo, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for label in ("first call (fresh process)", "repeated, pool", "repeated, no pool"):
        assert label in out.stdout
    record = json.loads(next(tmp_path.glob("memory_pool_*_quick.json")).read_text())
    assert set(record["first"]) == {"forward", "store", "fwd+grad"}
    assert {"pool fwd+grad", "no pool fwd+grad"} <= set(record["best"])


def test_parked_blocks_count_as_available_and_a_miss_frees_them():
    from wavecore.memory import host_available

    pool = BlockPool()
    pool.give(pool.take(3 << 20))
    have = host_available()
    counted = pool.counted(have)
    assert counted.bytes == have.bytes + (4 << 20) and "snapshot pool" in counted.source
    pool.take(9 << 20)  # nothing parked fits: the parked block is freed before allocating
    assert pool.parked_bytes == 0 and pool.counted(have) == have
