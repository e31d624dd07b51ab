# nexus-telemetry: the make targets of NEXUS_INTEGRATION_GUIDE.md.
#
# Two ways to run the pipeline, chosen by MODE (default: docker when a Docker engine answers, else local):
#   MODE=docker  docker-compose.nexus.yml (3 etcd members, Redis, TimescaleDB, 2 collectors, APIs, UIs)
#   MODE=local   installed binaries (etcd-server, postgresql, redis-server) and node, everything under
#                $(RUN_DIR) with pid files and logs (scripts/nexus-local.sh); same host ports
# Ports: etcd 2379, PostgreSQL 5433, Redis 6379, API 8080. `make help` lists the targets.
#
# Settings (override on the command line, e.g. `make run-streamer QUEUE=etcd SOURCE=big.csv`):
#   CLUSTER_ID, LOG_LEVEL, SOURCE (streamer input), QUEUE (streamer queue), COLLECTOR_ID, RUN_DIR,
#   LOAD_DURATION / LOAD_CONNECTIONS / LOAD_REQUESTS / LOAD_WS_CLIENTS (load test), BENCH_ARGS (benchmark)

SHELL := /bin/bash
.DEFAULT_GOAL := help

COMPOSE_FILE := docker-compose.nexus.yml
COMPOSE ?= $(shell command -v docker-compose >/dev/null 2>&1 && echo docker-compose || echo docker compose) -f $(COMPOSE_FILE)
DOCKER_ENGINE = $(shell docker info >/dev/null 2>&1 && echo yes)
MODE ?= $(if $(DOCKER_ENGINE),docker,local)
# The Docker-only targets start with $(require-docker): without an engine they stop with this one
# line (make's "*** ... Stop.") instead of a compose client's traceback.
NO_DOCKER = $@ needs a Docker engine and none answers (`docker info` failed); nothing was run. Without Docker the same pipeline runs from local binaries: make quick-start-nexus MODE=local (stop it with make stop-nexus)
require-docker = $(if $(DOCKER_ENGINE),,$(error $(NO_DOCKER)))

RUN_DIR ?= $(CURDIR)/.run
# Host ports (the guide's); the local processes and every check script use them.
ETCD_PORT ?= 2379
ETCD_PEER_PORT ?= 2380
PG_PORT ?= 5433
REDIS_PORT ?= 6379
API_PORT ?= 8080
CLUSTER_ID ?= my-cluster
LOG_LEVEL ?= info
SOURCE ?= sample/dcgm_metrics_20250718_134233.csv
QUEUE ?= redis
COLLECTOR_ID ?= collector-1
BENCH_ARGS ?=

# What the local processes get; the local script adds the guide's endpoints and credentials
# (etcd 127.0.0.1:2379, Redis redis://127.0.0.1:6379, PostgreSQL postgres:postgres@127.0.0.1:5433/telemetry).
# Introspection lets the guide's `{ __schema { types { name } } }` work in local development.
export RUN_DIR CLUSTER_ID LOG_LEVEL ETCD_PORT ETCD_PEER_PORT PG_PORT REDIS_PORT API_PORT
export PORT := $(API_PORT)
export POLL_INTERVAL ?= 1s
export GRAPHQL_INTROSPECTION ?= true

LOCAL := scripts/nexus-local.sh
TSX := node --import tsx
CLI := dist/cli/main.js

.PHONY: help quick-start-nexus setup-etcd setup-db build-nexus run-nexus-collector run-nexus-api \
	run-streamer run-nexus-docker logs-nexus-docker stop-nexus-docker health-nexus monitor-etcd \
	monitor-nexus-data nexus-logs-collector nexus-logs-api load-test-nexus benchmark-nexus \
	test-graphql test-websocket etcd-shell validate-nexus stop-nexus status-nexus clean-nexus \
	build-nexus-image

help: ## List the targets
	@echo "nexus-telemetry make targets (MODE=$(MODE); see docs/operations.md)"
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):.*## (.*)/  \1|\2/' | column -t -s '|'

build-nexus: ## Compile the TypeScript (dist/) for every role (npm ci first when node_modules is missing)
	@[ -d node_modules ] || npm ci --no-audit --no-fund
	npm run build

build-nexus-image: ## Build the Docker image nexus-telemetry:latest (needs a Docker engine)
	$(require-docker)
	docker build -t nexus-telemetry:latest .

$(CLI):
	$(MAKE) build-nexus

quick-start-nexus: ## Bring up etcd, PostgreSQL, Redis, 2 collectors, the API and the streamer on the sample
ifeq ($(MODE),docker)
	$(MAKE) run-nexus-docker
	@scripts/wait-http.sh http://127.0.0.1:$(API_PORT)/ready 180
	@echo "Nexus pipeline up: curl http://localhost:8080/api/v1/clusters/$(CLUSTER_ID); database UI http://localhost:8082"
