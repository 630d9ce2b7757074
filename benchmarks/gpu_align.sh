#!/usr/bin/env bash
# GPU alignment throughput: SFT and reward-model phases on a ~125M-parameter GPT, bf16, one GPU
# (benchmarks/gpu_align.py), printing samples/s and tokens/s per phase. `--tiny` runs the same path on CPU.
#
#   benchmarks/gpu_align.sh [gpu_align.py arguments, e.g. --steps 60 --sft-micro 8 --rm-micro 4 | --tiny]
#
# Run from anywhere; uses the python3 on PATH (PYTHON=... to choose). Where megatron-core is missing
# (the GPU machine's image), it installs the wheels carried in <repo>/.whl (megatron-core 0.16.1, cp312,
# see benchmarks/README.md "GPU pretraining") into /tmp/site first. When $OUT is set, the log and the
# figures (JSON) are written there too, as $OUT/$TAG.log and $OUT/$TAG.json (TAG defaults to gpu_align).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
if ! "$PY" -c "import megatron.core" 2>/dev/null; then
    ls "$REPO"/.whl/*.whl >/dev/null 2>&1 || { echo "megatron-core is not installed and $REPO/.whl holds no wheels" >&2; exit 2; }
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$REPO"/.whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
"$PY" -c "import torch, megatron.core; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'megatron-core', megatron.core.__version__)"
if [ -n "${OUT:-}" ]; then
    TAG="${TAG:-gpu_align}"
    "$PY" "$REPO/benchmarks/gpu_align.py" --json "$OUT/$TAG.json" "$@" 2>&1 | tee "$OUT/$TAG.log"
else
    "$PY" "$REPO/benchmarks/gpu_align.py" "$@"
fi
