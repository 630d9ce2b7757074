#!/bin/sh
# Build KenLM's `lmplz` and `build_binary` from the PyPI kenlm sdist (it carries the C++ sources) and
# install the two binaries into DEST (default: .venv/bin). Idempotent: does nothing when both binaries
# already exist in DEST, and only copies them when an earlier build left them in the cache
# (~/.cache/refinery/kenlm/bin-VERSION), so a recreated virtual environment costs no rebuild.
# Only these two targets are built, with two jobs: the rest of KenLM (filter, interpolate, tests) is
# not needed to train and would double the build time on a 2-core CI machine.
#
# usage: sh corpus/lm/build_kenlm.sh [DEST]
set -eu

DEST="${1:-.venv/bin}"
KENLM_VERSION="0.3.0"
KENLM_SHA256="c4628bb9fb63c8a6f9240035b8b037385cfc404cb72e933cf48878291edac1e8"
PIP="${PIP:-.venv/bin/pip}"
JOBS="${JOBS:-2}"
CACHE="${CACHE:-$HOME/.cache/refinery/kenlm}"

if [ -x "$DEST/lmplz" ] && [ -x "$DEST/build_binary" ]; then
    echo "kenlm: lmplz and build_binary already in $DEST"
    exit 0
fi

# Debian build dependencies: boost (program_options, system, thread, unit_test_framework are all
# required by KenLM's top-level CMakeLists even when only two targets are built), zlib/bz2/lzma for
# compressed ARPA input and output.
PKGS="cmake g++ make libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev"
MISSING=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || MISSING="$MISSING $p"
done
if [ -n "$MISSING" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "kenlm: apt-get install$MISSING"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $MISSING
fi

mkdir -p "$CACHE" "$DEST"
BUILT="$CACHE/bin-$KENLM_VERSION"
if [ -x "$BUILT/lmplz" ] && [ -x "$BUILT/build_binary" ]; then
    install -m 0755 "$BUILT/lmplz" "$BUILT/build_binary" "$DEST/"
    echo "kenlm: installed cached lmplz and build_binary from $BUILT into $DEST"
    exit 0
fi
SDIST="$CACHE/kenlm-$KENLM_VERSION.tar.gz"
if [ ! -f "$SDIST" ]; then
    "$PIP" download -q --no-deps --no-binary kenlm "kenlm==$KENLM_VERSION" -d "$CACHE"
fi
echo "$KENLM_SHA256  $SDIST" | sha256sum -c -

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$SDIST" -C "$WORK"
cmake -S "$WORK/kenlm-$KENLM_VERSION" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DENABLE_PYTHON=OFF >"$WORK/cmake.log" 2>&1 \
    || { cat "$WORK/cmake.log"; exit 1; }
cmake --build "$WORK/build" --target lmplz build_binary -j "$JOBS"
mkdir -p "$BUILT"
install -m 0755 "$WORK/build/bin/lmplz" "$WORK/build/bin/build_binary" "$BUILT/"
install -m 0755 "$BUILT/lmplz" "$BUILT/build_binary" "$DEST/"
echo "kenlm: installed lmplz and build_binary into $DEST"
