/**
 * Event latency benchmark: from the collector's write of a GPU record (its `observedAt`, the writer's
 * clock just before the write) to a subscriber receiving the event, for 1 and 100 /ws subscribers
 * and one GraphQL (graphql-ws) subscriber, while the bundled sample is replayed through the embedded
 * pipeline. Subscribers run in a worker thread so their parsing does not share the server's event
 * loop; both threads read the same clock.
 *
 *   npx tsx bench/events.ts [--replays N]      (default 3)
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '../src/config/config.js';
import { bundledSamplePath } from '../src/runtime/bundled-sample.js';
import { startEmbedded, type EmbeddedRuntime } from '../src/runtime/embedded.js';
import { createLogger } from '../src/util/logger.js';

/** One measured configuration. */
export interface EventLatencyFigure {
  transport: 'ws' | 'graphql';
  subscribers: number;
  /** Events received in total (subscribers x events). */
  deliveries: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Deliveries per second over the replays. */
  deliveriesPerSec: number;
}

/** Options of {@link benchEvents}. */
export interface EventBenchOptions {
  /** Replays of the bundled sample per configuration (default 3). */
  replays?: number;
  /** Configurations to measure (default: ws x1, ws x100, graphql x1). */
  configs?: { transport: 'ws' | 'graphql'; subscribers: number }[];
  log?: (line: string) => void;
}

/** Code of the subscriber worker (CommonJS, given `ws` by absolute path). */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require(workerData.wsPath);
const latencies = [];
let connected = 0;
const sockets = [];
for (let i = 0; i < workerData.count; i++) {
  const graphql = workerData.transport === 'graphql';
  const ws = new WebSocket(workerData.url, graphql ? 'graphql-transport-ws' : undefined);
  sockets.push(ws);
  ws.on('open', () => {
    if (graphql) ws.send(JSON.stringify({ type: 'connection_init' }));
  });
  ws.on('message', (data) => {
    const now = Date.now();
    const m = JSON.parse(String(data));
    if (m.type === 'subscribed' || m.type === 'connection_ack') {
      if (m.type === 'connection_ack')
        ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { telemetryUpdates(eventTypes: [GPU_UPDATE]) { observedAt } }' } }));
      else connected += 1;
      if (m.type === 'subscribed' && connected === workerData.count) parentPort.postMessage({ type: 'ready' });
      return;
    }
    const observedAt = m.type === 'event' ? m.event.observedAt : m.type === 'next' ? m.payload.data.telemetryUpdates.observedAt : null;
    if (observedAt) latencies.push(now - Date.parse(observedAt));
  });
  ws.on('error', () => undefined);
}
if (workerData.transport === 'graphql') parentPort.postMessage({ type: 'ready-soon' });
parentPort.on('message', (m) => {
  if (m === 'count') parentPort.postMessage({ type: 'count', count: latencies.length });
  if (m === 'report') {
    for (const s of sockets) s.terminate();
    parentPort.postMessage({ type: 'report', latencies });
  }
});
`;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function ask<T>(worker: Worker, message: string, type: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (m: { type: string } & T): void => {
      if (m.type !== type) return;
      worker.off('message', onMessage);
      resolve(m);
    };
    worker.on('message', onMessage);
    worker.postMessage(message);
  });
}

async function measure(
  runtime: EmbeddedRuntime,
  transport: 'ws' | 'graphql',
  count: number,
  replays: number,
): Promise<EventLatencyFigure> {
  const hub = runtime.app.realtime!.hub;
  const base = runtime.address!.replace(/^http/, 'ws');
  const url = transport === 'ws' ? `${base}/ws?eventTypes=GPU_UPDATE` : `${base}/graphql`;
  const wsPath = createRequire(import.meta.url).resolve('ws');
  // The previous configuration's clients are gone once the server has seen their sockets close.
  await until(() => hub.stats.subscribers === 0, 'the previous subscribers to leave');
  const worker = new Worker(WORKER, { eval: true, workerData: { url, count, transport, wsPath } });
  try {
    await until(() => hub.stats.subscribers === count, `${count} ${transport} subscribers`);
    const eventsBefore = hub.stats.events;
    const started = performance.now();
    for (let i = 0; i < replays; i++) await runtime.ingest({ spec: bundledSamplePath() });
    const gpuEvents = (hub.stats.events - eventsBefore) * count;
    await until(
      async () => (await ask<{ count: number }>(worker, 'count', 'count')).count >= gpuEvents * 0.999,
      'the deliveries',
    );
    const seconds = (performance.now() - started) / 1000;
    const { latencies } = await ask<{ latencies: number[] }>(worker, 'report', 'report');
    latencies.sort((a, b) => a - b);
    return {
      transport,
      subscribers: count,
      deliveries: latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.at(-1) ?? Number.NaN,
      deliveriesPerSec: Math.round(latencies.length / seconds),
    };
  } finally {
    await worker.terminate();
  }
}

/** Measure event latency; resolves with one figure per configuration. */
export async function benchEvents(options: EventBenchOptions = {}): Promise<EventLatencyFigure[]> {
  const replays = options.replays ?? 3;
  const configs = options.configs ?? [
    { transport: 'ws' as const, subscribers: 1 },
    { transport: 'ws' as const, subscribers: 100 },
    { transport: 'graphql' as const, subscribers: 1 },
  ];
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const config = loadConfig(
    {},
    {
      MEMORY: true,
      CLUSTER_ID: 'bench',
      HOST: '127.0.0.1',
      PORT: 0,
      LOG_LEVEL: 'silent',
      WS_MAX_CONNECTIONS: 1000,
    },
  );
  const runtime = await startEmbedded({ config, logger: createLogger('silent') });
  try {
    await runtime.ingest({ spec: bundledSamplePath() });
    const figures: EventLatencyFigure[] = [];
    for (const c of configs) {
      log(`bench: event latency, ${c.subscribers} ${c.transport} subscriber(s), ${replays} replays ...`);
      figures.push(await measure(runtime, c.transport, c.subscribers, replays));
    }
    return figures;
  } finally {
    await runtime.close();
  }
}

/** The figures as a table. */
export function formatEventFigures(figures: EventLatencyFigure[]): string {
  const rows = [
    ['transport', 'subscribers', 'deliveries', 'p50 ms', 'p99 ms', 'max ms', 'deliveries/s'],
    ...figures.map((f) => [
      f.transport,
      String(f.subscribers),
      String(f.deliveries),
      String(f.p50Ms),
      String(f.p99Ms),
      String(f.maxMs),
      String(f.deliveriesPerSec),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--replays');
  const replays = i === -1 ? 3 : Number(process.argv[i + 1]);
  benchEvents({ replays }).then(
    (figures) =>
      console.log(`\nevent latency, collector write -> subscriber\n${formatEventFigures(figures)}`),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
