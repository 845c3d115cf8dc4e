#!/usr/bin/env bash
# One session on a lent GPU machine (the device tool), prepared here and run there in one command:
#   1. the GPU check (benchmarks/gpu_check.py: parity, optimiser mechanisms, captured against eager steps, waves,
#      throughput, optimiser share, kernel launches per step, the projected paper study) into $OUT/gpu-check/; where
#      the captured step did not match, the sweep below runs with EBGAN_CUDA_GRAPH=0 (every step eager);
#   2. the paper-balanced reference (327 configs at Table 1 widths, 4,685 steps, 5,000 samples per score) with the
#      local executor (no Ray there) into $OUT/paper_balanced.sqlite, for at most SWEEP_SECONDS; Ctrl+C-style stop
#      (SIGINT) at the limit keeps every stored row, and the next session resumes it when the database travels in:
#      copy it to results/paper_balanced.sqlite here and name that path in the run's carry.
# There: bash benchmarks/gpu_session.sh   (with .whl/ from `make gpu-wheels` and, to resume, the database carried).
# Here, to try it on the CPU at the smoke profile: OUT=/tmp/gpu-session DEVICE=cpu PROFILE=smoke bash benchmarks/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu-session}
DEVICE=${DEVICE:-cuda}
PROFILE=${PROFILE:-paper-balanced}
SWEEP_SECONDS=${SWEEP_SECONDS:-300}
export PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0
mkdir -p "$OUT"
if [ -d .whl ] && ! python3 -c "import sqlalchemy, alembic" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 2
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
started=$(date +%s)
if [ "$DEVICE" = cuda ]; then
  python3 benchmarks/gpu_check.py "$OUT/gpu-check" --device cuda
else
  python3 benchmarks/gpu_check.py "$OUT/gpu-check" --device cpu --quick
fi
echo "[gpu-session] gpu check took $(( $(date +%s) - started )) s"
if ! python3 -c "import json, sys; sys.exit(not json.load(open('$OUT/gpu-check/gpu_check.json'))
                 .get('captured_step', {}).get('ok', True))"; then
  echo "[gpu-session] a captured step differed from an eager one (or the check failed): the sweep trains eagerly"
  export EBGAN_CUDA_GRAPH=0
fi
DB="$OUT/paper_balanced.sqlite"
[ -f results/paper_balanced.sqlite ] && cp results/paper_balanced.sqlite "$DB"
timeout -s INT "$SWEEP_SECONDS" python3 sweeps/mnist_grid.py --grid all --profile "$PROFILE" --executor local \
  --db "sqlite:///$(realpath -m "$DB")"
echo "[gpu-session] sweep stopped or done (exit $?) after $(( $(date +%s) - started )) s in all; database $DB"
