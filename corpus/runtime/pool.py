"""Work items on a pool of Ray actors, exactly once: the retry, quarantine and ledger machinery.

Any per-shard work (a map phase, a dedup pass, a tokenizer export) runs through `run_on_actors`:
each actor builds its worker once (`factory()`, models loaded there), runs items, and writes the
item's ledger entry only after `worker.run` returned, i.e. after the worker published its files.
Items already in the ledger are skipped by the caller; a failing item is retried on a healthy actor
(a dead actor is replaced), and after `max_retries` retries it is quarantined with its error.

An `ActorPool` keeps the actor processes between calls (the steps of a dedup phase, the phases of a
job): each call only rebuilds the worker inside them. Starting an actor costs 1-3 s (a Python process
importing numpy, pyarrow and refinery), which a MinHash phase of ~15 short steps paid at every step.
"""

from __future__ import annotations

import collections
import time
from typing import Any, Callable, Protocol, Sequence

from corpus.io.files import join, write_json_atomic
from corpus.runtime import layout, ledger


class WorkItem(Protocol):
    key: str
    path: str
    parts: tuple[str, ...]


class Worker(Protocol):
    def run(self, item: Any, attempt: int) -> dict[str, Any]:
        """Do the item's work, publish its files, return its ledger entry (with 'key' and 'rows_in')."""


def _reset_peak_rss() -> None:
    """Linux: resets this process's peak-RSS mark (VmHWM), so that a step's reported peak memory is its
    own, not that of an earlier step the pooled actor ran. Best effort elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass


class _LedgerActor:
    def __init__(self):
        self.worker: Worker | None = None
        self.ledger_dir = ""

    def setup(self, factory: Callable[[], Worker], ledger_dir: str) -> bool:
        self.worker = None  # the previous call's worker (and its models) goes before the next is built
        _reset_peak_rss()
        self.worker = factory()
        self.ledger_dir = ledger_dir
        return True

    def release(self) -> None:
        """Drops the worker (and its models) while the actor waits in the pool."""
        self.worker = None

    def run(self, item: Any, attempt: int) -> dict[str, Any]:
        import ray

        entry = self.worker.run(item, attempt)
        entry.setdefault("attempt", attempt)
        entry.setdefault("node", ray.get_runtime_context().get_node_id())
        entry.setdefault("committed_at", time.time())
        write_json_atomic(join(self.ledger_dir, f"{item.key}.json"), entry)
        return entry


class ActorPool:
    """Idle actors kept for the next `run_on_actors` call; `close()` ends them (call it in a finally)."""

    def __init__(self):
        self.idle: list[Any] = []

    def take(self, n: int, fresh: bool = False) -> list[Any]:
        import ray

        actor_cls = ray.remote(num_cpus=1, max_restarts=0)(_LedgerActor)
        taken, self.idle = ([], self.idle) if fresh else (self.idle[:n], self.idle[n:])
        return taken + [actor_cls.options(scheduling_strategy="SPREAD").remote() for _ in range(n - len(taken))]

    def give_back(self, actors: list[Any]) -> None:
        for actor in actors:
            actor.release.remote()  # fire and forget: it runs before the actor's next setup
        self.idle.extend(actors)

    def close(self) -> None:
        import ray

        for actor in self.idle:
            ray.kill(actor)
        self.idle = []


class WorkerStartError(RuntimeError):
    """A worker's stages or models failed to build: retrying the shards elsewhere cannot help."""


