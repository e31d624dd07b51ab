#!/usr/bin/env bash
# scripts/wait-ingest.sh CLUSTER_ID SECONDS: wait until the collectors have drained the queues (no
# batch left in the etcd queue nor in the Redis topics) and the API reports GPUs for the cluster,
# then print the cluster record.
set -euo pipefail
cluster=${1:-my-cluster}
seconds=${2:-120}
API_URL=${API_URL:-http://127.0.0.1:${PORT:-8080}}
ETCD_PORT=${ETCD_PORT:-2379}
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_TOPICS=${REDIS_TOPICS:-telemetry}

etcd_items() {
  ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$ETCD_PORT" get --prefix /telemetry/queue/ --keys-only 2>/dev/null |
    grep -c '/items/' || true
}
redis_items() {
  local total=0 topic n
  for topic in ${REDIS_TOPICS//,/ }; do
    n=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" hlen "$topic:items" 2>/dev/null || echo 0)
    total=$((total + ${n:-0}))
  done
  echo "$total"
}
gpus() {
  curl -fsS --max-time 3 "$API_URL/api/v1/clusters/$cluster" 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{try{console.log(JSON.parse(s).metadata.total_gpus)}catch{console.log(0)}})'
}

deadline=$((SECONDS + seconds))
while :; do
  e=$(etcd_items)
  r=$(redis_items)
  g=$(gpus)
  if [ "${e:-0}" = 0 ] && [ "${r:-0}" = 0 ] && [ "${g:-0}" -gt 0 ]; then break; fi
  if [ $SECONDS -ge $deadline ]; then
    echo "wait-ingest: not drained within ${seconds}s (etcd queue items $e, Redis items $r, GPUs $g)" >&2
    exit 1
  fi
  sleep 0.5
done
echo "wait-ingest: queues drained; GET /api/v1/clusters/$cluster:"
curl -fsS "$API_URL/api/v1/clusters/$cluster"
echo
