#!/usr/bin/env bash
# make health-nexus: is every component of the running pipeline healthy? Works against the local
# run directory and against docker-compose.nexus.yml alike (same host ports); uses the host's
# etcdctl / redis-cli / pg_isready, or `docker exec` into the compose containers when they are absent.
# Exit status 0 only when every check passes.
set -uo pipefail

API_URL=${API_URL:-http://127.0.0.1:${PORT:-8080}}
ETCD_PORT=${ETCD_PORT:-2379}
REDIS_PORT=${REDIS_PORT:-6379}
PG_PORT=${PG_PORT:-5433}
DB_USER=${DB_USER:-postgres}
DB_NAME=${DB_NAME:-telemetry}
# Set SKIP_REDIS=1 for a deployment without Redis.
SKIP_REDIS=${SKIP_REDIS:-0}

failures=0
pass() { printf '  ok    %-34s %s\n' "$1" "$2"; }
fail() {
  printf '  FAIL  %-34s %s\n' "$1" "$2"
  failures=$((failures + 1))
}

# Run a client tool on the host, or inside the compose container when the host lacks it.
tool() {
  local container=$1 bin=$2
  shift 2
  if command -v "$bin" >/dev/null 2>&1; then
    "$bin" "$@"
  elif command -v docker >/dev/null 2>&1 && docker inspect "$container" >/dev/null 2>&1; then
    docker exec "$container" "$bin" "$@"
  else
    echo "$bin not installed and no $container container" >&2
    return 127
  fi
}

echo "nexus-telemetry health ($API_URL)"

body=$(curl -fsS --max-time 5 "$API_URL/health" 2>&1) && pass "API /health" "$body" || fail "API /health" "$body"
body=$(curl -sS --max-time 10 -w ' HTTP %{http_code}' "$API_URL/ready" 2>&1)
case "$body" in
*'HTTP 200') pass "API /ready" "${body% HTTP 200}" ;;
*) fail "API /ready" "$body" ;;
esac

if out=$(ETCDCTL_API=3 tool telemetry-etcd etcdctl --endpoints="127.0.0.1:$ETCD_PORT" --command-timeout=5s endpoint health 2>&1); then
  pass "etcd 127.0.0.1:$ETCD_PORT" "$(echo "$out" | head -n 1)"
else
  fail "etcd 127.0.0.1:$ETCD_PORT" "$(echo "$out" | tail -n 1)"
fi

if out=$(tool telemetry-postgres pg_isready -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" -d "$DB_NAME" 2>&1); then
  pass "PostgreSQL 127.0.0.1:$PG_PORT" "$out"
else
  # Inside the container PostgreSQL listens on 5432.
  if out2=$(docker exec telemetry-postgres pg_isready -U "$DB_USER" -d "$DB_NAME" 2>/dev/null); then
    pass "PostgreSQL (telemetry-postgres)" "$out2"
  else
    fail "PostgreSQL 127.0.0.1:$PG_PORT" "$out"
  fi
fi

if [ "$SKIP_REDIS" != 1 ]; then
  if out=$(tool telemetry-redis redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>&1) && [ "$out" = PONG ]; then
    backlog=$(tool telemetry-redis redis-cli -h 127.0.0.1 -p "$REDIS_PORT" llen telemetry 2>/dev/null)
    pass "Redis 127.0.0.1:$REDIS_PORT" "PONG (llen telemetry = ${backlog:-?})"
  else
    fail "Redis 127.0.0.1:$REDIS_PORT" "$out"
  fi
fi

if [ $failures -gt 0 ]; then
  echo "health: $failures check(s) failed"
  exit 1
fi
echo "health: all checks passed"
