#!/usr/bin/env bash
# make test-graphql: the guide's GraphQL check (an introspection query listing the schema's types),
# then the configured cluster through GraphQL. Fails unless both answer data without errors.
# Introspection is on by default only in embedded mode; the API role needs GRAPHQL_INTROSPECTION=true
# (the Makefile's local processes and docker-compose.nexus.yml set it).
set -euo pipefail
API_URL=${API_URL:-http://127.0.0.1:${PORT:-8080}}
CLUSTER_ID=${CLUSTER_ID:-my-cluster}

check() {
  local what=$1 body=$2 answer
  echo "+ curl -X POST $API_URL/graphql -H 'Content-Type: application/json' -d '$body'"
  answer=$(curl -sS --max-time 10 -X POST "$API_URL/graphql" -H "Content-Type: application/json" -d "$body" -w '\n%{http_code}')
  local status=${answer##*$'\n'}
  answer=${answer%$'\n'*}
  echo "${answer:0:600}$([ ${#answer} -gt 600 ] && echo ...)"
  if [ "$status" != 200 ] || ! printf '%s' "$answer" | node -e '
    let s = ""; process.stdin.on("data", (c) => (s += c)).on("end", () => {
      const r = JSON.parse(s);
      process.exit(r.data && !r.errors ? 0 : 1);
    });'; then
    echo "test-graphql: $what failed (HTTP $status)" >&2
    exit 1
  fi
  echo "test-graphql: $what ok"
}

check "schema introspection" '{"query": "{ __schema { types { name } } }"}'
check "cluster query" "{\"query\": \"{ cluster(id: \\\"$CLUSTER_ID\\\") { id name totalHosts totalGPUs activeGPUs } }\"}"