else
	$(MAKE) build-nexus
	$(MAKE) setup-etcd setup-db
	@COLLECTOR_ID=collector-1 $(LOCAL) spawn collector-1 'consuming' collector
	@COLLECTOR_ID=collector-2 $(LOCAL) spawn collector-2 'consuming' collector
	@SERVICE_ID=api-1 $(LOCAL) spawn api 'listening on' api
	@scripts/wait-http.sh http://127.0.0.1:$(API_PORT)/ready 60
	@echo "streaming $(SOURCE) through the etcd queue ..."
	@SERVICE_ID=streamer-1 $(LOCAL) spawn streamer 'published [0-9,]+ rows' streamer $(SOURCE) --queue etcd
	@scripts/wait-ingest.sh $(CLUSTER_ID) 120
	@echo "Nexus pipeline up (local processes under $(RUN_DIR)):"
	@echo "  curl http://localhost:$(API_PORT)/health"
	@echo "  curl http://localhost:$(API_PORT)/api/v1/clusters/$(CLUSTER_ID)"
	@echo "  make health-nexus validate-nexus test-graphql test-websocket; make stop-nexus when done"
endif

setup-etcd: ## Start etcd (compose: 3 members; local: one member on 127.0.0.1:2379)
ifeq ($(MODE),docker)
	$(COMPOSE) up -d etcd-1 etcd-2 etcd-3
else
	@$(LOCAL) etcd
endif

setup-db: ## Start PostgreSQL (port 5433, database telemetry) and Redis (6379, appendonly)
ifeq ($(MODE),docker)
	$(COMPOSE) up -d postgres redis
else
	@$(LOCAL) postgres
	@$(LOCAL) redis
endif

run-nexus-collector: $(CLI) ## Run a collector in the foreground (COLLECTOR_ID=collector-1): etcd queue + Redis topics -> PostgreSQL + etcd
	@COLLECTOR_ID=$(COLLECTOR_ID) $(LOCAL) run $(COLLECTOR_ID) collector

run-nexus-api: $(CLI) ## Run the API in the foreground on :8080 (REST + GraphQL + WebSocket)
	@SERVICE_ID=$${SERVICE_ID:-api-1} $(LOCAL) run api api

run-streamer: $(CLI) ## Stream SOURCE (default: the bundled sample) to QUEUE (redis: the traditional streamer; or etcd)
	@SERVICE_ID=$${SERVICE_ID:-streamer-1} $(LOCAL) run streamer streamer $(SOURCE) --queue $(QUEUE)

run-nexus-docker: ## docker-compose.nexus.yml: build the image and start everything (needs a Docker engine)
	$(require-docker)
	$(COMPOSE) up -d --build

logs-nexus-docker: ## Follow the logs of the compose services
	$(require-docker)
	$(COMPOSE) logs -f --tail=200

stop-nexus-docker: ## Stop and remove the compose services (volumes kept; add -v by hand to drop them)
	$(require-docker)
	$(COMPOSE) down

health-nexus: ## Check the API (/health, /ready), etcd, PostgreSQL and Redis
	@scripts/health.sh

validate-nexus: ## Check the running pipeline end to end (API, GraphQL, WebSocket, etcd tree, Redis durability, PostgreSQL)
	@$(TSX) scripts/validate-nexus.ts

monitor-etcd: ## etcd status: members, leader, db size, health, alarms
	@scripts/monitor.sh etcd

monitor-nexus-data: ## The telemetry data: etcd /telemetry/ tree, services, Redis backlog, PostgreSQL counts
	@scripts/monitor.sh data

nexus-logs-collector: ## Collector logs (FOLLOW=1 to follow)
ifeq ($(MODE),docker)
	$(COMPOSE) logs --tail=200 $(if $(FOLLOW),-f) nexus-collector
else
	@$(LOCAL) logs collector $(FOLLOW)
endif

nexus-logs-api: ## API logs (FOLLOW=1 to follow)
ifeq ($(MODE),docker)
	$(COMPOSE) logs --tail=200 $(if $(FOLLOW),-f) nexus-api
else
	@$(LOCAL) logs api $(FOLLOW)
endif

load-test-nexus: ## autocannon on REST and GraphQL, LOAD_DURATION s (10) per endpoint, then LOAD_WS_CLIENTS (100) /ws clients; prints req/s, latency, errors
	@$(TSX) scripts/load-test.ts

benchmark-nexus: ## npm run bench (floors, embedded/nexus/traditional end-to-end, queries, events); BENCH_ARGS="--rows 200000 --runs 1"
	npm run bench -- $(BENCH_ARGS)

test-graphql: ## The guide's GraphQL curl (schema introspection) and a cluster query
	@scripts/test-graphql.sh

test-websocket: ## Connect to ws://localhost:8080/ws, send a ping, expect the pong
	@$(TSX) scripts/test-websocket.ts

etcd-shell: ## A shell with etcdctl pointed at the etcd (compose: inside telemetry-etcd)
ifeq ($(MODE),docker)
	docker exec -it telemetry-etcd sh
else
	@echo "etcdctl talks to 127.0.0.1:$(ETCD_PORT); try: etcdctl get --prefix /telemetry/ --keys-only (exit to leave)"
	@ETCDCTL_API=3 ETCDCTL_ENDPOINTS=127.0.0.1:$(ETCD_PORT) PS1='etcd-shell$$ ' bash --norc -i
endif

status-nexus: ## What runs from the local run directory
	@$(LOCAL) status

stop-nexus: ## Stop every local process (collectors, API, streamer, Redis, PostgreSQL, etcd); fails if one is left
	@$(LOCAL) stop

clean-nexus: stop-nexus ## stop-nexus, then delete the local data ($(RUN_DIR))
	rm -rf $(RUN_DIR)
