"""metrics.jsonl: one JSON line per step (and per evaluation), written by rank 0, readable while the run goes.

On resume the file is cut back to the checkpoint's step first, so a step that ran after the last
checkpoint and is run again appears once.
"""

from __future__ import annotations

import json
import os
from typing import Any

from training.atomic_files import write_text_atomic

PEAK_BF16_FLOPS = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}
"""Dense bf16 tensor-core peak per GPU, from NVIDIA's data sheets (H100/H200 SXM: 989.4 TFLOP/s without
sparsity; A100: 312; L40S: 362.05; A10: 125). MFU = model FLOPs per second / this peak."""


def peak_flops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_FLOPS.items():
        if key in device_name:
            return value
    return None


class MetricsLog:
    def __init__(self, path: str, *, resume_step: int):
        self.path = path
        kept = []
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a kill
                    if record.get("step", 0) <= resume_step:
                        kept.append(line if line.endswith("\n") else line + "\n")
        write_text_atomic(path, "".join(kept))
        self._file = open(path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_metrics(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out
