#!/usr/bin/env bash
# Local runtime behind the Makefile when Docker is not used: etcd, PostgreSQL and Redis from the
# installed Debian binaries, and the nexus-telemetry processes from dist/, each with a pid file and
# a log under the run directory (.run/ by default, gitignored):
#
#   .run/pids/<name>.pid   etcd, redis, collector-1, collector-2, api, streamer, ...
#   .run/logs/<name>.log   one log per process (postgres.log links to .run/postgres/postgres.log)
#   .run/etcd/             etcd data          (client 127.0.0.1:2379, peer 127.0.0.1:2380)
#   .run/postgres/         PostgreSQL cluster (127.0.0.1:5433; initdb as user postgres when root)
#   .run/redis/            Redis AOF          (127.0.0.1:6379; appendonly yes, appendfsync always)
#
# Usage: scripts/nexus-local.sh COMMAND [ARGS]
#   etcd | postgres | redis        start that service if it is not running (idempotent)
#   spawn NAME PATTERN ARGS...     start `nexus-telemetry ARGS...` detached as NAME; wait for PATTERN in its log
#   run NAME ARGS...               run `nexus-telemetry ARGS...` in the foreground as NAME (log also to its file)
#   stop                           stop every process of the run directory; fails if one is left
#   status                         what runs, with pids
#   logs PREFIX [follow]           the logs of NAME* (collector, api, ...)
#   env                            the application environment used for the processes
# Everything is configured by the environment variables below (the Makefile passes them through).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${RUN_DIR:-$ROOT/.run}
PIDS=$RUN_DIR/pids
LOGS=$RUN_DIR/logs
ETCD_PORT=${ETCD_PORT:-2379}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-2380}
PG_PORT=${PG_PORT:-5433}
REDIS_PORT=${REDIS_PORT:-6379}
API_PORT=${API_PORT:-${PORT:-8080}}
CLI_JS=$ROOT/dist/cli/main.js
# As `npm start` and the image run it (docs/operations.md, "Node.js flags").
NODE_FLAGS=(--max-semi-space-size=16 --no-allocation-site-pretenuring --heap-growing-percent=20)

# Application settings (docs/configuration.md), defaulting to the guide's local development values.
export CLUSTER_ID=${CLUSTER_ID:-my-cluster}
export ETCD_ENDPOINTS=${ETCD_ENDPOINTS:-127.0.0.1:$ETCD_PORT}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}
export REDIS_TOPICS=${REDIS_TOPICS:-telemetry}
export DB_HOST=${DB_HOST:-127.0.0.1}
export DB_PORT=${DB_PORT:-$PG_PORT}
export DB_USER=${DB_USER:-postgres}
export DB_PASSWORD=${DB_PASSWORD:-postgres}
export DB_NAME=${DB_NAME:-telemetry}
export DB_SSLMODE=${DB_SSLMODE:-disable}
export LOG_LEVEL=${LOG_LEVEL:-info}
# Loopback: the API has no authentication here (a non-loopback HOST needs AUTH or INSECURE_NO_AUTH=true).
export HOST=${HOST:-127.0.0.1}
export PORT=$API_PORT

log() { printf 'nexus-local: %s\n' "$*"; }
die() {
  printf 'nexus-local: error: %s\n' "$*" >&2
  exit 1
}

mkdir -p "$PIDS" "$LOGS"

# PostgreSQL server binaries: NEXUS_PG_BIN_DIR, else the newest /usr/lib/postgresql/N/bin.
pg_bin_dir() {
  if [ -n "${NEXUS_PG_BIN_DIR:-}" ]; then
    echo "$NEXUS_PG_BIN_DIR"
    return
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$dir" ] || die "PostgreSQL server binaries not found: apt-get install postgresql (or set NEXUS_PG_BIN_DIR)"
  echo "$dir"
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: apt-get install $2"
}

# Whether pid file $1 names a live process whose command line contains $2.
alive() {
  local file=$1 marker=$2 pid
  [ -f "$file" ] || return 1
  pid=$(cat "$file" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$marker"
}

port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Wait up to $2 seconds for command "$3..." to succeed.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.25
  done
  log "$what is up"
}

etcd_healthy() {
  curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'
}

start_etcd() {
  need etcd etcd-server
  if alive "$PIDS/etcd.pid" etcd; then
    log "etcd already running (pid $(cat "$PIDS/etcd.pid")) on 127.0.0.1:$ETCD_PORT"
    return
  fi
  port_busy "$ETCD_PORT" && die "port $ETCD_PORT is in use by a process not started from $RUN_DIR"
  mkdir -p "$RUN_DIR/etcd"
  # etcd reads ETCD_* variables as flags: start it without the application's ETCD_ENDPOINTS.
  env -u ETCD_ENDPOINTS setsid nohup etcd \
    --name nexus-local \
    --data-dir "$RUN_DIR/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "nexus-local=http://127.0.0.1:$ETCD_PEER_PORT" \
    --auto-compaction-mode revision \
    --auto-compaction-retention 10000 \
    --quota-backend-bytes 4294967296 \
    --logger zap --log-level warn \
    >>"$LOGS/etcd.log" 2>&1 </dev/null &
  echo $! >"$PIDS/etcd.pid"
  wait_for "etcd (pid $!, 127.0.0.1:$ETCD_PORT)" 30 etcd_healthy || {
    tail -n 20 "$LOGS/etcd.log" >&2
    die "etcd did not become healthy; log: $LOGS/etcd.log"
  }
}

