"""Starting Ray for a command: join the cluster at `address`, or start the embedded local one.

Corpus builds, Megatron exports and training launches all start Ray this way, so the code lives in
the one package both halves import. What the embedded cluster (no address) gets, and why:

- `address="local"`: always a new cluster; a bare `ray.init()` would join any `ray start` cluster
  that happens to run on this machine.
- Token authentication, always. Ray's servers (GCS, raylet, agents) listen on every interface of
  the machine; the node address only names the node. With a token, a request that does not carry
  the one in `~/.ray/auth_token` (Ray creates it on first use) is refused. Ray 2.60 enables token
  mode for a new local cluster unless `RAY_AUTH_MODE` says otherwise, and reads the mode only from
  the environment, so the mode is set there, always: an operator's `RAY_AUTH_MODE=disabled`, meant
  for some other cluster, does not open this one. Joined clusters keep their own settings.
- No dashboard (no Jobs API, no state API to reach).
- A watchdog process (schemas/ray_watchdog.py) that kills what is left of the cluster when the
  driver dies, however it dies: Ray's agents otherwise outlive a SIGKILLed driver.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from schemas import ray_watchdog


def start_ray(address: str | None, *, num_cpus: int, **options: Any) -> None:
    """`ray.init` for this process: join `address`, or (None) start the embedded local cluster with
    `num_cpus` CPUs. `options` go to `ray.init` either way (logging_level, runtime_env, ...)."""
    import ray

    options.setdefault("logging_level", "WARNING")
    if address:
        ray.init(address=address, **options)
        return
    # Ray's own switch: sets RAY_AUTH_MODE=token for this process and its children, and reloads the
    # config Ray has cached from the environment (setting the variable alone does not).
    from ray._private.authentication.authentication_token_setup import _enable_token_auth

    _enable_token_auth()
    context = ray.init(address="local", include_dashboard=False, num_cpus=num_cpus,
                       _node_ip_address="127.0.0.1", **options)
    start_watchdog(context.address_info["session_dir"])


def start_watchdog(session_dir: str) -> None:
    """Start the watchdog of the cluster whose session folder is `session_dir`.

    Its stdin is a pipe whose write end this process keeps open, as a bare descriptor, until it
    exits: no Python object owns it, so no garbage collection can close it early (that would read
    as the driver's death). The descriptor is not inheritable, so processes started later do not
    hold the pipe open after the driver is gone."""
    read_end, write_end = os.pipe()
    try:
        # Own session: neither the terminal's Ctrl-C nor a kill of the driver's process group stops
        # it before it has done its work; it exits once the cluster is gone.
        subprocess.Popen([sys.executable, "-I", ray_watchdog.__file__, session_dir], stdin=read_end,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    finally:
        os.close(read_end)
    # write_end stays open until this process exits: see above.
