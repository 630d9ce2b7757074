"""One shard through one phase: read, run the fused stages batch by batch, write, commit.

This is what a Ray actor runs; it knows nothing of Ray, so it is tested directly. The commit order is
the exactly-once contract: every part file is written under a temp name and published by rename, and
only then is the ledger entry written (atomically too). A shard whose ledger entry exists is done; a
shard without one is redone from scratch, and because ids, stages and file layout are deterministic,
the redo publishes the same bytes under the same names.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from corpus.config import config_from_dict
from corpus.io.files import join
from corpus.io.parquet import PartWriter, domain_of, partition_path, read_batches
from corpus.runtime import layout
from corpus.runtime.layout import relative_to
from corpus.runtime.spec import InputSpec, RuntimeSpec, StageEntry
from corpus.sources import SOURCES
from corpus.sources.base import ReadBatch, Shard
from corpus.stages import STAGES, BuildContext
from corpus.stages.base import StartsShards
from schemas.arrow import DOCUMENT_V1, REJECT_COLUMNS_V1, SCHEMA_METADATA_KEY

READ_STAGE = "read"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PhaseTask:
    """Everything an actor needs to run shards of one phase (picklable, built by the driver)."""

    phase: str
    phase_dir: str
    stages: tuple[StageEntry, ...]
    origin_before: tuple[dict[str, str], ...]
    runtime: RuntimeSpec
    inputs: tuple[InputSpec, ...] = ()
    """Phase 0: the job's inputs (shard.source names the reader)."""
    input_schema: pa.Schema | None = None
    """Later phases: schema of the previous phase's documents, domain included."""
    phase_dirs: dict[str, str] = dataclasses.field(default_factory=dict)
    """Folders of the earlier phases by name (for stages that read a cross-shard phase's results)."""

    @property
    def data_dir(self) -> str:
        return join(self.phase_dir, layout.DATA)

    @property
    def rejected_dir(self) -> str:
        return join(self.phase_dir, layout.REJECTED)