# Run a PostgreSQL binary as the postgres user when we are root (PostgreSQL refuses to run as root).
as_pg() {
  local bin
  bin="$(pg_bin_dir)/$1"
  shift
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$bin" "$@"
  else
    "$bin" "$@"
  fi
}

start_postgres() {
  local dir=$RUN_DIR/postgres data=$RUN_DIR/postgres/data
  pg_bin_dir >/dev/null
  if [ -f "$data/postmaster.pid" ] && as_pg pg_ctl status -D "$data" >/dev/null 2>&1; then
    log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
    return
  fi
  port_busy "$PG_PORT" && die "port $PG_PORT is in use by a process not started from $RUN_DIR"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    id -u postgres >/dev/null 2>&1 || die "running as root but there is no postgres user (apt-get install postgresql)"
    chown postgres:postgres "$dir"
    runuser -u postgres -- test -x "$dir" ||
      die "user postgres cannot reach $dir: make its parent directories searchable (chmod o+x)"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initdb in $data (superuser $DB_USER)"
    local pwfile=$dir/pwfile
    printf '%s\n' "$DB_PASSWORD" >"$pwfile"
    chmod 600 "$pwfile"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$pwfile"
    as_pg initdb -D "$data" -U "$DB_USER" --pwfile "$pwfile" --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      die "initdb failed"
    }
    rm -f "$pwfile"
  fi
  ln -sf "$dir/postgres.log" "$LOGS/postgres.log"
  as_pg pg_ctl start -D "$data" -w -t 60 -l "$dir/postgres.log" \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=200" \
    >/dev/null || {
    tail -n 20 "$dir/postgres.log" >&2
    die "PostgreSQL did not start; log: $dir/postgres.log"
  }
  log "PostgreSQL is up (127.0.0.1:$PG_PORT, data $data)"
  local psql="$(pg_bin_dir)/psql"
  [ -x "$psql" ] || psql=psql
  if ! as_pg psql -h "$dir" -p "$PG_PORT" -U "$DB_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
    as_pg createdb -h "$dir" -p "$PG_PORT" -U "$DB_USER" "$DB_NAME"
    log "created database $DB_NAME"
  fi
}

