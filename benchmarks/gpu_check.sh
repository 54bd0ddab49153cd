#!/usr/bin/env bash
# The GPU path in one prepared run (< 8 minutes on an H200 machine that has only this repository):
#
#   1. each study's preset (demo by default; GPU_CHECK_PRESET=quick) with --device cpu and with
#      --device cuda, one after the other in this run: wall times side by side (cpu / cuda) and the
#      two metrics.csv compared column by column (benchmarks/compare_metrics.py, within 10 %);
#   2. the AMR element pass (ID pruning of the INR on 4096 elements) on cuda vs one CPU thread, without
#      MFEM (PyMFEM's wheel, 102 MB, does not travel to the device machine; the amr study's own run is
#      skipped there unless `import mfem` works);
#   3. benchmarks/bench_id.py --device cuda at width 256 (and 32);
#   4. the CUDA-only tests (tests/studies/test_device.py, the flows and nif cuda tests), if time is left.
#
# Every step has its own timeout, a failed step does not stop the others, and each step's status
# (ok / FAILED rc / TIMEOUT / skipped) is in the summary: $OUT/gpu_check.md (or /tmp/gpu_check/),
# beside the tail of every step's log in $OUT/gpu_check_logs.txt.
#
# Usage, on the device machine, from the repository root:
#   bash benchmarks/gpu_check.sh
# Python packages the machine lacks (pydantic and its three helpers) travel as wheels in .whl/
# (bash benchmarks/gpu_wheels.sh here, then carry .whl); they are installed into /tmp/site first.
set -u
cd "$(dirname "$0")/.."

OUTDIR=${OUT:-/tmp/gpu_check}
mkdir -p "$OUTDIR"
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
PRESET=${GPU_CHECK_PRESET:-demo}
STEP_TIMEOUT=${GPU_CHECK_STEP_TIMEOUT:-150}
BUDGET=${GPU_CHECK_BUDGET:-450}        # seconds: later steps are skipped once this is spent
PY=${PYTHON:-python3}
SUMMARY=$OUTDIR/gpu_check.md
LOGS=$OUTDIR/gpu_check_logs.txt
START=$(date +%s)
: > "$SUMMARY"
: > "$LOGS"

say() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - START )); }

# run NAME TIMEOUT CMD...: the command's status word in $STATUS, its seconds in $SECONDS_TAKEN
run() {
    local name=$1 limit=$2; shift 2
    if [ "$(elapsed)" -ge "$BUDGET" ]; then
        STATUS="skipped (budget ${BUDGET}s spent)"; SECONDS_TAKEN=0; return
    fi
    local t0 t1 rc
    t0=$(date +%s.%N)
    timeout --kill-after=10 "$limit" "$@" > "$WORK/$name.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    SECONDS_TAKEN=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")
    case $rc in
        0) STATUS=ok ;;
        124|137) STATUS="TIMEOUT (${limit}s)" ;;
        *) STATUS="FAILED rc=$rc" ;;
    esac
    { echo "===== $name: $STATUS, ${SECONDS_TAKEN}s: $*"; tail -n 25 "$WORK/$name.log"; } >> "$LOGS"
}

