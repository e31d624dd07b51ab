# syntax=docker/dockerfile:1
# One image for every role of nexus-telemetry: the CLI subcommand picks it.
#   docker run IMAGE start                  embedded pipeline on the bundled sample (default)
#   docker run IMAGE collector              queue(s) -> PostgreSQL (+ etcd hierarchy)
#   docker run IMAGE api [--traditional]    REST (+ GraphQL, WebSocket) on PORT (8080)
#   docker run IMAGE streamer [source]      CSV -> queue (etcd or Redis)
# Configuration is environment variables only (docs/configuration.md).

# Node.js 24 (Active LTS); node:22-bookworm-slim works too (package.json "engines": ^20.19 || ^22.12 || >=24).
ARG NODE_IMAGE=node:24-bookworm-slim

# 1. Compile TypeScript with the full (dev) dependency set.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The web apps (dashboard at /, GraphiQL): npm run build bundles web/<name> into dist/web/<name>.
COPY web ./web
COPY scripts/build-web.mjs ./scripts/build-web.mjs
RUN npm run build

# 2. Production dependencies only.
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# 3. Runtime: compiled code and web assets (dist/, dist/web/), production node_modules, the bundled
#    sample; runs as the unprivileged `node` user (uid 1000) that the official Node.js images provide.
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY sample ./sample
# The built-in alert rules (dist/alerting/ reads ../../rules/gpu-health.rules.yml).
COPY rules ./rules
COPY scripts/healthcheck.mjs ./scripts/healthcheck.mjs
RUN mkdir -p /data && chown node:node /data
# Embedded mode (`start`) keeps its PGlite database here; mount a volume to keep it.
ENV DATA_DIR=/data
# A container is reached through its published port, so `start` binds every interface. Without
# authentication that needs INSECURE_NO_AUTH (a warning every minute): set AUTH=token (and create
# a token, docs/security.md) to protect the API, then INSECURE_NO_AUTH has no effect.
ENV HOST=0.0.0.0
ENV INSECURE_NO_AUTH=true
VOLUME ["/data"]
USER node
EXPOSE 8080
# api/start: GET /health on PORT must answer 200; collector/streamer: healthy while running.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/scripts/healthcheck.mjs"]
# No allocation-site pretenuring, a 16 MiB semi-space: each sample's short-lived objects die in the
# young generation instead of filling the old one (docs/operations.md, "Node.js flags").
ENTRYPOINT ["node", "--max-semi-space-size=16", "--no-allocation-site-pretenuring", "--heap-growing-percent=20", "/app/dist/cli/main.js"]
CMD ["start"]
