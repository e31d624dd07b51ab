/**
 * Shared by the GraphQL, WebSocket and browser tests: an embedded runtime listening on 127.0.0.1
 * (port 0) with the bundled sample, a recorder of the hierarchy's watch events (the truth the streams
 * are checked against), a small JSON WebSocket client that collects messages, and bounded waits.
 */
import type { FastifyInstance } from 'fastify';
import { createClient, type Client } from 'graphql-ws';
import { WebSocket, type ClientOptions } from 'ws';
import { apiOptionsFromConfig, buildApp, type ApiMode, type Realtime } from '../../src/api/app.js';
import { loadConfig } from '../../src/config/config.js';
import { parseCursor, RevisionIndexer } from '../../src/events/cursor.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import { CLUSTERS_PREFIX, parseKey } from '../../src/hierarchy/paths.js';
import type { WatchEvent } from '../../src/ports/coordination.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';

/** The guide's cluster id: its documents name it verbatim. */
export const CLUSTER = 'my-cluster';

/** The guide's query, verbatim. */
export const GUIDE_QUERY = `query {
  cluster(id: "my-cluster") {
    id
    name
    region
    totalHosts
    totalGPUs
    hosts {
      id
      hostname
      gpus {
        id
        deviceName
        status {
          utilizationPercent
          temperatureCelsius
          healthy
        }
      }
    }
  }
}`;

/** The guide's subscription, verbatim. */
export const GUIDE_SUBSCRIPTION = `subscription {
  telemetryUpdates(clusterId: "my-cluster") {
    eventType
    timestamp
    hostId
    gpuId
    data {
      gpuUtilization
      temperature
      powerDraw
    }
  }
}`;

/** A running sample server. */
export interface SampleServer {
  runtime: EmbeddedRuntime;
  /** http://127.0.0.1:port */
  base: string;
  /** ws://127.0.0.1:port */
  wsBase: string;
  realtime: Realtime;
  /** Run the bundled sample through the pipeline once more (original timestamps: every GPU record is rewritten). */
  replay(): Promise<void>;
  close(): Promise<void>;
}

