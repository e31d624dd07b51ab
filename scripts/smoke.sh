#!/usr/bin/env bash
# scripts/smoke.sh: the README's embedded quick start, end to end, on another Node.js line.
#
# Installs Node.js $SMOKE_NODE (default 24, the current LTS) from the npm registry's `node` package
# into a temporary folder (nothing system-wide), compiles src/ with it (tsc run by that node, into a
# temporary dist/, so a shared working tree's dist/ is left alone), starts
#   node --max-semi-space-size=16 --no-allocation-site-pretenuring --heap-growing-percent=20 dist/cli/main.js start --port <free port> --data-dir <tmp>
# on the bundled sample, waits for "ingested ... rows", runs the README's curl commands (cluster,
# hosts, gpus, telemetry, dead-letters, GraphQL) and checks each answers 200 with the expected content,
# then sends SIGTERM and requires exit status 0. Fails loudly (exit 1, "SMOKE FAILED: ...") otherwise.
#
# Settings: SMOKE_NODE (npm `node` package version/range, default 24), SMOKE_NODE_BIN (use this node
# binary instead of installing one), SMOKE_INGEST_TIMEOUT (seconds, default 90), KEEP_SMOKE_DIR=1.
# Needs curl and npm (the registry); used by .ci/run after `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SMOKE_NODE=${SMOKE_NODE:-24}
INGEST_TIMEOUT=${SMOKE_INGEST_TIMEOUT:-90}
started_at=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/nexus-smoke.XXXXXX")
server_pid=

