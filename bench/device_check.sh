#!/usr/bin/env bash
# wavecore on a machine with an NVIDIA GPU: build, GPU tests, GPU benchmarks.
#
#     OUT=/some/dir bash bench/device_check.sh
#
# For a host with CUDA and CuPy installed and NO network, the repository copied
# there as a working tree (run from anywhere: the repository is this script's
# parent folder). Every log and result file goes under $OUT (default:
# bench/results/device_check_<date>_<time>/): one <step>.log per step, the
# benchmarks' .md/.json pairs, pytest's junit XML, and summary.txt, the table
# (step, exit code, seconds) that is also printed at the end.
#
# Each step runs under `timeout` and the script goes on after a failure; the
# exit status is 0 only if every step passed. The whole run stops within
# DEVICE_CHECK_BUDGET seconds (default 470, under 8 minutes): a step gets at
# most its own limit and what is left of the budget, and a step with less than
# DEVICE_CHECK_MIN_STEP seconds (default 10) left is skipped (exit code 125).
#
# Time budget on an H100/H200 host (16 cores), in seconds. Measured here (2-core
# CPU VM, no GPU): the build 150 s; NVRTC 0.75 s (TM2D) and 2.8-4.3 s (3-D) per
# module to an sm_90 cubin, 33 s for all 16 one after the other; the emulated twins
# of the GPU tests 1.5 s of calls. The rest is estimated from the cases' sizes
# (H200: ~4.8 TB/s).
#
#   step            expected  limit  what takes the time
#   nvidia-smi             1     30
#   cupy-config            5     60  imports CuPy, queries the driver
#   python-env             2     30  pip list: the build needs setuptools >= 64,
#                                    Cython >= 3 and numpy >= 2 (no isolation)
#   git                    1     10
#   build                150    240  pip -e, no isolation, WAVECORE_VARIANTS=none:
#                                    the CPU core's baseline only (the GPU checks
#                                    need no tuned CPU variants), the two systems
#                                    compiled in parallel (153 s here)
#   wavecore-info          2     30  build flags, OpenMP, backends (after the build:
#                                    it reports what was built)
#   nvrtc-warmup          15     90  bench/compile_kernels.py: the 16 kernel modules
#                                    (2 systems x 2 dtypes x 4 orders) compiled by
#                                    NVRTC in 16 processes at once into CuPy's disk
#                                    cache, which the later steps read (CuPy >= 14;
#                                    an older CuPy recompiles in each process: then
#                                    pytest-gpu takes ~35 s longer)
#   pytest-gpu            40    120  `pytest -m gpu`: 57 tests (the device="cuda" twins
#                                    in tests/test_cuda.py, test_cuda_graphs.py and
#                                    test_debye_cuda.py) on small grids, with their CPU
#                                    and numpy references; the Debye twins compile 6
#                                    Debye modules in the process (not in the warm-up),
#                                    NVRTC 1.5-2 s (TM2D) and ~10 s (3-D) each here
#   bench-gpu             65    120  `bench_gpu.py --quick`: 6 cases x 5 runs (one of
#                                    them Debye media, 3 poles, TM2D 4096^2 x 4); the
#                                    8192^2 x 4-shot TM2D grid (1400 steps of ~5 ms,
#                                    ~2 s of host set-up a run) takes half
#   graphs-maxwell3d      20     60  4 grids x 3 chunkings x (eager, graph) x 4 runs
#                                    of 400 steps, launch-bound
#   graphs-tm2d           15     60  the same with --system tm2d, 1000 steps
#   total                317    470  DEVICE_CHECK_BUDGET cuts the limits down to it
#
# Environment: OUT (results folder), PYTHON (default: python),
# DEVICE_CHECK_BUDGET and DEVICE_CHECK_MIN_STEP (seconds, see above),
# DEVICE_CHECK_SKIP_BUILD=1 (reuse an existing build on a warm machine, e.g. for
# a second try). tests/test_device_check.py runs this script with stubs.

set -u

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
OUT="${OUT:-$REPO/bench/results/device_check_$(date +%Y-%m-%d_%H%M%S)}"
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"
PYTHON="${PYTHON:-python}"
BUDGET="${DEVICE_CHECK_BUDGET:-470}"
MIN_STEP="${DEVICE_CHECK_MIN_STEP:-10}"
export PYTHONUNBUFFERED=1
# The bench scripts put bench/ on sys.path, not the repository: find wavecore
# here even if the editable install failed.
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