/** A graphql-ws client of `server`'s /graphql (no retries: a test sees every failure). */
export function graphqlClient(server: SampleServer): Client {
  return createClient({ url: `${server.wsBase}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
}

/** Start an embedded runtime on 127.0.0.1:0 with config overrides; ingest the sample unless `ingest: false`. */
export async function startSampleServer(
  overrides: Record<string, unknown> = {},
  options: { ingest?: boolean } = {},
): Promise<SampleServer> {
  const config = loadConfig(
    {},
    { MEMORY: true, CLUSTER_ID: CLUSTER, HOST: '127.0.0.1', PORT: 0, LOG_LEVEL: 'silent', ...overrides },
  );
  const runtime = await startEmbedded({ config, logger: createLogger('silent') });
  const base = runtime.address!;
  const replay = async (): Promise<void> => {
    await runtime.ingest({ spec: bundledSamplePath() });
  };
  if (options.ingest !== false) await replay();
  const realtime = runtime.app.realtime;
  if (!realtime) throw new Error('the runtime has neither GraphQL nor /ws enabled');
  return {
    runtime,
    base,
    wsBase: base.replace(/^http/, 'ws'),
    realtime,
    replay,
    close: () => runtime.close(),
  };
}

/** Wait until `check()` is true, polling every 10 ms; throws `what` after `timeoutMs`. */
export async function waitUntil(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One recorded hierarchy write. */
export interface Recorded {
  revision: number;
  /** The cursor the stream gives this change (`R.i`, see src/events/cursor.ts). */
  cursor: string;
  type: 'put' | 'delete';
  kind: 'cluster' | 'host' | 'gpu';
  clusterId: string;
  hostname?: string;
  gpuIndex?: string;
  uuid?: string;
  metrics?: string[];
}

/** Orders two cursors (`R` or `R.i`) as the stream does: negative when `a` comes first. */
export function compareCursors(a: string, b: string): number {
  const x = parseCursor(a);
  const y = parseCursor(b);
  return x.revision - y.revision || (x.index === y.index ? 0 : x.index < y.index ? -1 : 1);
}

/** Records every hierarchy watch event from the store's current revision on. */
export async function recordHierarchy(
  runtime: EmbeddedRuntime,
): Promise<{ events: Recorded[]; stop(): Promise<void> }> {
  const events: Recorded[] = [];
  const from = (await runtime.coordination.revision()) + 1;
  const indexer = new RevisionIndexer();
  const watcher = await runtime.coordination.watch(CLUSTERS_PREFIX, {
    fromRevision: from,
    onEvent: (e: WatchEvent) => {
      const key = e.type === 'put' ? e.kv.key : e.key;
      const index = indexer.next(e.revision);
      const parsed = parseKey(key);
      if (!parsed) return;
      const r: Recorded = {
        revision: e.revision,
        cursor: `${e.revision}.${index}`,
        type: e.type,
        kind: parsed.kind,
        clusterId: parsed.clusterId,
      };
      if (parsed.kind !== 'cluster') r.hostname = parsed.hostname;
      if (parsed.kind === 'gpu') {
        r.gpuIndex = parsed.gpuId;
        if (e.type === 'put') {
          const value = JSON.parse(e.kv.value) as { uuid: string; metrics: Record<string, unknown> };
          r.uuid = value.uuid;
          r.metrics = Object.keys(value.metrics);
        }
      }
      events.push(r);
    },
  });
  return { events, stop: () => watcher.cancel() };
}

/** A JSON WebSocket client that keeps every message it receives. */
export class JsonSocket {
  readonly messages: Record<string, unknown>[] = [];
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** HTTP status when the handshake was refused. */
  refusedWith: number | undefined;

  constructor(url: string, protocols?: string | string[], options: ClientOptions = {}) {
    this.ws = new WebSocket(url, protocols, options);
    this.ws.on('message', (data) => this.messages.push(JSON.parse(String(data)) as Record<string, unknown>));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: String(reason) }));
      this.ws.once('unexpected-response', (req, res) => {
        this.refusedWith = res.statusCode;
        req.destroy();
        resolve({ code: -1, reason: `HTTP ${res.statusCode}` });
      });
    });
    this.ws.on('error', () => undefined);
  }

  send(value: unknown): void {
    this.ws.send(JSON.stringify(value));
  }

  /** Messages of one type (optionally of one subscription id). */
  ofType(type: string, id?: string): Record<string, unknown>[] {
    return this.messages.filter((m) => m.type === type && (id === undefined || m.id === id));
  }

  /** Wait for a message matching `predicate`. */
  async next(predicate: (m: Record<string, unknown>) => boolean, what: string, timeoutMs = 10_000) {
    await waitUntil(() => this.messages.some(predicate), what, timeoutMs);
    return this.messages.find(predicate)!;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Percentile of sorted numbers (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A second app on the runtime's ports with other settings (config overrides), listening on 127.0.0.1:0. */
export async function startExtraApp(
  runtime: EmbeddedRuntime,
  overrides: Record<string, unknown>,
  mode: ApiMode = 'embedded',
): Promise<{ app: FastifyInstance; base: string; wsBase: string; close(): Promise<void> }> {
  const config = loadConfig({}, { CLUSTER_ID: CLUSTER, LOG_LEVEL: 'silent', ...overrides });
  const app = await buildApp(
    {
      coordination: runtime.coordination,
      store: runtime.store,
      logger: createLogger('silent'),
      metrics: createPipelineMetrics(),
      staleAfterMs: config.STALE_AFTER,
      readiness: {},
    },
    apiOptionsFromConfig(config, mode),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const base = `http://127.0.0.1:${port}`;
  return { app, base, wsBase: `ws://127.0.0.1:${port}`, close: () => app.close() };
}
