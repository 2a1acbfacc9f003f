# Source this file to use memory_node by hand: `source env.sh` (after `make setup`).
# It activates the venv (ROS 2 Jazzy wheels + Python dependencies) and the colcon install.
_mn_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
if [ ! -f "$_mn_root/install/local_setup.bash" ]; then
  echo "memory_node: not set up yet; run 'make setup' in $_mn_root first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_mn_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_mn_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# shellcheck disable=SC1091
. "$_mn_root/install/local_setup.bash"
# The checkout's sources come first, so what runs is what you edit (install/ holds the
# generated interfaces, the console scripts and the share files).
export PYTHONPATH="$_mn_root:$_mn_root/sim${PYTHONPATH:+:$PYTHONPATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# No model hub is reachable: models load from packaged files or local paths only.
# Large images between processes: a 32 MiB shared-memory segment (the default 512 KiB loses
# best-effort camera frames). Kept when you chose your own Fast DDS profile; set the variable
# to '' to keep Fast DDS's defaults.
if [ -z "${FASTRTPS_DEFAULT_PROFILES_FILE+x}" ] && [ -z "${FASTDDS_DEFAULT_PROFILES_FILE+x}" ]; then
  export FASTRTPS_DEFAULT_PROFILES_FILE="$_mn_root/config/fastdds_large_data.xml"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# OpenMP threads sleep when idle: with the default (spinning) policy a 2-thread policy step on a
# busy 2-core machine took 2.3 s against 0.5 s (bench_policy_floor). Kept when you set your own.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export PATH="$_mn_root/install/memory_node/lib/memory_node:$PATH"
unset _mn_root
