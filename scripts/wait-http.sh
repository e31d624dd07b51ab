#!/usr/bin/env bash
# scripts/wait-http.sh URL SECONDS: wait until URL answers 2xx (e.g. the API's /ready).
set -euo pipefail
url=$1
seconds=${2:-60}
deadline=$((SECONDS + seconds))
until curl -fsS --max-time 3 "$url" >/dev/null 2>&1; do
  if [ $SECONDS -ge $deadline ]; then
    echo "wait-http: $url did not answer 2xx within ${seconds}s: $(curl -sS --max-time 3 "$url" 2>&1 | head -c 300)" >&2
    exit 1
  fi
  sleep 0.5
done
echo "wait-http: $url ok"