# --- set-up -------------------------------------------------------------------------------------
if ls .whl/*.whl > /dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        > "$WORK/wheels.log" 2>&1 && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg

say "# gpu_check ($(date -u +%Y-%m-%dT%H:%MZ), preset $PRESET)"
say ""
gpu=$(nvidia-smi -L 2>/dev/null | head -1)
say "machine: ${gpu:-no nvidia-smi}; $(nproc) CPU cores"
say "python: $("$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1)"
deps=$("$PY" -c 'import sciprune, pydantic, typer, yaml, h5py, safetensors, torchdiffeq, filelock, sklearn; print("ok")' 2>&1 | tail -1)
say "sciprune imports: $deps"
HAVE_MFEM=$("$PY" -c 'import mfem.ser; print(1)' 2>/dev/null || echo 0)
say ""

# --- 1. each study on cpu and on cuda -----------------------------------------------------------
say "## Studies: --preset $PRESET, cpu vs cuda (same run)"
say ""
say "| study | cpu | cuda | cpu / cuda wall | metrics.csv, cuda vs cpu (rel 0.1) |"
say "|---|---|---|---|---|"
for study in classify moth nif flows amr; do
    cmd=("$study"); [ "$study" = moth ] && cmd=(moth train)
    if [ "$study" = amr ] && [ "$HAVE_MFEM" != 1 ]; then
        say "| amr | skipped: no PyMFEM here | | | (the element pass on cuda: section 2) |"
        continue
    fi
    run "$study-cpu" "$STEP_TIMEOUT" "$PY" -m sciprune.cli "${cmd[@]}" --preset "$PRESET" --quiet --device cpu --out "$WORK/$study-cpu"
    s_cpu=$STATUS; t_cpu=$SECONDS_TAKEN
    run "$study-cuda" "$STEP_TIMEOUT" "$PY" -m sciprune.cli "${cmd[@]}" --preset "$PRESET" --quiet --device cuda --out "$WORK/$study-cuda"
    s_gpu=$STATUS; t_gpu=$SECONDS_TAKEN
    ratio="-"; cmp="-"
    if [ "$s_cpu" = ok ] && [ "$s_gpu" = ok ]; then
        ratio=$(awk "BEGIN{printf \"%.2f\", $t_cpu / $t_gpu}")
        cmp=$("$PY" benchmarks/compare_metrics.py "$WORK/$study-cpu" "$WORK/$study-cuda" --rel 0.1 2>&1 | tail -1)
    fi
    say "| $study | $s_cpu, ${t_cpu} s | $s_gpu, ${t_gpu} s | $ratio | $cmp |"
done
say ""

# --- 2. the AMR element pass (no MFEM needed) ----------------------------------------------------
say "## AMR element pass (the interpolation indicator through the ID-pruned INR, corner INR, 4096 elements): cuda vs 1 CPU thread"
say ""
run amr-elements 120 "$PY" - <<'PYEOF'
import time
import numpy as np
import torch
from sciprune.studies.amr.examine import ElementPass, examine
from sciprune.studies.amr.inr import resolve_inr

torch.set_num_threads(1)
inr = resolve_inr("corner")
gpu = inr.to(torch.device("cuda"))
rng = np.random.default_rng(0)
B, h = 4096, 1 / 64
lo = rng.random((B, 1, 2)) * (1 - h)
corners = lo + h * np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])[None]
ids = np.arange(B)
lift = lambda p: p
kw = dict(seed=0, it=0, id_samples=32, error_samples=128, epsilon=1e-3)
def run(net, c, i):
    return examine(ElementPass("interpolation", net, lift, **kw), c, i)
run(gpu, corners[:256], ids[:256])  # warm-up
times = {}
for name, net in (("cpu", inr), ("cuda", gpu)):
    t0 = time.perf_counter()
    v = run(net, corners, ids)
    if name == "cuda":
        torch.cuda.synchronize()
    times[name] = (time.perf_counter() - t0, v)
(tc, vc), (tg, vg) = times["cpu"], times["cuda"]
rel = np.abs(vg.error - vc.error) / np.maximum(np.abs(vc.error), 1e-12)
print(f"cpu {tc:.2f} s, cuda {tg:.2f} s, cpu/cuda {tc / tg:.1f}; ranks equal on {np.mean((vc.ranks == vg.ranks).all(1)):.1%} "
      f"of elements; error: median rel diff {np.median(rel):.2e}, 99th pct {np.quantile(rel, 0.99):.2e}")
PYEOF
say "- $STATUS (${SECONDS_TAKEN} s): $(tail -n 1 "$WORK/amr-elements.log" 2>/dev/null)"
say ""

# --- 3. bench_id on the device ------------------------------------------------------------------
say "## benchmarks/bench_id.py --device cuda (batched id_prune, ms per element)"
say ""
run bench-id 120 "$PY" benchmarks/bench_id.py --device cuda --width 256 --width 32
say "- $STATUS (${SECONDS_TAKEN} s)"
say '```'
tail -n 6 "$WORK/bench-id.log" 2>/dev/null | tee -a "$SUMMARY"
say '```'
say ""

# --- 4. the CUDA-only tests ---------------------------------------------------------------------
say "## CUDA-only tests"
run cuda-tests 180 "$PY" -m pytest -q -p no:cacheprovider tests/studies/test_device.py tests/studies/flows/test_flows_study.py tests/studies/nif/test_device.py -k "cuda"
say "- pytest -k cuda (test_device.py, flows, nif): $STATUS (${SECONDS_TAKEN} s): $(tail -n 1 "$WORK/cuda-tests.log" 2>/dev/null)"
say ""
say "total: $(elapsed) s; logs: $LOGS"
rm -rf "$WORK"
exit 0
