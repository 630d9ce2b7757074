"""`refinery clean RUN_DIR [--yes]`: remove the phase folders the run's last build no longer uses.

Phase folders are named by a hash of their settings and what they read, so every changed setting
leaves the previous folder behind (that is what keeps old and new output apart). The folders the last
finished build used are those its stats.json names; the others are listed with their size, then
removed after a yes (or at once with --yes). A build interrupted since then shows as `partial`: its
committed shards would be lost, so read the list before answering.
"""

from __future__ import annotations

import sys

from jobs.errors import EXIT_INVALID, CommandError


def register(subparsers) -> None:
    clean = subparsers.add_parser("clean", help="remove phase folders left by earlier settings of a run")
    clean.add_argument("run_dir", help="<output>/<job name> of a finished `refinery build`")
    clean.add_argument("--yes", action="store_true", help="remove without asking")
    clean.set_defaults(handler=_clean)


def _clean(args) -> int:
    from corpus.io.files import filesystem, join
    from corpus.runtime import layout, ledger
    from corpus.runtime.folders import unused_phase_folders

    try:
        stats = layout.read_stats(args.run_dir)
    except layout.RunFolderError:
        raise CommandError(f"no stats.json in {args.run_dir}: clean needs a run folder (<output>/<job name>) "
                           f"that a build finished, to know which phase folders are in use", EXIT_INVALID) from None
    if "phases" not in stats:
        raise CommandError(f"{args.run_dir} is not a run folder (its stats.json is a phase's)", EXIT_INVALID)
    old = unused_phase_folders(args.run_dir, [p["dir"] for p in stats["phases"]])
    if not old:
        print(f"{args.run_dir}: every phase folder is in use by the last build; nothing to remove")
        return 0
    fs, _ = filesystem(args.run_dir)
    total = 0
    print(f"phase folders the last build of {args.run_dir} does not use:")
    for path in old:
        files = fs.find(filesystem(path)[1])
        size = sum(fs.sizes(files)) if files else 0
        total += size
        partial = not fs.exists(filesystem(join(path, layout.PHASE_STATS))[1]) and ledger.committed(path)
        print(f"  {path}  ({size / 1e6:.1f} MB{', partial: a build was interrupted there' if partial else ''})")
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("nothing removed (no terminal to ask). Fix: add --yes to remove them")
        if input(f"remove {len(old)} folder(s), {total / 1e6:.1f} MB? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 0
    for path in old:
        fs.rm(filesystem(path)[1], recursive=True)
    print(f"removed {len(old)} folder(s), {total / 1e6:.1f} MB")
    return 0
