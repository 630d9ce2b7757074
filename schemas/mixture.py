"""Mixture-weights files (`schemas/mixture_weights_v1.schema.json`): load, validate, write.

The file is the contract between whatever chooses a mixture (DoReMi, the LLaMA-1 table, a person) and
whatever consumes it (the Megatron blend, the data-size planner). JSON Schema checks the shape; the
sum-to-one rule is checked here because JSON Schema cannot express a sum.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
from typing import Any, Mapping

from schemas.atomic_files import write_atomic

FORMAT = "refinery-mixture-weights-v1"
SUM_TOLERANCE = 1e-6
SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "mixture_weights_v1.schema.json")


class MixtureWeightsError(ValueError):
    """A mixture-weights document that breaks the schema or the sum-to-one rule."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MixtureWeights:
    weights: dict[str, float]
    """domain -> fraction of training samples; sums to 1 within SUM_TOLERANCE."""
    method: str
    inputs: tuple[str, ...]
    date: str
    notes: str = ""

    def to_json(self) -> dict[str, Any]:
        provenance: dict[str, Any] = {"method": self.method, "inputs": list(self.inputs), "date": self.date}
        if self.notes:
            provenance["notes"] = self.notes
        return {"format": FORMAT, "weights": dict(sorted(self.weights.items())), "provenance": provenance}


def mixture_schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


def validate_mixture_weights(doc: Any) -> MixtureWeights:
    """The parsed document, or MixtureWeightsError naming what is wrong and where."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(mixture_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise MixtureWeightsError(f"mixture weights: {where}: {e.message}")
    total = math.fsum(doc["weights"].values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise MixtureWeightsError(f"mixture weights: weights sum to {total!r}, not 1 (tolerance {SUM_TOLERANCE}). "
                                  "Fix: normalize them (divide each by their sum).")
    p = doc["provenance"]
    return MixtureWeights(weights={k: float(v) for k, v in doc["weights"].items()}, method=p["method"],
                          inputs=tuple(p["inputs"]), date=p["date"], notes=p.get("notes", ""))


def load_mixture_weights(path: str) -> MixtureWeights:
    with open(path, encoding="utf-8") as f:
        try:
            doc = json.load(f)
        except json.JSONDecodeError as exc:
            raise MixtureWeightsError(f"{path}: not JSON: {exc}") from exc
    try:
        return validate_mixture_weights(doc)
    except MixtureWeightsError as exc:
        raise MixtureWeightsError(f"{path}: {exc}") from exc


def make_mixture_weights(weights: Mapping[str, float], *, method: str, inputs: list[str] | tuple[str, ...],
                         date: str | None = None, notes: str = "", normalize: bool = False) -> MixtureWeights:
    """Validated weights; `normalize` divides by the sum first (for token counts or percentages)."""
    w = {k: float(v) for k, v in weights.items()}
    if normalize:
        total = math.fsum(w.values())
        if total <= 0:
            raise MixtureWeightsError("mixture weights: cannot normalize weights that sum to 0")
        w = {k: v / total for k, v in w.items()}
    date = date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = MixtureWeights(weights=w, method=method, inputs=tuple(inputs), date=date, notes=notes).to_json()
    return validate_mixture_weights(doc)


def write_mixture_weights(path: str, mixture: MixtureWeights) -> None:
    validate_mixture_weights(mixture.to_json())
    write_atomic(path, json.dumps(mixture.to_json(), indent=2) + "\n")
