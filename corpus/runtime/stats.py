"""Counters merged per phase and per job, and the conservation check that balances the books.

Every phase must account for each row it read: rows in = rows kept + rows rejected, per shard; the
rejected rows per (stage, reason) in the ledger equal what the rejected files hold; the files hold
the rows the ledger says; and a later phase reads exactly what the phase before it kept.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import fsspec

from corpus.io.files import join
from corpus.runtime import layout
from schemas.arrow import STATS_V1


class ConservationError(RuntimeError):
    """A phase whose row counts do not balance: something was lost or duplicated."""


def merge_entries(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum ledger entries of one phase into phase totals."""
    total: dict[str, Any] = {"shards": len(entries), "rows_in": 0, "rows_kept": 0, "rows_rejected": 0,
                             "dropped": defaultdict(lambda: defaultdict(int)),
                             "counters": defaultdict(lambda: defaultdict(float))}
    for e in entries:
        for k in ("rows_in", "rows_kept", "rows_rejected"):
            total[k] += e[k]
        for stage, reasons in e["dropped"].items():
            for reason, n in reasons.items():
                total["dropped"][stage][reason] += n
        for stage, counters in e["counters"].items():
            for name, value in counters.items():
                total["counters"][stage][name] += value
    total["dropped"] = {s: dict(sorted(r.items())) for s, r in sorted(total["dropped"].items())}
    total["counters"] = {s: {k: round(v, 6) for k, v in sorted(c.items())} for s, c in total["counters"].items()}
    for stage, c in total["counters"].items():
        if c.get("seconds"):
            c["rows_per_s"] = round(c.get("rows_in", 0) / c["seconds"], 2)
    return total


def stats_table(phase: str, entries: list[dict[str, Any]]) -> pa.Table:
    """The long-format STATS_V1 table of a phase: one row per shard, stage and counter."""
    rows = []
    for e in entries:
        for stage, counters in e["counters"].items():
            rows += [(phase, e["key"], stage, name, float(v)) for name, v in counters.items()]
        for stage, reasons in e["dropped"].items():
            rows += [(phase, e["key"], stage, f"dropped.{reason}", float(n)) for reason, n in reasons.items()]
    columns = list(zip(*rows)) if rows else [[] for _ in STATS_V1]
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, STATS_V1)], schema=STATS_V1)


def check_conservation(phase_dir: str, entries: dict[str, dict[str, Any]],
                       upstream_kept: dict[str, int] | None) -> None:
    """Raise ConservationError naming the shard and the counts that do not balance."""
    problems = []
    for key, e in sorted(entries.items()):
        if e["rows_in"] != e["rows_kept"] + e["rows_rejected"]:
            problems.append(f"shard {key}: rows_in {e['rows_in']} != kept {e['rows_kept']} + rejected "
                            f"{e['rows_rejected']}")
        by_reason = sum(n for reasons in e["dropped"].values() for n in reasons.values())
        if by_reason != e["rows_rejected"]:
            problems.append(f"shard {key}: drops by reason sum to {by_reason}, rejected rows are {e['rows_rejected']}")
        if upstream_kept is not None and upstream_kept.get(key) != e["rows_in"]:
            problems.append(f"shard {key}: read {e['rows_in']} rows, the previous phase kept "
                            f"{upstream_kept.get(key)}")
        for kind, counted in (("data", e["rows_kept"]), ("rejected", e["rows_rejected"])):
            on_disk = 0
            for f in e["files"][kind]:
                with fsspec.open(join(phase_dir, kind, f["path"]), "rb") as fh:
                    on_disk += pq.ParquetFile(fh).metadata.num_rows
            if on_disk != counted:
                problems.append(f"shard {key}: {kind} files hold {on_disk} rows, the ledger says {counted}")
        reasons_on_disk = _reasons_on_disk(phase_dir, e)
        if reasons_on_disk != {(s, r): n for s, rs in e["dropped"].items() for r, n in rs.items()}:
            problems.append(f"shard {key}: rejected files by (stage, reason) {reasons_on_disk} differ from "
                            f"the ledger {e['dropped']}")
    if problems:
        raise ConservationError(f"{phase_dir}: the books do not balance:\n  " + "\n  ".join(problems[:20]))


def _reasons_on_disk(phase_dir: str, entry: dict[str, Any]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for f in entry["files"]["rejected"]:
        with fsspec.open(join(phase_dir, layout.REJECTED, f["path"]), "rb") as fh:
            t = pq.read_table(fh, columns=["drop_stage", "drop_reason"])
        g = t.group_by(["drop_stage", "drop_reason"]).aggregate([([], "count_all")])
        for s, r, n in zip(*(g.column(i).to_pylist() for i in range(3))):
            counts[(s, r)] += n
    return dict(counts)


__all__ = ["merge_entries", "stats_table", "check_conservation", "ConservationError"]
