#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12 / Python 3.11 machine for memory_node:
#   1. apt packages the Python wheels need (libusb for open3d, cmake and compilers for colcon),
#   2. a .venv with the pinned ROS 2 Jazzy wheels and Python dependencies,
#   3. the fix of the hard-coded manylinux paths in the ROS wheels' CMake files,
#   4. colcon build of memory_interfaces and memory_node into build/ and install/.
# Each step is skipped when a stamp (keyed on the files it depends on) says it is done, so a
# second run takes seconds and a changed requirement file re-installs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMPS="$ROOT/.stamps"
mkdir -p "$STAMPS"
t0=$(date +%s)

say() { printf '[setup] %s\n' "$*"; }

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# --- 1. apt packages --------------------------------------------------------------------------
# postgresql: the server of the fleet memory (tools/postgres.sh runs a private one, no service)
APT_PKGS=(libusb-1.0-0 libgomp1 cmake g++ make python3-venv python3-dev postgresql)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing apt packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- 2. venv and pinned Python dependencies -----------------------------------------------------
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
req_hash=$(hash_of requirements/ros.txt requirements/python.txt requirements/constraints.txt)
if [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$req_hash" ]; then
  say "installing pinned dependencies (first run: a few minutes)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip "setuptools<80" wheel
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -c requirements/constraints.txt -r requirements/ros.txt -r requirements/python.txt
  echo "$req_hash" > "$STAMPS/pip"
  rm -f "$STAMPS/cmake_fix" "$STAMPS/colcon"
fi

# --- 3. CMake path fix (wheels hard-code /opt/python/cp311-cp311) -----------------------------
if [ ! -f "$STAMPS/cmake_fix" ]; then
  py_inc=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  np_inc=$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')
  files=$(grep -rl '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null || true)
  n=0
  for f in $files; do
    sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${np_inc}#g" \
           -e "s#/opt/python/cp311-cp311/include/python3.11#${py_inc}#g" "$f"
    n=$((n + 1))
  done
  say "rewrote manylinux build paths in $n CMake files"
  touch "$STAMPS/cmake_fix"
fi

# --- 4. colcon build --------------------------------------------------------------------------
src_files() {
  local paths=()
  for p in memory_interfaces memory_node sim launch config resource setup.py setup.cfg package.xml; do
    [ -e "$p" ] && paths+=("$p")
  done
  find "${paths[@]}" -type f -not -path '*/__pycache__/*' \( -name '*.msg' -o -name '*.srv' \
    -o -name '*.txt' -o -name '*.xml' -o -name '*.py' -o -name '*.yaml' -o -name '*.cfg' \
    -o -path 'resource/*' \) | sort
}
src_hash=$(src_files | xargs cat | sha256sum | cut -c1-16)
if [ "$(cat "$STAMPS/colcon" 2>/dev/null)" != "$src_hash" ] || [ ! -f install/local_setup.bash ]; then
  say "colcon build (memory_interfaces, memory_node)"
  (
    export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    mkdir -p log
    colcon --log-base log build --base-paths . memory_interfaces --build-base build --install-base install \
      --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF \
      --event-handlers console_cohesion- status- summary+ >log/colcon_build.txt 2>&1 \
      || { cat log/colcon_build.txt; exit 1; }
  )
  echo "$src_hash" > "$STAMPS/colcon"
fi

say "ready in $(( $(date +%s) - t0 )) s"
