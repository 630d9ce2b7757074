"""The embedded Ray cluster's watchdog: when the driver dies, it kills what is left of the cluster.

Ray ties the processes it starts itself (GCS, raylet, monitor, log monitor) to the driver with
PR_SET_PDEATHSIG, so a SIGKILLed driver takes them along. The raylet's children are not tied that
way: the DashboardAgent and the RuntimeEnvAgent poll for the raylet, and when it is gone they first
try to report its death to the GCS, which died with it, and wait out that call's 60-second timeout
(ray/_private/process_watcher.py, ray/_private/utils.py:publish_error_to_driver). So each killed
driver left both agents running for a minute or more, and each rerun added two more
(tests/jobs/test_driver_kill.py checks that nothing outlives the driver now).

This script runs beside the driver (started by schemas/local_ray.py, standard library only, so it
starts fast and stays small). Its stdin is a pipe whose write end only the driver holds, so it reads
EOF the moment the driver is gone, however it died. Meanwhile it keeps a list of the cluster's
processes: those whose command line names the cluster's session folder (GCS, raylet, monitors) and
all their descendants (agents, workers); the agents' command lines no longer name the session once
they have set their process titles, and they are orphans by the time the driver is dead, so the list
is taken while the driver lives. At EOF it SIGKILLs every listed process still running (a cluster
without its driver has nothing left to finish). A process is identified by pid and start time, so a
reused pid is never killed.

    python ray_watchdog.py SESSION_DIR  < pipe
"""

from __future__ import annotations

import os
import select
import signal
import sys

POLL_S = 1.0
"""How often the list of the cluster's processes is refreshed while the driver lives."""


def processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, start time in clock ticks, command line) of every process we can read."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        # the command name (field 2) may hold spaces and parentheses: split after its last ')'
        fields = stat[stat.rindex(b")") + 2:].split()
        if fields[0] == b"Z":  # a zombie holds no memory and cannot be killed
            continue
        table[int(name)] = (int(fields[1]), int(fields[19]), cmdline)
    return table


def cluster_processes(session_dir: str, table: dict[int, tuple[int, int, str]]) -> dict[int, int]:
    """pid -> start time of the processes of the cluster whose session folder is `session_dir`."""
    me = os.getpid()
    inside = session_dir.rstrip("/") + "/"  # its log and socket paths; not a longer name that starts alike
    roots = {pid for pid, (_, _, cmd) in table.items() if inside in cmd and pid != me}
    return {pid: table[pid][1] for pid in roots | descendants(roots, table) if pid != me}


def descendants(roots: set[int], table: dict[int, tuple[int, int, str]]) -> set[int]:
    found: set[int] = set()
    frontier = set(roots)
    while frontier:
        frontier = {pid for pid, (ppid, _, _) in table.items() if ppid in frontier and pid not in found}
        found |= frontier
    return found


def kill_listed(listed: dict[int, int]) -> int:
    """SIGKILL each listed process that still runs with the same start time; returns how many."""
    table = processes()
    killed = 0
    for pid, started in listed.items():
        if pid in table and table[pid][1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def watch(session_dir: str, stdin_fd: int = 0) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the driver; we act once it is gone
    listed: dict[int, int] = {}
    while True:
        table = processes()
        listed = {pid: started for pid, started in listed.items() if table.get(pid, (0, -1))[1] == started}
        listed.update(cluster_processes(session_dir, table))
        ready, _, _ = select.select([stdin_fd], [], [], POLL_S)
        if ready and not os.read(stdin_fd, 4096):
            break
    # The driver is gone. Late children of listed processes (a worker started in the last second)
    # are listed once more before the kill.
    table = processes()
    listed.update({pid: table[pid][1] for pid in descendants(set(listed), table)})
    kill_listed(listed)


if __name__ == "__main__":
    watch(sys.argv[1])
