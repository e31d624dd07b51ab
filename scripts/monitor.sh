#!/usr/bin/env bash
# make monitor-etcd / monitor-nexus-data: a one-shot view of etcd and of the data in the pipeline.
#   scripts/monitor.sh etcd    endpoint status (leader, raft index, db size), health, members, alarms
#   scripts/monitor.sh data    the /telemetry/ tree in etcd (clusters, hosts, GPUs, queue), services,
#                              the Redis backlog and what PostgreSQL holds
# Uses the host's etcdctl / redis-cli / psql, or `docker exec` into the compose containers.
set -uo pipefail

ETCD_PORT=${ETCD_PORT:-2379}
REDIS_PORT=${REDIS_PORT:-6379}
PG_PORT=${PG_PORT:-5433}
CLUSTER_ID=${CLUSTER_ID:-my-cluster}
REDIS_TOPICS=${REDIS_TOPICS:-telemetry}
DB_USER=${DB_USER:-postgres}
DB_PASSWORD=${DB_PASSWORD:-postgres}
DB_NAME=${DB_NAME:-telemetry}
export ETCDCTL_API=3

etcdctl_() {
  if command -v etcdctl >/dev/null 2>&1; then
    etcdctl --endpoints="127.0.0.1:$ETCD_PORT" --command-timeout=10s "$@"
  else
    docker exec -e ETCDCTL_API=3 telemetry-etcd etcdctl --endpoints=127.0.0.1:2379 --command-timeout=10s "$@"
  fi
}

redis_() {
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
  else
    docker exec telemetry-redis redis-cli "$@"
  fi
}

psql_() {
  if command -v psql >/dev/null 2>&1; then
    PGPASSWORD=$DB_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" -d "$DB_NAME" -X -v ON_ERROR_STOP=1 "$@"
  else
    docker exec -e PGPASSWORD="$DB_PASSWORD" telemetry-postgres psql -U "$DB_USER" -d "$DB_NAME" -X -v ON_ERROR_STOP=1 "$@"
  fi
}

monitor_etcd() {
  echo "== etcd endpoint status (all members)"
  etcdctl_ endpoint status --cluster -w table || etcdctl_ endpoint status -w table
  echo "== etcd endpoint health"
  etcdctl_ endpoint health --cluster -w table || etcdctl_ endpoint health -w table
  echo "== etcd members"
  etcdctl_ member list -w table
  echo "== etcd alarms (NOSPACE means the quota is full: see docs/operations.md)"
  local alarms
  alarms=$(etcdctl_ alarm list)
  echo "${alarms:-none}"
}

monitor_data() {
  local keys
  echo "== etcd /telemetry/ tree"
  if keys=$(etcdctl_ get --prefix /telemetry/ --keys-only 2>&1); then
    keys=$(printf '%s\n' "$keys" | sed '/^$/d')
    printf '  clusters      %s\n' "$(printf '%s\n' "$keys" | grep -cE '^/telemetry/clusters/[^/]+$')"
    printf '  hosts         %s\n' "$(printf '%s\n' "$keys" | grep -cE '^/telemetry/clusters/[^/]+/hosts/[^/]+$')"
    printf '  GPUs          %s\n' "$(printf '%s\n' "$keys" | grep -cE '^/telemetry/clusters/[^/]+/hosts/[^/]+/gpus/[^/]+$')"
    printf '  queue keys    %s\n' "$(printf '%s\n' "$keys" | grep -c '^/telemetry/queue/')"
    printf '  other keys    %s\n' "$(printf '%s\n' "$keys" | grep -vcE '^/telemetry/(clusters|queue)/')"
    echo "  cluster record /telemetry/clusters/$CLUSTER_ID:"
    etcdctl_ get "/telemetry/clusters/$CLUSTER_ID" --print-value-only | sed 's/^/    /'
    echo "  first host keys:"
    printf '%s\n' "$keys" | grep -E '^/telemetry/clusters/[^/]+/hosts/[^/]+$' | head -n 5 | sed 's/^/    /'
  else
    echo "  etcd not reachable: $keys"
  fi
  echo "== services (/services/)"
  etcdctl_ get --prefix /services/ --keys-only 2>/dev/null | sed '/^$/d; s/^/  /'
  echo "== Redis backlog"
  local topic
  for topic in ${REDIS_TOPICS//,/ }; do
    printf '  llen %-12s %s ready, %s held (ready + claimed)\n' "$topic" \
      "$(redis_ llen "$topic" 2>/dev/null || echo '?')" "$(redis_ hlen "$topic:items" 2>/dev/null || echo '?')"
  done
  echo "== PostgreSQL"
  psql_ -c "SELECT (SELECT count(*) FROM series) AS series,
                   (SELECT count(*) FROM samples) AS samples,
                   (SELECT max(ts) FROM samples) AS newest_sample,
                   (SELECT count(*) FROM batch_ledger) AS batches,
                   (SELECT count(*) FROM dead_letters) AS dead_letters" 2>&1 | sed 's/^/  /'
}

case "${1:-}" in
etcd) monitor_etcd ;;
data) monitor_data ;;
*)
  echo "usage: $0 etcd|data" >&2
  exit 2
  ;;
esac
