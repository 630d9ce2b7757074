"""One error handler around every `refinery` command: a known failure is one line and an exit code.

A person who mistyped a path, pointed `--address` at no cluster or gave a read-only output folder
needs the cause and the fix, not the 25 to 70 lines of traceback that name neither; the traceback
helps only whoever debugs refinery itself, so `--debug` prints it. A failure this table does not know
is a bug: its traceback is always printed.

Exit status (the same for every command):
    0    done
    1    failed: the line says why (an output folder that cannot be written, no Ray cluster to join,
         a model that does not load, ...)
    2    invalid input: the job spec, a config, a flag or a path (the line names it and the fix)
    3    done, but some shards failed every retry and were quarantined: fix the cause, run it again
    4    the books did not balance (rows lost or duplicated): a bug, please report it
    130  interrupted (Ctrl-C): what was committed is kept; the same command resumes
"""

from __future__ import annotations

import errno
import sys
import traceback
from typing import Callable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_QUARANTINED = 3
EXIT_UNBALANCED = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

# errno values that say "this folder cannot take our output", whatever call hit them first.
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


class CommandError(Exception):
    """A failure a command has already put into words: printed as one line, exit `code`."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def explain(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, one line) for a failure the user can fix; None for anything else (a bug)."""
    from schemas.config import ConfigError

    if isinstance(exc, CommandError):
        return exc.code, str(exc)
    if isinstance(exc, ConfigError):
        return EXIT_INVALID, f"invalid configuration: {exc}"
    if type(exc).__name__ == "ConservationError":  # corpus.runtime.stats; not imported: it pulls in pyarrow
        return EXIT_UNBALANCED, f"{exc} (a bug: please report it with the run's stats.json)"
    if type(exc).__name__ == "WorkerStartError":  # corpus.runtime.pool: a stage or model failed to build
        return EXIT_FAILED, str(exc)
    if isinstance(exc, ConnectionError) and "Ray instance" in str(exc):
        return EXIT_FAILED, ("no Ray cluster to join (--address or RAY_ADDRESS is set, but nothing runs there). "
                             "Fix: start one with `ray start --head`, or leave out --address (and unset "
                             "RAY_ADDRESS) for an embedded local cluster.")
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return EXIT_INVALID, _os_line(exc)
    if isinstance(exc, OSError) and exc.errno in _NOT_WRITABLE:
        return EXIT_FAILED, (f"cannot write {exc.filename or 'the output'}: {exc.strerror}. Fix: choose a "
                             f"writable folder with free space (--out / --output), or fix its permissions.")
    if isinstance(exc, OSError):
        return EXIT_FAILED, _os_line(exc)
    return None


def _os_line(exc: OSError) -> str:
    if exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def run_guarded(command: Callable[[], int], *, debug: bool = False) -> int:
    """Run `command` and turn a known failure into one line on stderr and its exit code."""
    try:
        return command()
    except KeyboardInterrupt as exc:
        # The runtime raises a KeyboardInterrupt subclass that says how far the job got.
        if debug:
            traceback.print_exc()
        print(f"refinery: {exc}" if str(exc) else "refinery: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        known = explain(exc)
        if known is None:
            traceback.print_exc()
            print(f"refinery: unexpected {type(exc).__name__} (a bug: please report it with the lines above)",
                  file=sys.stderr)
            return EXIT_FAILED
        if debug:
            traceback.print_exc()
        code, line = known
        print(f"refinery: {line}", file=sys.stderr)
        return code
