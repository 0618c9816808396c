#!/usr/bin/env bash
# The GPU checks of issue 13 as one prepared run, for a session lent a GPU machine for a few
# minutes: the training-throughput figures (a)-(d) on a CUB-size JPEG tree, the SOP-size evaluation
# suite, and the tests that exercise the GPU paths. Each stage has its own time limit, so one that
# hangs costs only its own figures; logs go to $OUT (the device tool's folder) or ./device_out.
#
#   bash benchmarks/device_check.sh                                 on the GPU machine (~5 min)
#   DEVICE=cpu PYTHON=.venv/bin/python bash benchmarks/device_check.sh   dry run here (~2 min)
#
# That machine has no package registry: faiss-cpu, pretrainedmodels and munch travel as wheels in
# .whl/ (see the device tool's README); they are installed first when the folder is there.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-device_out}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi

stage() {  # stage NAME SECONDS COMMAND...: run with a limit, log to $OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit} s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    grep -E "^\((a'?|b|c|d)\)|^data:|^cpu|^cuda|took|passed|failed|error|nmi" \
        "$OUT/$name.log" | tail -40
    echo "== $name: exit $rc after $((SECONDS - start)) s"
}

"$PYTHON" - <<'EOF' | tee "$OUT/machine.txt"
import os, torch
print("torch", torch.__version__, "| cuda", torch.version.cuda, "| cores", os.cpu_count())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(p.name, f"{p.total_memory / 2**30:.0f} GiB", "| bf16", torch.cuda.is_bf16_supported())
EOF

if [ "$DEVICE" = cuda ]; then
    stage train_step 270 "$PYTHON" benchmarks/bench_train_step.py --device cuda --workers 12
    stage evaluation 150 "$PYTHON" benchmarks/bench_evaluation.py --device cuda --skip d
    stage tests 150 "$PYTHON" -m pytest -q -x -p no:cacheprovider tests/test_training_loop.py \
        tests/test_acceleration.py tests/test_distributed.py tests/test_pipeline.py
else
    stage train_step 180 "$PYTHON" benchmarks/bench_train_step.py --device cpu
    stage evaluation 120 "$PYTHON" benchmarks/bench_evaluation.py --quick --skip c d
    stage tests 150 "$PYTHON" -m pytest -q -x -p no:cacheprovider tests/test_training_loop.py
fi