class ShardRunner:
    """Holds the built stages (models loaded once) and the phase's output schemas."""

    def __init__(self, task: PhaseTask):
        self.task = task
        self.stages = []
        for entry, origin in zip(task.stages, task.origin_before):
            spec = STAGES[entry.name]
            ctx = BuildContext(phase=task.phase, stage=entry.name, column_origin=origin,
                               work_dir=task.phase_dir, phase_dirs=task.phase_dirs)
            self.stages.append((entry.name, spec.kind, spec.build(entry.config, ctx)))
        self.source_configs = [config_from_dict(SOURCES[i.source].config, i.options or {}, f"inputs[{n}]")
                               for n, i in enumerate(task.inputs)]
        self.output_schema = self._probe_schema()
        self.data_schema = _without_domain(self.output_schema).with_metadata(
            {SCHEMA_METADATA_KEY: b"document_v1"})
        self.rejected_schema = pa.schema(
            [f.with_nullable(f.name not in ("id", "source", "text")) for f in self.data_schema]
            + REJECT_COLUMNS_V1, metadata={SCHEMA_METADATA_KEY: b"rejected_v1"})

    def _probe_schema(self) -> pa.Schema:
        """Run an empty batch through every stage: the stages' own output types fix the file schema."""
        batch = (self.task.input_schema or DOCUMENT_V1).empty_table()
        for name, kind, fn in self.stages:
            batch = fn(batch)
            if kind == "select":
                batch = batch.drop_columns(["drop_stage", "drop_reason"])
        return batch.schema

    def run(self, shard: Shard, attempt: int = 1) -> dict[str, Any]:
        started = time.perf_counter()
        counters: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        dropped: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        writers: dict[tuple[str, str], PartWriter] = {}
        rows = {"in": 0, "kept": 0, "rejected": 0}
        for _, _, fn in self.stages:
            if isinstance(fn, StartsShards):
                fn.start_shard(shard)
        try:
            for read in self._read(shard, counters):
                rows["in"] += read.documents.num_rows + len(read.rejected)
                if read.rejected:
                    self._write_rejected(writers, shard.key, _reader_rejects(read, self.task.phase), dropped)
                batch = read.documents
                for name, kind, fn in self.stages:
                    if batch.num_rows == 0:
                        break
                    c = counters[name]
                    t0 = time.perf_counter()
                    c["rows_in"] += batch.num_rows
                    c["bytes_in"] += _text_bytes(batch)
                    out = fn(batch)
                    if kind == "select":
                        keep = pc.is_null(out.column("drop_reason"))
                        gone = out.filter(pc.invert(keep))
                        batch = out.filter(keep).drop_columns(["drop_stage", "drop_reason"])
                        if gone.num_rows:
                            gone = gone.append_column("drop_phase", pa.array([self.task.phase] * gone.num_rows,
                                                                             pa.string()))
                            self._write_rejected(writers, shard.key, gone, dropped)
                    else:
                        batch = out
                    c["rows_out"] += batch.num_rows
                    c["bytes_out"] += _text_bytes(batch)
                    c["seconds"] += time.perf_counter() - t0
                if batch.num_rows:
                    batch = batch.select(self.output_schema.names)
                    for domain, part in _split_by_domain(batch):
                        self._writer(writers, "data", domain, shard.key).write(part)
            rows["kept"] = sum(w.rows for (kind, _), w in writers.items() if kind == "data")
            rows["rejected"] = sum(w.rows for (kind, _), w in writers.items() if kind == "rejected")
            files = {"data": [], "rejected": []}
            for (kind, domain), w in sorted(writers.items()):
                w.commit()
                root = self.task.data_dir if kind == "data" else self.task.rejected_dir
                files[kind].append({"path": w.final_path[len(root) + 1:], "domain": domain, "rows": w.rows,
                                    "bytes": w.bytes_written})
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        entry = {
            "key": shard.key, "phase": self.task.phase,
            "inputs": [shard.path] if not shard.parts else self._run_relative(shard.parts),
            "rows_in": rows["in"], "rows_kept": rows["kept"], "rows_rejected": rows["rejected"],
            "dropped": {s: dict(r) for s, r in sorted(dropped.items())},
            "counters": {s: {k: round(v, 6) for k, v in sorted(c.items())} for s, c in counters.items()},
            "files": files, "attempt": attempt, "seconds": round(time.perf_counter() - started, 6),
        }
        return entry  # the pool writes it to the ledger: the commit point

    def _run_relative(self, parts: tuple[str, ...]) -> list[str]:
        """The previous phase's part files as paths relative to the run folder (corpus.runtime.layout)."""
        run = self.task.phase_dir.rstrip("/").rsplit("/", 1)[0]
        return [relative_to(run, p) for p in parts]

    def _read(self, shard: Shard, counters) -> Iterator[ReadBatch]:
        c = counters[READ_STAGE]
        c["input_bytes"] += shard.size
        if shard.parts:
            batches = self._read_parts(shard)
        else:
            spec = SOURCES[shard.source]
            batches = spec.read(shard, self.source_configs[shard.input_index], self.task.runtime.batch_rows)
        t0 = time.perf_counter()
        for read in batches:
            c["seconds"] += time.perf_counter() - t0
            c["rows_in"] += read.documents.num_rows + len(read.rejected)
            c["rows_out"] += read.documents.num_rows
            c["bytes_out"] += _text_bytes(read.documents)
            yield read
            t0 = time.perf_counter()

    def _read_parts(self, shard: Shard) -> Iterator[ReadBatch]:
        for path in shard.parts:
            domain = domain_of(path)
            for table in read_batches(path, self.task.runtime.batch_rows):
                table = table.append_column(pa.field("domain", pa.string(), nullable=False),
                                            pa.array([domain] * table.num_rows, pa.string()))
                yield ReadBatch(table.select(self.task.input_schema.names), [])

    def _writer(self, writers, kind: str, domain: str, key: str) -> PartWriter:
        if (kind, domain) not in writers:
            root = self.task.data_dir if kind == "data" else self.task.rejected_dir
            schema = self.data_schema if kind == "data" else self.rejected_schema
            writers[(kind, domain)] = PartWriter(partition_path(root, domain, key), schema,
                                                 self.task.runtime.row_group_bytes)
        return writers[(kind, domain)]

    def _write_rejected(self, writers, key: str, gone: pa.Table, dropped) -> None:
        counts = gone.group_by(["drop_stage", "drop_reason"]).aggregate([([], "count_all")])
        for stage, reason, n in zip(*(counts.column(i).to_pylist() for i in range(3))):
            dropped[stage][reason] += n
        gone = _conform(gone, self.rejected_schema)
        for domain, part in _split_by_domain(gone):
            self._writer(writers, "rejected", domain, key).write(part)


def _reader_rejects(read: ReadBatch, phase: str) -> pa.Table:
    rows = [dict(row, drop_phase=phase, drop_stage=READ_STAGE, drop_reason=reason) for row, reason in read.rejected]
    fields = list(DOCUMENT_V1) + REJECT_COLUMNS_V1
    return pa.Table.from_pylist(rows, schema=pa.schema([f.with_nullable(True) for f in fields]))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Columns of `schema` (domain kept for partitioning); columns the rows never got are null."""
    columns, fields = [], []
    for f in list(schema) + [pa.field("domain", pa.string())]:
        columns.append(table.column(f.name).cast(f.type) if f.name in table.column_names
                       else pa.nulls(table.num_rows, f.type))
        fields.append(f.with_nullable(True))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _split_by_domain(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    domains = table.column("domain")
    for domain in sorted(pc.unique(domains).to_pylist()):
        yield domain, table.filter(pc.equal(domains, domain))


def _without_domain(schema: pa.Schema) -> pa.Schema:
    return schema.remove(schema.get_field_index("domain"))


def _text_bytes(batch: pa.Table) -> int:
    if batch.num_rows == 0 or "text" not in batch.column_names:
        return 0
    return int(pc.sum(pc.binary_length(batch.column("text"))).as_py() or 0)
