"""What the CLI shows by default: refinery's own lines, and warnings a user can act on.

Libraries refinery runs on print notices that need no action: megatron-core warns eleven times per
export that TransformerEngine and Apex are absent (they are optional: the local implementations are
what a CPU machine uses), and Ray announces token authentication, which refinery turns on for its
embedded cluster on purpose. `--verbose` shows them all, with INFO logs of every library.
"""

from __future__ import annotations

import logging
import os
import warnings

# Notices that are expected on a correct installation, by the text they start with.
# megatron-core's notices on a machine without its optional CUDA packages: expected here, not actionable.
_EXPECTED_WARNINGS = ("Transformer Engine and Apex are not installed", "Apex is not installed",
                      "full scope is deprecated")
_RAY_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"
_RAY_TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"


class _DropNotice(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def configure_output(verbose: bool) -> None:
    """Set up logging and warnings for one CLI process (and the Ray workers it starts locally)."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    if verbose:
        return
    for text in _EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=text)
    # Ray workers of an embedded cluster inherit this process's environment: the same filter reaches
    # the warnings megatron-core prints when an actor imports it.
    extra = ",".join(f"ignore:{text}" for text in _EXPECTED_WARNINGS)
    current = os.environ.get("PYTHONWARNINGS")
    if not current or extra not in current:
        os.environ["PYTHONWARNINGS"] = f"{current},{extra}" if current else extra
    token_logger = logging.getLogger(_RAY_TOKEN_LOGGER)
    if not any(isinstance(f, _DropNotice) for f in token_logger.filters):
        token_logger.addFilter(_DropNotice(_RAY_TOKEN_NOTICE))