START_NS=$(date +%s%N)
STEPS=()
FAILED=0

elapsed_s() {  # whole seconds since the start
  echo $(( ($(date +%s%N) - START_NS) / 1000000000 ))
}

# step NAME LIMIT COMMAND...: run COMMAND with its output in $OUT/NAME.log,
# killed after min(LIMIT, what is left of the budget) seconds.
step() {
  local name=$1 limit=$2
  shift 2
  local log="$OUT/$name.log" left rc t0 t1 secs
  left=$(( BUDGET - $(elapsed_s) ))
  (( limit > left )) && limit=$left
  if (( limit < MIN_STEP )); then
    echo "== $name: skipped, ${left} s of the ${BUDGET} s budget left" | tee "$log"
    STEPS+=("$name|125|0.0|skipped: no time left")
    FAILED=1
    return
  fi
  echo "== $name (limit ${limit} s): $*"
  printf '$ %s\n' "$*" > "$log"
  t0=$(date +%s%N)
  timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
  rc=$?
  t1=$(date +%s%N)
  secs=$(printf '%d.%01d' $(( (t1 - t0) / 1000000000 )) $(( (t1 - t0) / 100000000 % 10 )))
  local note=""
  if (( rc == 124 || rc == 137 )); then
    note="timed out after ${limit} s"
  elif (( rc == 127 )); then
    note="command not found"
  fi
  # pytest's closing line ("49 passed, 436 deselected in 20.1s"): all skipped
  # means that no GPU was usable.
  local closing
  closing=$(grep -E '^[0-9]+ (passed|failed|skipped|deselected|errors?)' "$log" | tail -n 1)
  [[ -n "$closing" ]] && note="${note:+$note; }$closing"
  if (( rc != 0 )); then
    FAILED=1
    echo "   exit $rc after ${secs} s${note:+ ($note)}; last lines of $log:"
    tail -n 5 "$log" | sed 's/^/   | /'
  else
    echo "   ok, ${secs} s"
  fi
  STEPS+=("$name|$rc|$secs|$note")
}

echo "wavecore device check: repository $REPO, results $OUT, budget ${BUDGET} s"

step nvidia-smi 30 nvidia-smi
step cupy-config 60 "$PYTHON" -c "import cupy; cupy.show_config()"
step python-env 30 "$PYTHON" -m pip list
step git 10 bash -c 'git rev-parse HEAD && git status --short --untracked-files=no'
if [[ "${DEVICE_CHECK_SKIP_BUILD:-0}" == 1 ]]; then
  echo "== build: skipped (DEVICE_CHECK_SKIP_BUILD=1)"
  STEPS+=("build|0|0.0|skipped on request")
else
  step build 240 env WAVECORE_VARIANTS=none "$PYTHON" -m pip install --no-build-isolation --no-deps -e .
fi
step wavecore-info 30 "$PYTHON" -m wavecore info
step nvrtc-warmup 90 "$PYTHON" bench/compile_kernels.py
step pytest-gpu 120 "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider --durations=15 \
  --junitxml="$OUT/pytest_gpu.xml"
if [[ "${STEPS[-1]}" == pytest-gpu\|0\|* && "${STEPS[-1]}" != *passed* ]]; then
  STEPS[-1]="${STEPS[-1]/pytest-gpu|0|/pytest-gpu|1|}; no test ran on the GPU"  # all skipped
  FAILED=1
  echo "   counted as failed: no test ran on the GPU"
fi
step bench-gpu 120 "$PYTHON" bench/bench_gpu.py --quick --out "$OUT"
step graphs-maxwell3d 60 "$PYTHON" bench/benchmark_maxwell3d_cuda_graph.py --verify \
  --system maxwell3d --out "$OUT"
step graphs-tm2d 60 "$PYTHON" bench/benchmark_maxwell3d_cuda_graph.py --verify \
  --system tm2d --out "$OUT"

{
  echo "wavecore device check, $(date -Iseconds), repository $REPO"
  echo "results: $OUT"
  echo
  printf '%-18s %5s %8s  %s\n' step exit seconds note
  for row in "${STEPS[@]}"; do
    IFS='|' read -r name rc secs note <<< "$row"
    printf '%-18s %5s %8s  %s\n' "$name" "$rc" "$secs" "$note"
  done
  printf '%-18s %5s %8s\n' total "$FAILED" "$(elapsed_s)"
} | tee "$OUT/summary.txt"
exit "$FAILED"
