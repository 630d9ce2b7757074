"""Quiet by default: the notices megatron-core and Ray print on a correct installation are hidden (in the
CLI process and in the worker processes it starts), and `--verbose` shows them."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = """
import logging, subprocess, sys, warnings
from jobs.console import configure_output
configure_output(verbose=sys.argv[1] == "verbose")
warnings.warn("Transformer Engine and Apex are not installed. Falling back to Torch optimizers.", UserWarning)
logging.getLogger("ray._private.authentication.authentication_token_setup").warning(
    "Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out.")
logging.getLogger("ray").warning("a real warning")
# a worker process started from here, as Ray starts its workers on the embedded cluster
subprocess.run([sys.executable, "-c", "import warnings; warnings.warn('Transformer Engine and Apex are not "
                "installed. Falling back to local implementations', UserWarning)"], check=True)
"""


def run(mode: str) -> str:
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("PYTHONWARNINGS", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, cwd=REPO,
                          check=True)
    return done.stderr


@pytest.mark.parametrize("mode, shown", [("quiet", 0), ("verbose", 2)])
def test_expected_notices_are_hidden_unless_verbose(mode, shown):
    err = run(mode)
    assert err.count("Transformer Engine and Apex") == shown, err
    assert ("Token authentication is enabled" in err) == bool(shown), err
    assert "a real warning" in err  # warnings worth acting on are never hidden