def run_on_actors(*, phase_dir: str, items: Sequence[WorkItem], factory: Callable[[], Worker], workers: int,
                  max_retries: int, timeout_s: float = 0.0, desc: str = "", progress: bool = True,
                  total: int | None = None, on_done: Callable[[dict], None] | None = None,
                  pool: ActorPool | None = None) -> list[str]:
    """Run `items` (those not yet committed) on up to `workers` actors; returns quarantined keys.

    Ledger entries go to `<phase_dir>/ledger/<key>.json`, quarantine records to `<phase_dir>/quarantine/`.
    `total` (default len(items)) sizes the progress bar when some items were done by an earlier run.
    With a `pool`, actors come from it and the healthy ones go back to it; without, they are started
    here and ended on return.
    """
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
    from tqdm import tqdm

    if not items:
        return []
    own_pool = pool is None
    pool = pool or ActorPool()
    ledger_dir = join(phase_dir, layout.LEDGER)

    def set_up(n: int) -> list[Any]:
        """n actors with this call's worker built: pooled ones first; one that died while idle is
        replaced by a new actor. A worker that fails to build fails the call."""
        actors = pool.take(n)
        refs = [a.setup.remote(factory, ledger_dir) for a in actors]
        try:
            for i, ref in enumerate(refs):
                try:
                    ray.get(ref)
                except RayActorError:
                    ray.kill(actors[i])
                    actors[i] = pool.take(1, fresh=True)[0]
                    ray.get(actors[i].setup.remote(factory, ledger_dir))
        except (RayActorError, RayTaskError) as exc:
            for a in actors:
                ray.kill(a)
            raise WorkerStartError(f"{desc}: a worker could not start (its stages or models failed to build): "
                               f"{getattr(exc, 'cause', None) or exc}") from exc
        return actors

    def new_actor():
        return set_up(1)[0]

    total = total if total is not None else len(items)
    idle = set_up(min(workers, len(items)))
    pending = collections.deque(items)
    attempts: collections.Counter[str] = collections.Counter()
    inflight: dict[Any, tuple[Any, Any, float]] = {}
    quarantined: list[str] = []
    killed: set[Any] = set()
    rows_done, started = 0, time.monotonic()
    bar = tqdm(total=total, initial=total - len(items), desc=desc, unit="shard", disable=not progress,
               dynamic_ncols=True, mininterval=1.0)

    def failed(item, error: BaseException) -> None:
        if attempts[item.key] <= max_retries:
            pending.append(item)
        else:
            quarantined.append(item.key)
            ledger.quarantine(phase_dir, item.key, [item.path, *item.parts], attempts[item.key], error)
            bar.set_postfix_str(f"quarantined {len(quarantined)}", refresh=True)

    try:
        while pending or inflight:
            while idle and pending:
                actor, item = idle.pop(), pending.popleft()
                attempts[item.key] += 1
                inflight[actor.run.remote(item, attempts[item.key])] = (actor, item, time.monotonic())
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            if timeout_s:
                now = time.monotonic()
                for ref, (actor, item, t0) in list(inflight.items()):
                    if now - t0 > timeout_s and ref not in ready:
                        ray.kill(actor)  # its ref now fails with RayActorError: retried below
                        killed.add(actor)
            for ref in ready:
                actor, item, _ = inflight.pop(ref)
                try:
                    entry = ray.get(ref)
                except RayActorError as exc:  # the worker process, or its node, died or is unreachable
                    ray.kill(actor)  # an unreachable one may still hold its CPU and the item
                    idle.append(new_actor())
                    failed(item, exc)
                    continue
                except (RayTaskError, GetTimeoutError) as exc:
                    idle.append(actor)
                    failed(item, getattr(exc, "cause", None) or exc)
                    continue
                # a timed-out actor can finish just before the kill lands: keep its work, not the actor
                idle.append(new_actor() if actor in killed else actor)
                ledger.clear_quarantine(phase_dir, item.key)
                if on_done:
                    on_done(entry)
                rows_done += entry.get("rows_in", 0)
                bar.update(1)
                bar.set_postfix_str(f"{rows_done / max(time.monotonic() - started, 1e-9):,.0f} docs/s",
                                    refresh=False)
    except BaseException:
        for actor in idle + [a for a, _, _ in inflight.values()]:
            ray.kill(actor)
        raise
    finally:
        bar.close()
    pool.give_back(idle)  # every item is done here: no actor is in flight
    if own_pool:
        pool.close()
    return quarantined
