#!/usr/bin/env bash
# GPU alignment throughput (InstructGPT's three steps), one phase at a time, one GPU, bf16.
#
#   benchmarks/gpu_align.sh [--phase ppo] [phase arguments, e.g. --iterations 4 --rollout 32]
#   benchmarks/gpu_align.sh --tiny                        # CPU check of every phase (tiny models)
#
# Phases: ppo (benchmarks/gpu_align_ppo.py: a few PPO iterations of a ~125M GPT, samples/s and tokens/s).
# Run from anywhere; uses the python3 on PATH (PYTHON=... to choose). Where megatron-core is missing
# (the GPU machine's image), it installs the wheels carried in <repo>/.whl into /tmp/site first, as
# gpu_pretrain.sh does. When $OUT is set, each phase's log and figures go to $OUT/align_<phase>.{log,json}.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
PHASES="ppo"
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --phase) PHASES="$2"; shift 2 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
if ! "$PY" -c "import megatron.core" 2>/dev/null; then
    ls "$REPO"/.whl/*.whl >/dev/null 2>&1 || { echo "megatron-core is not installed and $REPO/.whl holds no wheels" >&2; exit 2; }
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$REPO"/.whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
"$PY" -c "import torch, megatron.core; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'megatron-core', megatron.core.__version__)"
for phase in $PHASES; do
    script="$REPO/benchmarks/gpu_align_${phase}.py"
    [ -f "$script" ] || { echo "unknown phase $phase (no $script)" >&2; exit 2; }
    echo "== phase $phase =="
    if [ -n "${OUT:-}" ]; then
        "$PY" "$script" --json "$OUT/align_${phase}.json" "${ARGS[@]+"${ARGS[@]}"}" 2>&1 | tee "$OUT/align_${phase}.log"
    else
        "$PY" "$script" "${ARGS[@]+"${ARGS[@]}"}"
    fi
done