say() { echo "smoke: $*"; }
fail() {
  echo "" >&2
  echo "SMOKE FAILED (node ${node_version:-?}): $*" >&2
  if [ -f "$work/server.log" ]; then
    echo "---- last lines of the server's output ($work/server.log) ----" >&2
    tail -n 40 "$work/server.log" >&2 || true
  fi
  exit 1
}
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  if [ "${KEEP_SMOKE_DIR:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# 1. The node binary.
if [ -n "${SMOKE_NODE_BIN:-}" ]; then
  NODE=$SMOKE_NODE_BIN
else
  say "installing node@$SMOKE_NODE from the npm registry into $work/node ..."
  npm install --prefix "$work/node" --no-audit --no-fund --no-save --loglevel=error "node@$SMOKE_NODE" >"$work/npm-install.log" 2>&1 ||
    { cat "$work/npm-install.log" >&2; fail "npm install node@$SMOKE_NODE failed"; }
  NODE=$work/node/node_modules/node/bin/node
fi
[ -x "$NODE" ] || fail "no node binary at $NODE"
node_version=$("$NODE" --version) || fail "$NODE does not run"
echo "================================================================"
echo "smoke: Node.js $node_version ($NODE)"
echo "================================================================"

# 2. Compile with that node into a private dist/ (next to links to node_modules, sample/ and a copy
#    of package.json, so the built CLI resolves its dependencies, the bundled sample, the built-in
#    alert rules and "type": "module").
app=$work/app
mkdir -p "$app"
cp package.json "$app/package.json"
ln -s "$ROOT/node_modules" "$app/node_modules"
ln -s "$ROOT/sample" "$app/sample"
ln -s "$ROOT/rules" "$app/rules" # the built-in alert rules `start` loads
say "building with node $node_version (tsc -p tsconfig.build.json --outDir $app/dist) ..."
t0=$SECONDS
"$NODE" node_modules/typescript/bin/tsc -p tsconfig.build.json --outDir "$app/dist" --incremental false ||
  fail "the TypeScript build failed on node $node_version"
say "built in $((SECONDS - t0)) s"

# 3. Start the embedded pipeline on a free port with a fresh data directory.
port=$("$NODE" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
base=http://127.0.0.1:$port
say "starting: node --max-semi-space-size=16 --no-allocation-site-pretenuring --heap-growing-percent=20 dist/cli/main.js start --port $port --data-dir $work/data"
(cd "$app" && exec "$NODE" --max-semi-space-size=16 --no-allocation-site-pretenuring --heap-growing-percent=20 dist/cli/main.js start --port "$port" --host 127.0.0.1 --data-dir "$work/data") >"$work/server.log" 2>&1 &
server_pid=$!
deadline=$((SECONDS + INGEST_TIMEOUT))
until grep -qE '^ingested [0-9,]+ rows' "$work/server.log"; do
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited before ingest finished"
  [ $SECONDS -lt $deadline ] || fail "ingest did not finish within ${INGEST_TIMEOUT} s"
  sleep 0.5
done
say "$(grep -E '^ingested ' "$work/server.log")"

# 4. The README's requests. check NAME PATH [JS condition on `b` (the JSON body)] [curl args...]
checks=0
check() {
  local name=$1 path=$2 cond=$3
  shift 3
  local status
  status=$(curl -sS --max-time 20 -o "$work/body" -w '%{http_code}' "$@" "$base$path") ||
    fail "$name: curl $base$path failed"
  [ "$status" = 200 ] || fail "$name: $path answered HTTP $status: $(head -c 400 "$work/body")"
  COND=$cond "$NODE" -e '
    const fs = require("node:fs");
    const b = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    if (!new Function("b", "return (" + process.env.COND + ");")(b)) process.exit(1);
  ' "$work/body" || fail "$name: $path answered 200 but not ($cond): $(head -c 400 "$work/body")"
  checks=$((checks + 1))
  say "ok  $name  ($path)"
}
# The bundled sample: 31 hosts, 247 GPUs (mtv5-dgx1-hgpu-012 has 7), 10 metrics each, no bad row.
host=mtv5-dgx1-hgpu-012
check cluster /api/v1/clusters/local \
  'b.cluster_id === "local" && b.metadata.total_hosts === 31 && b.metadata.total_gpus === 247'
check hosts /api/v1/clusters/local/hosts \
  'b.length === 31 && b.every((h) => h.cluster_id === "local") && b.some((h) => h.hostname === "'$host'")'
check gpus "/api/v1/clusters/local/hosts/$host/gpus" \
  'b.length === 7 && b.every((g) => g.hostname === "'$host'" && g.model_name === "NVIDIA H100 80GB HBM3")'
check telemetry "/api/v1/clusters/local/hosts/$host/gpus/0/telemetry?limit=10" \
  'b.length === 10 && b.every((s) => s.gpu_id === "0" && typeof s.metric_name === "string" && Number.isFinite(s.value))'
check dead-letters /api/v1/dead-letters 'Array.isArray(b) && b.length === 0'
check graphql /graphql \
  'b.errors === undefined && b.data.cluster.totalHosts === 31 && b.data.cluster.totalGPUs === 247' \
  -X POST -H 'Content-Type: application/json' \
  -d '{"query": "{ cluster(id: \"local\") { totalHosts totalGPUs } }"}'
# The guide's cluster id on this server (serving `local`): an error naming both, not `cluster: null`.
check graphql-unknown-cluster /graphql \
  'b.data.cluster === null && b.errors[0].extensions.code === "NOT_FOUND" && b.errors[0].message.includes("my-cluster") && b.errors[0].message.includes("local")' \
  -X POST -H 'Content-Type: application/json' \
  -d '{"query": "{ cluster(id: \"my-cluster\") { totalHosts } }"}'
check openapi /openapi.json 'typeof b.openapi === "string" && Object.keys(b.paths).length > 0'

# 5. SIGTERM: a clean stop, exit status 0.
kill -TERM "$server_pid"
stop_deadline=$((SECONDS + 30))
while kill -0 "$server_pid" 2>/dev/null; do
  [ $SECONDS -lt $stop_deadline ] || fail "the server did not exit within 30 s of SIGTERM"
  sleep 0.2
done
set +e
wait "$server_pid"
code=$?
set -e
server_pid=
[ "$code" = 0 ] || fail "the server exited with status $code after SIGTERM (expected 0)"
say "SIGTERM: exit status 0"

echo "================================================================"
echo "smoke: PASSED on Node.js $node_version: $checks README requests answered as expected, clean stop ($((SECONDS - started_at)) s)"
echo "================================================================"
