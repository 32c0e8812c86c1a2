#!/usr/bin/env bash
# Start (or stop) the servers the scale-out tests run against, on 127.0.0.1 only:
#   PostgreSQL (Debian's package) on port 55432, a private cluster under .services/
#   an S3-compatible server (moto's server mode) on port 55433
# Prints the environment the tests read; `eval "$(scripts/services.sh start)"` sets it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD/.services"
PG_PORT=55432
S3_PORT=55433
VENV_BIN="$PWD/.venv/bin"

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] || { echo "PostgreSQL is not installed: apt-get install -y postgresql" >&2; exit 1; }
  echo "$dir"
}

start_pg() {
  local bin; bin=$(pg_bin)
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    ensure_db "$bin"  # a server is already up on the port (another checkout's): reuse it
    return
  fi
  mkdir -p "$ROOT"
  chmod 777 "$ROOT"
  if [ ! -f "$ROOT/pg/PG_VERSION" ]; then
    mkdir -p "$ROOT/pg" && chown postgres "$ROOT/pg" 2>/dev/null || true
    run_as_pg "$bin/initdb -D $ROOT/pg -U postgres --auth=trust -E UTF8" > "$ROOT/pg-init.log" 2>&1
  fi
  if ! run_as_pg "$bin/pg_ctl -D $ROOT/pg status" > /dev/null 2>&1; then
    run_as_pg "$bin/pg_ctl -D $ROOT/pg -l $ROOT/pg.log -w -o '-p $PG_PORT -k $ROOT -c listen_addresses=127.0.0.1 -c fsync=off' start" > /dev/null
  fi
  ensure_db "$bin"
}

ensure_db() {
  "$1/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='stepkit_test'" | grep -q 1 \
    || "$1/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres stepkit_test
}

run_as_pg() {
  if [ "$(id -u)" = "0" ]; then su postgres -s /bin/bash -c "$1"; else bash -c "$1"; fi
}

start_s3() {
  mkdir -p "$ROOT"
  if ! curl -s "http://127.0.0.1:$S3_PORT/moto-api/" > /dev/null 2>&1; then
    nohup "$VENV_BIN/moto_server" -H 127.0.0.1 -p "$S3_PORT" > "$ROOT/s3.log" 2>&1 &
    echo $! > "$ROOT/s3.pid"
    for _ in $(seq 1 50); do
      curl -s "http://127.0.0.1:$S3_PORT/moto-api/" > /dev/null 2>&1 && break
      sleep 0.2
    done
  fi
}

case "${1:-start}" in
  start)
    start_pg
    start_s3
    echo "export STEPKIT_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PG_PORT/stepkit_test"
    echo "export STEPKIT_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
    ;;
  stop)
    bin=$(pg_bin)
    run_as_pg "$bin/pg_ctl -D $ROOT/pg stop -m fast" > /dev/null 2>&1 || true
    [ -f "$ROOT/s3.pid" ] && kill "$(cat "$ROOT/s3.pid")" 2>/dev/null || true
    rm -f "$ROOT/s3.pid"
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
