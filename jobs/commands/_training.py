"""What the training commands (`refinery train ...`, `refinery mix doremi|compare`) share: the Ray options, and
the mapping of errors to exit status: 2 for what the user can fix (the message names it), 1 for a worker's
failure (Ray Train has printed its traceback already); anything else is a bug and keeps its traceback."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Callable

ADDRESS_HELP = "Ray cluster to join ('auto', or host:port); default: RAY_ADDRESS, else a local cluster"
# The names of the exceptions Ray Train wraps a worker's error in (matched by name: Ray is imported lazily).
WORKER_FAILURES = ("TrainingFailedError", "WorkerGroupError", "RayTaskError")


def add_run_options(parser, *, example: str, address_help: str = ADDRESS_HELP,
                    progress_help: str = "no progress bar") -> None:
    """--set KEY=VALUE (`example` shows one), --address, --no-progress."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value, e.g. {example} (repeatable)")
    parser.add_argument("--address", default=None, help=address_help)
    parser.add_argument("--no-progress", action="store_true", help=progress_help)


def ray_address(args) -> str | None:
    return args.address or os.environ.get("RAY_ADDRESS")


def quiet_megatron() -> None:
    """megatron-core logs every rank's setup at INFO: it would bury the progress bar."""
    logging.getLogger("megatron").setLevel(logging.WARNING)


def exit_on_error(run: Callable[[], Any], *, fixable: tuple[type[BaseException], ...] = (),
                  invalid_config: str | None = None, failed: str = "training failed") -> tuple[Any, int | None]:
    """(run(), None), or (None, exit status) after printing why: 2 for a ConfigError ("invalid `invalid_config`: ...",
    only when `invalid_config` is given) or an error in `fixable`, 1 for a worker's failure. Anything else raises."""
    from schemas.config import ConfigError

    try:
        return run(), None
    except Exception as exc:
        if invalid_config is not None and isinstance(exc, ConfigError):
            print(f"refinery: invalid {invalid_config}: {exc}", file=sys.stderr)
            return None, 2
        if isinstance(exc, fixable):
            print(f"refinery: {exc}", file=sys.stderr)
            return None, 2
        if type(exc).__name__ in WORKER_FAILURES:
            print(f"refinery: {failed}: {exc}", file=sys.stderr)
            return None, 1
        raise


def load_and_launch(args, *, load: Callable, launch: Callable, what: str,
                    fixable: tuple[type[BaseException], ...], failed: str = "training failed") -> tuple[Any, Any]:
    """(summary, config) of a training command, or (None, exit status): `load(path, overrides)` reads the config (a
    missing file or an invalid config: 2), then `launch(config, address=..., progress=...)` runs it; errors in
    `fixable` are the launch's errors a user can fix."""
    quiet_megatron()
    cfg, status = exit_on_error(lambda: load(args.config, args.overrides), fixable=(FileNotFoundError,),
                                invalid_config=f"{what} config")
    if status is not None:
        return None, status
    summary, status = exit_on_error(lambda: launch(cfg, address=ray_address(args), progress=not args.no_progress),
                                    fixable=fixable, failed=failed)
    return (None, status) if status is not None else (summary, cfg)
