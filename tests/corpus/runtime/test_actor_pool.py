"""The actor pool: actors are kept between run_on_actors calls (only the worker inside is rebuilt), a
pooled actor that died while idle is replaced, and a worker that cannot be built fails the call clearly."""

import dataclasses
import os
import time

import pytest

from corpus.runtime.pool import ActorPool, run_on_actors


@dataclasses.dataclass(frozen=True)
class Item:
    key: str
    path: str = ""
    parts: tuple = ()


class PidWorker:
    def __init__(self, tag: str):
        self.tag = tag

    def run(self, item, attempt):
        return {"key": item.key, "rows_in": 1, "pid": os.getpid(), "tag": self.tag}


class BrokenWorker:
    def __init__(self):
        raise ValueError("model file missing")


def _dead(ray, actor, seconds=30.0) -> bool:
    """Whether the actor is dead within `seconds` (ray.kill is asynchronous)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            ray.get(actor.release.remote(), timeout=10)
        except ray.exceptions.RayActorError:
            return True
        time.sleep(0.2)
    return False


def _run(tmp_path, step, pool, tag="a", n=4):
    entries = []
    q = run_on_actors(phase_dir=str(tmp_path / step), items=[Item(f"{step}-{i}") for i in range(n)],
                      factory=lambda: PidWorker(tag), workers=2, max_retries=0, progress=False,
                      on_done=entries.append, pool=pool)
    assert q == []
    return entries


def test_actors_are_reused_between_calls_and_workers_rebuilt(ray_local, tmp_path):
    pool = ActorPool()
    try:
        first = _run(tmp_path, "one", pool, tag="a")
        second = _run(tmp_path, "two", pool, tag="b")
        assert len(pool.idle) == 2
        assert {e["pid"] for e in second} == {e["pid"] for e in first}  # same processes
        assert {e["tag"] for e in second} == {"b"}  # built anew for the second call
        assert sorted(os.listdir(tmp_path / "two" / "ledger")) == [f"two-{i}.json" for i in range(4)]
    finally:
        pool.close()
    assert pool.idle == []


def test_a_pooled_actor_that_died_while_idle_is_replaced(ray_local, tmp_path):
    pool = ActorPool()
    try:
        first = _run(tmp_path, "one", pool)
        dead = pool.idle[0]
        ray_local.kill(dead)
        assert _dead(ray_local, dead)
        second = _run(tmp_path, "two", pool)
        assert len(second) == 4
        assert {e["pid"] for e in second} != {e["pid"] for e in first}
    finally:
        pool.close()


def test_a_worker_that_cannot_be_built_fails_the_call_with_its_error(ray_local, tmp_path):
    pool = ActorPool()
    try:
        _run(tmp_path, "good", pool)
        taken = list(pool.idle)
        with pytest.raises(RuntimeError, match="could not start.*model file missing"):
            run_on_actors(phase_dir=str(tmp_path / "x"), items=[Item("k"), Item("l")], factory=BrokenWorker,
                          workers=2, max_retries=0, progress=False, pool=pool)
        assert pool.idle == []  # the actors it took were ended, not returned
        assert all(_dead(ray_local, actor) for actor in taken)
    finally:
        pool.close()


class MemoryWorker:
    def __init__(self, mb: int):
        import numpy as np

        if mb:
            np.ones(mb << 17).sum()  # mb MiB of float64, freed at once

    def run(self, item, attempt):
        from corpus.dedup.layout import peak_rss_mb

        return {"key": item.key, "rows_in": 1, "peak_rss_mb": peak_rss_mb(), "pid": os.getpid()}


def test_a_steps_peak_memory_is_its_own_not_an_earlier_steps(ray_local, tmp_path):
    pool = ActorPool()
    try:
        peaks = {}
        for step, mb in (("big", 400), ("small", 0)):
            entries = []
            run_on_actors(phase_dir=str(tmp_path / step), items=[Item(f"{step}-0")], factory=lambda: MemoryWorker(mb),
                          workers=1, max_retries=0, progress=False, on_done=entries.append, pool=pool)
            peaks[step] = entries[0]
        assert peaks["big"]["pid"] == peaks["small"]["pid"]
        assert peaks["big"]["peak_rss_mb"] > 400
        assert peaks["small"]["peak_rss_mb"] < peaks["big"]["peak_rss_mb"] - 300
    finally:
        pool.close()


class SlowFirstAttempt:
    def run(self, item, attempt):
        if item.key == "slow" and attempt == 1:
            import time

            time.sleep(60)
        return {"key": item.key, "rows_in": 1, "pid": os.getpid()}


def test_a_timed_out_item_is_retried_and_its_killed_actor_not_returned(ray_local, tmp_path):
    pool = ActorPool()
    try:
        entries = []
        q = run_on_actors(phase_dir=str(tmp_path / "t"), items=[Item("slow"), Item("fast")], factory=SlowFirstAttempt,
                          workers=2, max_retries=1, timeout_s=3, progress=False, on_done=entries.append, pool=pool)
        assert q == []
        assert {e["key"]: e["attempt"] for e in entries} == {"slow": 2, "fast": 1}
        assert len(pool.idle) == 2
        assert ray_local.get([a.release.remote() for a in pool.idle]) == [None, None]  # all alive
    finally:
        pool.close()
