"""`refinery clean RUN_DIR [--yes]`: remove what earlier settings left in a run folder.

A build's run folder (<output>/<job name>): phase folders are named by a hash of their settings and
what they read, so every changed setting leaves the previous folder behind (that is what keeps old and
new output apart). The folders the last finished build used are those its stats.json names; the others
are listed. A build interrupted since then shows as `partial`: its committed shards would be lost, so
read the list before answering.

A pipeline's run folder (<output>/<pipeline name> of `refinery run`): the step folders moved aside as
`<step>.replaced-<fingerprint>` when a step's settings or inputs changed, with how long ago that was,
and the unused phase folders of every build inside its steps.

Everything listed is removed after a yes on a terminal, or at once with --yes; without a terminal and
without --yes nothing is removed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

from jobs.errors import EXIT_INVALID, CommandError


def register(subparsers) -> None:
    clean = subparsers.add_parser("clean", help="remove phase folders and moved-aside step folders left by "
                                                "earlier settings of a run")
    clean.add_argument("run_dir", help="<output>/<job name> of a finished `refinery build`, or <output>/<name> "
                                       "of a `refinery run` pipeline")
    clean.add_argument("--yes", action="store_true", help="remove without asking")
    clean.set_defaults(handler=_clean)


@dataclasses.dataclass(frozen=True)
class Leftover:
    path: str
    size: int
    note: str
    """what it is, shown after its size"""
    also: tuple[str, ...] = ()
    """files removed with it: a dropped step's state and log, so that a step of that name added back runs"""


def _clean(args) -> int:
    from jobs.pipeline.runner import PIPELINE_FILE, PipelineBusy, only_runner

    pipeline = os.path.isfile(os.path.join(args.run_dir, PIPELINE_FILE))
    if pipeline:
        try:
            with only_runner(args.run_dir, doing="clean again"):  # held until the folders are gone
                return _remove(args, _pipeline_leftovers(args.run_dir), pipeline=True)
        except PipelineBusy as exc:
            raise CommandError(str(exc)) from None
    return _remove(args, _build_leftovers(args.run_dir), pipeline=False)


def _remove(args, old: list[Leftover], *, pipeline: bool) -> int:
    """List `old`, ask (or --yes), remove."""
    from corpus.io.files import filesystem

    if not old:
        print(f"{args.run_dir}: " + ("no step folder was moved aside and every build's phase folders are in use; "
                                     if pipeline else "every phase folder is in use by the last build; ")
              + "nothing to remove")
        return 0
    total = sum(x.size for x in old)
    print(f"left by earlier settings of {args.run_dir}:")
    for x in old:
        print(f"  {x.path}  ({x.size / 1e6:.1f} MB{', ' + x.note if x.note else ''})")
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("nothing removed (no terminal to ask). Fix: add --yes to remove them")
        if input(f"remove {len(old)} folder(s), {total / 1e6:.1f} MB? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 0
    for x in old:
        fs, p = filesystem(x.path)
        fs.rm(p, recursive=True)
        for path in x.also:
            os.remove(path)
    print(f"removed {len(old)} folder(s), {total / 1e6:.1f} MB")
    return 0


def _build_leftovers(run_dir: str, *, required: bool = True) -> list[Leftover]:
    """The phase folders of a build's run folder that its last finished build did not use."""
    from corpus.io.files import filesystem, join
    from corpus.runtime import layout, ledger
    from corpus.runtime.folders import unused_phase_folders

    try:
        stats = layout.read_stats(run_dir)
    except layout.RunFolderError:
        if not required:
            return []
        raise CommandError(f"no stats.json in {run_dir}: clean needs a run folder (<output>/<job name>) that a "
                           f"build finished, to know which phase folders are in use, or the run folder of a "
                           f"`refinery run` pipeline", EXIT_INVALID) from None
    if "phases" not in stats:
        if not required:
            return []
        raise CommandError(f"{run_dir} is not a run folder (its stats.json is a phase's)", EXIT_INVALID)
    fs, _ = filesystem(run_dir)
    out = []
    for path in unused_phase_folders(run_dir, [p["dir"] for p in stats["phases"]]):
        files = fs.find(filesystem(path)[1])
        partial = not fs.exists(filesystem(join(path, layout.PHASE_STATS))[1]) and ledger.committed(path)
        out.append(Leftover(path, sum(fs.sizes(files)) if files else 0,
                            "phase folder" + (", partial: a build was interrupted there" if partial else "")))
    return out


def _pipeline_leftovers(run_dir: str) -> list[Leftover]:
    """Moved-aside step folders, then the unused phase folders of the builds in the current step folders."""
    from corpus.runtime.layout import STATS
    from jobs.pipeline.runner import PIPELINE_FILE, log_path, replaced_folders, state_path

    now = time.time()
    out = [Leftover(path, _local_size(path), f"moved aside {_age(now - os.stat(path).st_ctime)} ago")
           for path in replaced_folders(run_dir)]
    with open(os.path.join(run_dir, PIPELINE_FILE), encoding="utf-8") as f:
        steps = set(json.load(f)["steps"])
    aside = {os.path.basename(x.path) for x in out}
    for step in sorted(os.listdir(run_dir)):
        if step in aside or not os.path.isdir(os.path.join(run_dir, step)):
            continue
        if step not in steps and os.path.isfile(state_path(run_dir, step)):
            records = tuple(p for p in (state_path(run_dir, step), log_path(run_dir, step)) if os.path.isfile(p))
            out.append(Leftover(os.path.join(run_dir, step), _local_size(os.path.join(run_dir, step)),
                                "a step no longer in the pipeline file", records))
            continue
        for build in sorted(os.listdir(os.path.join(run_dir, step))):
            if os.path.isfile(os.path.join(run_dir, step, build, STATS)):
                out += _build_leftovers(os.path.join(run_dir, step, build), required=False)
    return out


def _local_size(path: str) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path) for f in files)


def _age(seconds: float) -> str:
    """`45 s`, `12 min`, `3.2 h`, `4.0 days`: how long ago, to the precision a person decides by."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