redis_ping() {
  [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

start_redis() {
  need redis-server redis-server
  need redis-cli redis-tools
  if alive "$PIDS/redis.pid" redis-server; then
    log "Redis already running (pid $(cat "$PIDS/redis.pid")) on 127.0.0.1:$REDIS_PORT"
    return
  fi
  port_busy "$REDIS_PORT" && die "port $REDIS_PORT is in use by a process not started from $RUN_DIR"
  mkdir -p "$RUN_DIR/redis"
  # The queue's durability requirements (docs/redis.md): every acknowledged write on disk, no eviction.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$RUN_DIR/redis" \
    --appendonly yes --appendfsync always --save '' --maxmemory-policy noeviction \
    --daemonize yes --pidfile "$PIDS/redis.pid" --logfile "$LOGS/redis.log"
  wait_for "Redis (127.0.0.1:$REDIS_PORT, appendonly yes, appendfsync always)" 20 redis_ping ||
    die "Redis did not answer PING; log: $LOGS/redis.log"
}

need_build() {
  [ -f "$CLI_JS" ] || die "$CLI_JS is missing: run make build-nexus first"
}

# spawn NAME PATTERN ARGS...: a detached nexus-telemetry process; waits for PATTERN in its new output.
spawn() {
  local name=$1 pattern=$2
  shift 2
  need_build
  if alive "$PIDS/$name.pid" "$CLI_JS"; then
    log "$name already running (pid $(cat "$PIDS/$name.pid"))"
    return
  fi
  local logfile=$LOGS/$name.log
  touch "$logfile"
  local offset
  offset=$(($(stat -c %s "$logfile") + 1))
  setsid nohup node "${NODE_FLAGS[@]}" "$CLI_JS" "$@" >>"$logfile" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PIDS/$name.pid"
  local deadline=$((SECONDS + ${SPAWN_TIMEOUT:-90}))
  until tail -c +"$offset" "$logfile" | grep -Eq -- "$pattern"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      # It may have printed the line and exited (a streamer) since the last look.
      tail -c +"$offset" "$logfile" | grep -Eq -- "$pattern" && break
      tail -c +"$offset" "$logfile" | tail -n 30 >&2
      rm -f "$PIDS/$name.pid"
      die "$name exited during start-up; log: $logfile"
    fi
    [ $SECONDS -lt $deadline ] || die "$name did not print /$pattern/ in time; log: $logfile"
    sleep 0.25
  done
  log "$name started (pid $pid): $(tail -c +"$offset" "$logfile" | grep -E -- "$pattern" | tail -n 1)"
}

# run NAME ARGS...: foreground; the pid file names this very process (exec keeps the pid).
run_foreground() {
  local name=$1
  shift
  need_build
  if alive "$PIDS/$name.pid" "$CLI_JS"; then
    die "$name is already running (pid $(cat "$PIDS/$name.pid")); pick another name or make stop-nexus"
  fi
  echo $$ >"$PIDS/$name.pid"
  # Output to the terminal and to the log; tee ignores Ctrl-C so it drains the last lines.
  exec > >(
    trap '' INT TERM
    exec tee -a "$LOGS/$name.log"
  ) 2>&1
  exec node "${NODE_FLAGS[@]}" "$CLI_JS" "$@"
}

# Stop the process of pid file $1 (marker $2): SIGTERM, then SIGKILL after $3 seconds.
stop_pidfile() {
  local file=$1 marker=$2 grace=${3:-20} name pid
  name=$(basename "$file" .pid)
  if ! alive "$file" "$marker"; then
    rm -f "$file"
    return
  fi
  pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      log "$name (pid $pid) still running after ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$file"
  log "stopped $name (pid $pid)"
}

stop_all() {
  local file left=()
  # Application processes first (they flush and release), all at once, then the services they use.
  local apps=()
  for file in "$PIDS"/*.pid; do
    [ -e "$file" ] || continue
    case "$(basename "$file")" in
    etcd.pid | redis.pid) ;;
    *)
      apps+=("$file")
      if alive "$file" "$CLI_JS"; then
        log "stopping $(basename "$file" .pid) (pid $(cat "$file"))"
        kill -TERM "$(cat "$file")" 2>/dev/null || true
      fi
      ;;
    esac
  done
  for file in "${apps[@]}"; do stop_pidfile "$file" "$CLI_JS" 30; done
  stop_pidfile "$PIDS/redis.pid" redis-server 20
  if [ -f "$RUN_DIR/postgres/data/postmaster.pid" ]; then
    if as_pg pg_ctl stop -D "$RUN_DIR/postgres/data" -m fast -w -t 60 >/dev/null 2>&1; then
      log "stopped PostgreSQL"
    fi
  fi
  stop_pidfile "$PIDS/etcd.pid" etcd 20
  # Nothing may be left: no pid file, and no PostgreSQL postmaster for the run directory.
  for file in "$PIDS"/*.pid; do
    [ -e "$file" ] && left+=("$(basename "$file" .pid)")
  done
  if [ -f "$RUN_DIR/postgres/data/postmaster.pid" ]; then
    local pgpid
    pgpid=$(head -n 1 "$RUN_DIR/postgres/data/postmaster.pid")
    kill -0 "$pgpid" 2>/dev/null && left+=("postgres(pid $pgpid)")
  fi
  if [ ${#left[@]} -gt 0 ]; then
    die "still running: ${left[*]}"
  fi
  log "all stopped; no process left from $RUN_DIR"
}

status() {
  local file name pid state
  printf '%-14s %-8s %s\n' PROCESS PID STATE
  for file in "$PIDS"/*.pid; do
    [ -e "$file" ] || continue
    name=$(basename "$file" .pid)
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then state=running; else state="exited"; fi
    printf '%-14s %-8s %s\n' "$name" "$pid" "$state"
  done
  if [ -f "$RUN_DIR/postgres/data/postmaster.pid" ]; then
    pid=$(head -n 1 "$RUN_DIR/postgres/data/postmaster.pid")
    if kill -0 "$pid" 2>/dev/null; then state=running; else state="not running"; fi
    printf '%-14s %-8s %s\n' postgres "$pid" "$state"
  fi
}

logs() {
  local prefix=$1 follow=${2:-}
  local files=("$LOGS/$prefix"*.log)
  [ -e "${files[0]}" ] || die "no logs matching $LOGS/$prefix*.log (start it with make first)"
  if [ -n "$follow" ]; then
    exec tail -n 50 -F "${files[@]}"
  fi
  tail -n "${LINES_SHOWN:-100}" "${files[@]}"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
etcd) start_etcd ;;
postgres) start_postgres ;;
redis) start_redis ;;
spawn) spawn "$@" ;;
run) run_foreground "$@" ;;
stop) stop_all ;;
status) status ;;
logs) logs "$@" ;;
env) env | grep -E '^(CLUSTER_ID|ETCD_ENDPOINTS|REDIS_URL|REDIS_TOPICS|DB_[A-Z]+|LOG_LEVEL|HOST|PORT)=' | sed 's/^DB_PASSWORD=.*/DB_PASSWORD=***/' | sort ;;
*)
  sed -n '2,22p' "$0"
  exit 2
  ;;
esac
