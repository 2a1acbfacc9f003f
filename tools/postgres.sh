#!/usr/bin/env bash
# A private PostgreSQL server for the fleet memory: no system service, data in a project folder.
#
#   tools/postgres.sh start    initdb on first use, then start on 127.0.0.1:PORT (idempotent)
#   tools/postgres.sh stop     fast shutdown (idempotent)
#   tools/postgres.sh status   "running <url>" (exit 0) or "stopped" (exit 3)
#   tools/postgres.sh url      the connection URL, postgresql://memory:PASSWORD@127.0.0.1:PORT/memory
#
# Environment:
#   MEMORY_PG_DIR    folder of the cluster (default: <repo>/.pg, gitignored)
#   MEMORY_PG_PORT   TCP port fixed at initdb (default: 55432 + a number derived from the folder)
#   PG_BIN           folder of initdb/pg_ctl (default: the newest /usr/lib/postgresql/*/bin)
#
# The server listens on 127.0.0.1 only, with its unix socket inside MEMORY_PG_DIR; TCP logins
# need the password (scram-sha-256) written at initdb to MEMORY_PG_DIR/password. PostgreSQL
# refuses to run as root: as root the cluster belongs to the 'postgres' user of Debian's package
# (or a dedicated 'memory_pg' user created here), and when that user cannot reach the folder the
# cluster is put under /tmp instead (said on stderr).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${MEMORY_PG_DIR:-$ROOT/.pg}"
say() { printf '[postgres] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

find_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    [ -x "$PG_BIN/pg_ctl" ] || die "PG_BIN=$PG_BIN has no pg_ctl"
    echo "$PG_BIN"
    return
  fi
  local best
  best=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$best" ] && [ -x "$best/pg_ctl" ] && [ -x "$best/initdb" ] || die \
    "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): run 'make setup' (it apt-installs postgresql)"
  echo "$best"
}

# --- who runs the server ---------------------------------------------------------------------
RUNAS=""
if [ "$(id -u)" -eq 0 ]; then
  if id postgres >/dev/null 2>&1; then
    RUNAS=postgres
  else
    id memory_pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin memory_pg
    RUNAS=memory_pg
  fi
fi
as_owner() {
  if [ -n "$RUNAS" ]; then runuser -u "$RUNAS" -- "$@"; else "$@"; fi
}

if [ -n "$RUNAS" ]; then
  mkdir -p "$DIR"
  if ! runuser -u "$RUNAS" -- test -x "$DIR"; then
    alt="${TMPDIR:-/tmp}/memory_node-pg-$(printf '%s' "$DIR" | sha256sum | cut -c1-12)"
    say "user $RUNAS cannot reach $DIR; keeping the cluster in $alt"
    DIR="$alt"
    mkdir -p "$DIR"
  fi
  chown "$RUNAS" "$DIR"
fi
mkdir -p "$DIR"
chmod 700 "$DIR"
DATA="$DIR/data"
SOCK="$DIR/run"
LOG="$DIR/server.log"

port_of() {
  if [ -f "$DIR/port" ]; then cat "$DIR/port"; return; fi
  if [ -n "${MEMORY_PG_PORT:-}" ]; then echo "$MEMORY_PG_PORT"; return; fi
  echo $((55432 + $(printf '%s' "$DIR" | cksum | cut -d' ' -f1) % 1000))
}

url() {
  [ -f "$DIR/password" ] || die "no cluster in $DIR yet: run '$0 start'"
  echo "postgresql://memory:$(cat "$DIR/password")@127.0.0.1:$(cat "$DIR/port")/memory"
}

init_cluster() {
  local bin="$1" port pw
  port=$(port_of)
  pw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
  say "initdb in $DATA (port $port)"
  rm -rf "$DATA"
  printf '%s\n' "$pw" >"$DIR/pwfile"
  [ -z "$RUNAS" ] || chown "$RUNAS" "$DIR/pwfile"
  as_owner "$bin/initdb" -D "$DATA" -U memory --pwfile="$DIR/pwfile" -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
  rm -f "$DIR/pwfile"
  cat >>"$DATA/postgresql.conf" <<EOF
# memory_node (tools/postgres.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$SOCK'
max_connections = 64
shared_buffers = 128MB
fsync = on
EOF
  echo "$port" >"$DIR/port"
  echo "$pw" >"$DIR/password"
  chmod 600 "$DIR/password"
}

running() {
  local bin="$1"
  [ -f "$DATA/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
  local bin
  bin=$(find_bin)
  [ -f "$DATA/PG_VERSION" ] || init_cluster "$bin"
  if running "$bin"; then
    say "already running: $(url | sed 's/:[^:@]*@/:***@/')"
    return
  fi
  mkdir -p "$SOCK"
  [ -z "$RUNAS" ] || chown "$RUNAS" "$SOCK" "$DIR"
  touch "$LOG"
  [ -z "$RUNAS" ] || chown "$RUNAS" "$LOG"
  as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null \
    || { tail -n 20 "$LOG" >&2; die "the server did not start (log: $LOG)"; }
  if ! as_owner "$bin/psql" -h "$SOCK" -p "$(cat "$DIR/port")" -U memory -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'memory'" | grep -q 1; then
    as_owner "$bin/createdb" -h "$SOCK" -p "$(cat "$DIR/port")" -U memory memory
  fi
  say "running on 127.0.0.1:$(cat "$DIR/port"), data in $DATA"
}

stop() {
  local bin
  bin=$(find_bin)
  if running "$bin"; then
    as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
    say "stopped"
  else
    say "not running"
  fi
}

status() {
  local bin
  bin=$(find_bin)
  if running "$bin"; then
    echo "running $(url)"
  else
    echo "stopped"
    exit 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) url ;;
  *) echo "usage: $0 {start|stop|status|url}" >&2; exit 2 ;;
esac
