#!/usr/bin/env bash
# GPU alignment throughput (InstructGPT's three steps), one GPU, bf16, printing samples/s and tokens/s:
#   phase sft-rm: SFT and reward-model steps on a ~125M GPT (benchmarks/gpu_align.py)
#   phase ppo:    a few PPO iterations of a ~125M GPT (benchmarks/gpu_align_ppo.py)
#
#   benchmarks/gpu_align.sh [--phase sft-rm|ppo] [phase arguments, e.g. --steps 60 | --iterations 4]
#   benchmarks/gpu_align.sh --tiny                        # CPU check of every phase (tiny models)
#
# Without --phase every phase runs (the arguments go to each). Run from anywhere; uses the python3 on
# PATH (PYTHON=... to choose). Where megatron-core is missing (the GPU machine's image), it installs the
# wheels carried in <repo>/.whl (megatron-core 0.16.1, cp312, see benchmarks/README.md "GPU pretraining")
# into /tmp/site first. When $OUT is set, each phase's log and figures go to $OUT/align_<phase>.{log,json}.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
PHASES="sft-rm ppo"
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
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
"$PY" -c "import torch, megatron.core; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'megatron-core', megatron.core.__version__)"
for phase in $PHASES; do
    case "$phase" in
        sft-rm) script="$REPO/benchmarks/gpu_align.py" ;;
        ppo) script="$REPO/benchmarks/gpu_align_ppo.py" ;;
        *) echo "unknown phase $phase (sft-rm or ppo)" >&2; exit 2 ;;
    esac
    echo "== phase $phase =="
    if [ -n "${OUT:-}" ]; then
        "$PY" "$script" --json "$OUT/align_${phase}.json" "${ARGS[@]+"${ARGS[@]}"}" 2>&1 | tee "$OUT/align_${phase}.log"
    else
        "$PY" "$script" "${ARGS[@]+"${ARGS[@]}"}"
    fi
done
