"""One command of a pipeline step in a child process: its output shown and kept, its Ctrl-C waited for.

- Output: the child's stdout and stderr reach this process's stdout and stderr as before, and are also
  appended to the step's log file (`<run>/steps/<step>.log`), framed by a header line (time, what runs)
  and a footer line (time, exit code, seconds), so a failure that scrolled off the terminal, or
  happened in an unattended run, can still be read. Python children run unbuffered (PYTHONUNBUFFERED):
  through a pipe they would otherwise hold their prints back until they exit.
- Signals: the child stays in this process's group, so that whatever stops the group (a terminal's
  Ctrl-C, a scheduler or a test killing the group) stops the command too. The terminal's Ctrl-C reaches
  the child directly; this process only notes it and keeps waiting, so the child stops the way it does
  when run by hand (a build commits the shards in flight) and its exit code and last lines still reach the
  log. A second Ctrl-C is passed on to the child (for a SIGINT sent to this process alone, `kill -INT`,
  that is the first the child gets). SIGTERM and SIGHUP sent to this process are passed on at once.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from typing import IO

PASSED_ON = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CHUNK = 1 << 16
DRAIN_S = 2.0
"""After the child has exited, how long its pipes are still read: enough for what it wrote last, bounded for a
process it left running that keeps writing into them."""


@dataclasses.dataclass(frozen=True)
class CommandResult:
    code: int
    """the child's exit status (negative: killed by that signal)"""
    signal: int | None
    """the first signal this process received while the child ran (SIGINT for Ctrl-C), else None"""
    seconds: float


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_logged(argv: list[str], *, log_path: str, header: str, env: dict | None = None) -> CommandResult:
    """Run `argv`, its stdout/stderr going both to ours and to `log_path` (appended); see the module's notes."""
    child_env = {**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"}
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "ab") as log:
        log.write(f"=== {_now()} {header}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env)
        received: list[int] = []
        restore = _pass_signals_on(proc, received)
        try:
            ends_line = _copy_output(proc, {proc.stdout: sys.stdout, proc.stderr: sys.stderr}, log)
        except BaseException:
            # This process cannot go on (the log's disk is full, ...): a child left running without us would
            # write into a step whose state no one updates.
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
            raise
        finally:
            restore()
        seconds = time.perf_counter() - start
        code = proc.returncode
        why = f", after {signal.Signals(received[0]).name}" if received else ""
        # the footer on a line of its own, also after output that ended without a newline (a progress bar)
        log.write(f"{'' if ends_line else chr(10)}=== {_now()} exit {code}{why} ({seconds:.1f} s)\n".encode())
    return CommandResult(code=code, signal=received[0] if received else None, seconds=seconds)


def _pass_signals_on(proc: subprocess.Popen, received: list[int]):
    """Install the handlers of the module's notes (SIGINT: noted, passed on from the second one; SIGTERM,
    SIGHUP: passed on); returns the function that puts the previous handlers back. Only the main thread
    may set handlers: elsewhere (a caller's worker thread) the child gets only what its group gets."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def pass_on(signum, _frame):
        received.append(signum)
        if signum == signal.SIGINT and received.count(signal.SIGINT) == 1:
            return  # the terminal sent it to the child as well
        try:
            proc.send_signal(signum)
        except ProcessLookupError:  # it has exited already; its exit is being read
            pass

    previous = {sig: signal.signal(sig, pass_on) for sig in PASSED_ON}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return restore


def _copy_output(proc: subprocess.Popen, targets: dict[IO[bytes], IO[str]], log: IO[bytes]) -> bool:
    """Copy the child's pipes to their targets and the log until it exits and its pipes are drained; whether
    what the log got last ended a line.

    One thread and a selector: no reader thread can be left blocked on a pipe that a grandchild (a
    process the command started and left running) still holds open after the child has exited."""
    sel = selectors.DefaultSelector()
    for pipe in targets:
        os.set_blocking(pipe.fileno(), False)
        sel.register(pipe, selectors.EVENT_READ)
    open_pipes = len(targets)
    exited = None  # when the child was seen to have exited
    ends_line = True
    unwritable: set[int] = set()  # targets that failed (`refinery run | head` closed its end): the log goes on
    while open_pipes:
        ready = sel.select(timeout=0 if exited else 0.2)
        if exited and (not ready or time.monotonic() - exited > DRAIN_S):
            break  # drained; what a grandchild may still write is not this command's
        for key, _ in ready:
            try:
                data = os.read(key.fileobj.fileno(), CHUNK)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(key.fileobj)
                open_pipes -= 1
                continue
            log.write(data)
            log.flush()
            ends_line = data.endswith(b"\n")
            target = targets[key.fileobj]
            if id(target) not in unwritable:
                try:
                    _write(target, data)
                except OSError:
                    unwritable.add(id(target))
        if not exited and proc.poll() is not None:
            exited = time.monotonic()
    sel.close()
    proc.wait()
    for pipe in targets:
        pipe.close()
    return ends_line


def _write(stream: IO[str], data: bytes) -> None:
    """Bytes as they came (progress bars' carriage returns, any encoding) where the stream takes bytes."""
    buffer = getattr(stream, "buffer", None)
    sys.stdout.flush()  # what this process printed itself comes first, on either stream
    sys.stderr.flush()
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:
        stream.write(data.decode("utf-8", errors="replace"))
        stream.flush()
