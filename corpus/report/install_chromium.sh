#!/usr/bin/env bash
# Installs Debian's headless Chromium and its driver, used by tests/corpus/report to render the run
# report as a browser would (`refinery report` itself needs no browser). Idempotent; needs root or sudo.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-dejavu-core: a page with text renders the same on a machine without any other fonts.
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
chromium --version
