/**
 * Event latency benchmark: from the collector's write of a GPU record (its `observedAt`, the writer's
 * clock just before the write) to a subscriber receiving the event, while the bundled sample is
 * replayed through the embedded pipeline: 1 and 100 subscribers on /ws and on GraphQL (graphql-ws).
 * Subscribers run in a worker thread so their parsing does not share the server's event loop; both
 * threads read the same clock.
 *
 * The slow-client pair: 100 /ws subscribers plus one more client holding 20 subscriptions to every
 * GPU event. In "reading" it reads everything; in "stalled" it stops reading once subscribed, so the
 * server buffers for it until the send-buffer bound (1 MiB, the default) drops it. The others' latency
 * while the stalled client is still attached, over their latency beside the reading one, is the
 * cost of a stalled reader beyond the work it asked for (1.00x: none).
 *
 *   npx tsx bench/events.ts [--runs K] [--replays N]      (default 3 runs of 2 replays)
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '../src/config/config.js';
import { bundledSamplePath } from '../src/runtime/bundled-sample.js';
import { startEmbedded, type EmbeddedRuntime } from '../src/runtime/embedded.js';
import { compileFilter } from '../src/events/filter.js';
import { createLogger } from '../src/util/logger.js';
import { figure, type Figure } from './figure.js';

/** What the extra "slow" client does during a measurement (see the module header). */
export type SlowClientMode = 'none' | 'reading' | 'stalled';

/** One configuration to measure. */
export interface EventBenchConfig {
  transport: 'ws' | 'graphql';
  subscribers: number;
  /** An extra /ws client with {@link SLOW_SUBSCRIPTIONS} subscriptions to every GPU event (default none). */
  slow?: SlowClientMode;
  /** /ws: subscribe with `batch=true`; GraphQL: telemetryUpdateBatches (events framed together). */
  batch?: boolean;
}

/** One measured configuration: latencies over every run, each run's p50/p99 as a figure. */
export interface EventLatencyFigure extends EventBenchConfig {
  slow: SlowClientMode;
  batch: boolean;
  /** Events received by the measured subscribers, all runs (the slow client's are not counted). */
  deliveries: number;
  p50Ms: Figure;
  p99Ms: Figure;
  maxMs: number;
  /** Deliveries per second over the replays (median of the runs). */
  deliveriesPerSec: number;
  /** Stalled slow client only: runs in which the server dropped it (close 4503), of all runs. */
  slowDropped?: string;
  /** Most bytes the server held for any one /ws client (sampled every 5 ms). */
  maxBufferedBytes: number;
}

/** Options of {@link benchEvents}. */
export interface EventBenchOptions {
  /** Measurement runs per configuration; each figure is the median of the runs (default 3). */
  runs?: number;
  /** Replays of the bundled sample per run (default 2). */
  replays?: number;
  /** Configurations to measure (default {@link DEFAULT_EVENT_CONFIGS}). */
  configs?: EventBenchConfig[];
  log?: (line: string) => void;
}

/** Subscriptions the slow client opens, each to every GPU event (so it costs the server 20 clients). */
export const SLOW_SUBSCRIPTIONS = 20;

/** Send-buffer bound per /ws client during the bench (WS_MAX_BUFFERED, its default). */
const MAX_BUFFERED = 1024 * 1024;

/** The default configurations: 1 and 100 subscribers on each transport, then the slow-client pair. */
export const DEFAULT_EVENT_CONFIGS: EventBenchConfig[] = [
  { transport: 'ws', subscribers: 1 },
  { transport: 'ws', subscribers: 100 },
  { transport: 'ws', subscribers: 100, batch: true },
  { transport: 'graphql', subscribers: 1 },
  { transport: 'graphql', subscribers: 100 },
  { transport: 'graphql', subscribers: 100, batch: true },
  { transport: 'ws', subscribers: 100, slow: 'reading' },
  { transport: 'ws', subscribers: 100, slow: 'stalled' },
];

/**
 * Code of the subscriber worker (CommonJS, given `ws` by absolute path). Each latency is kept with
 * its arrival time so the main thread can split a run at the moment the slow client was dropped.
 */
export const SUBSCRIBER_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require(workerData.wsPath);
const received = [];
const latencies = [];
let ready = 0;
const sockets = [];
const graphql = workerData.transport === 'graphql';
const wanted = workerData.count + (workerData.slow === 'none' ? 0 : 1);
const isReady = () => { ready += 1; if (ready === wanted) parentPort.postMessage({ type: 'ready' }); };
for (let i = 0; i < workerData.count; i++) {
  const ws = new WebSocket(workerData.url, graphql ? 'graphql-transport-ws' : undefined);
  sockets.push(ws);
  ws.on('open', () => {
    if (graphql) ws.send(JSON.stringify({ type: 'connection_init' }));
  });
  ws.on('message', (data) => {
    const now = Date.now();
    const m = JSON.parse(String(data));
    if (m.type === 'connection_ack') {
      const query = workerData.batch
        ? 'subscription { telemetryUpdateBatches(eventTypes: [GPU_UPDATE]) { events { observedAt } } }'
        : 'subscription { telemetryUpdates(eventTypes: [GPU_UPDATE]) { observedAt } }';
      ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query } }));
      setTimeout(isReady, 200);
      return;
    }
    if (m.type === 'subscribed') return isReady();
    if (m.type === 'events') {
      for (const item of m.events) if (item.event.observedAt) { received.push(now); latencies.push(now - Date.parse(item.event.observedAt)); }
      return;
    }
    if (m.type === 'next' && m.payload.data.telemetryUpdateBatches) {
      for (const e of m.payload.data.telemetryUpdateBatches.events) if (e.observedAt) { received.push(now); latencies.push(now - Date.parse(e.observedAt)); }
      return;
    }
    const observedAt = m.type === 'event' ? m.event.observedAt : m.type === 'next' ? m.payload.data.telemetryUpdates.observedAt : null;
    if (observedAt) { received.push(now); latencies.push(now - Date.parse(observedAt)); }
  });
  ws.on('error', () => undefined);
}
if (workerData.slow !== 'none') {
  // The slow client: many subscriptions to everything; 'stalled' stops reading once they are open.
  const ws = new WebSocket(workerData.slowUrl);
  sockets.push(ws);
  let acks = 0;
  ws.on('open', () => {
    for (let i = 0; i < workerData.slowSubscriptions; i++)
      ws.send(JSON.stringify({ type: 'subscribe', id: 'all-' + i, filter: { eventTypes: ['GPU_UPDATE'] } }));
  });
  ws.on('message', (data) => {
    if (acks === workerData.slowSubscriptions) return;
    if (JSON.parse(String(data)).type !== 'subscribed') return;
    acks += 1;
    if (acks < workerData.slowSubscriptions) return;
    if (workerData.slow === 'stalled') ws.pause();
    isReady();
  });
  ws.on('error', () => undefined);
}
parentPort.on('message', (m) => {
  if (m === 'count') parentPort.postMessage({ type: 'count', count: latencies.length });
  if (m === 'report') {
    for (const s of sockets) s.terminate();
    parentPort.postMessage({ type: 'report', latencies, received });
  }
});
`;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function until(
  check: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`bench: timed out waiting for ${typeof what === 'string' ? what : what()}`);
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

/** One run's raw result. */
interface RunResult {
  latencies: number[];
  seconds: number;
  /** When the server dropped the slow client (epoch ms), if it did. */
  droppedAt: number | undefined;
  maxBuffered: number;
}

async function measureRun(
  runtime: EmbeddedRuntime,
  config: Required<EventBenchConfig>,
  replays: number,
): Promise<RunResult> {
  const { transport, subscribers: count, slow } = config;
  const hub = runtime.app.realtime!.hub;
  const base = runtime.address!.replace(/^http/, 'ws');
  const url =
    transport === 'ws'
      ? `${base}/ws?eventTypes=GPU_UPDATE${config.batch ? '&batch=true' : ''}`
      : `${base}/graphql`;
  const wsPath = createRequire(import.meta.url).resolve('ws');
  const slowCount = slow === 'none' ? 0 : SLOW_SUBSCRIPTIONS;
  // The previous run's clients are gone once the server has seen their sockets close.
  await until(() => hub.stats.subscribers === 0, 'the previous subscribers to leave');
  const common = {
    url,
    transport,
    batch: config.batch === true,
    wsPath,
    slowUrl: `${base}/ws?subscribe=none`,
    slowSubscriptions: SLOW_SUBSCRIPTIONS,
  };
  const worker = new Worker(SUBSCRIBER_WORKER, {
    eval: true,
    workerData: { ...common, count, slow: 'none' },
  });
  // The slow client has a thread of its own, so reading or not changes no work in the measured one.
  const slowWorker =
    slow === 'none'
      ? undefined
      : new Worker(SUBSCRIBER_WORKER, { eval: true, workerData: { ...common, count: 0, slow } });
  const wss = runtime.app.realtime!.endpoints.get('/ws')!.wss;
  let droppedAt: number | undefined;
  let maxBuffered = 0;
  let counting = false;
  let replaying = false;
  const sampler = setInterval(() => {
    for (const socket of wss.clients) maxBuffered = Math.max(maxBuffered, socket.bufferedAmount);
    const attached = count + slowCount + (counting ? 1 : 0);
    if (replaying && slowCount > 0 && droppedAt === undefined && hub.stats.subscribers < attached)
      droppedAt = Date.now();
  }, 5);
  try {
    await until(
      () => hub.stats.subscribers === count + slowCount,
      `${count} ${transport} subscribers${slowCount ? ' and the slow client' : ''}`,
    );
    // Count the GPU events the replays make with a subscription of our own (the hub's counter also
    // counts host and cluster records, which the measured subscribers filter out).
    let gpuWrites = 0;
    const counter = await hub.subscribe({
      filter: compileFilter({ eventTypes: ['GPU_UPDATE'] }),
      onEvent: () => void (gpuWrites += 1),
    });
    counting = true;
    replaying = true;
    const started = performance.now();
    for (let i = 0; i < replays; i++) await runtime.ingest({ spec: bundledSamplePath() });
    const gpuEvents = gpuWrites * count;
    replaying = false;
    counter.close();
    counting = false;
    let got = 0;
    await until(
      async () => (got = (await ask<{ count: number }>(worker, 'count', 'count')).count) >= gpuEvents,
      () => `the deliveries (${got} of ${gpuEvents}; ${hub.stats.subscribers} subscribers left)`,
      180_000,
    );
    const seconds = (performance.now() - started) / 1000;
    const { latencies, received } = await ask<{ latencies: number[]; received: number[] }>(
      worker,
      'report',
      'report',
    );
    // A stalled client is compared while it is attached: what the others feel while it still costs.
    const kept =
      slow === 'stalled' && droppedAt !== undefined
        ? latencies.filter((_, i) => received[i]! < droppedAt!)
        : latencies;
    return { latencies: kept, seconds, droppedAt, maxBuffered };
  } finally {
    clearInterval(sampler);
    await worker.terminate();
    await slowWorker?.terminate();
  }
}

function summarize(config: Required<EventBenchConfig>, results: RunResult[]): EventLatencyFigure {
  const perRun = results.map((r) => [...r.latencies].sort((a, b) => a - b));
  const all = perRun.flat().sort((a, b) => a - b);
  return {
    ...config,
    deliveries: all.length,
    p50Ms: figure(perRun.map((l) => percentile(l, 50))),
    p99Ms: figure(perRun.map((l) => percentile(l, 99))),
    maxMs: all.at(-1) ?? Number.NaN,
    deliveriesPerSec: figure(results.map((r, i) => Math.round(perRun[i]!.length / r.seconds))).median,
    ...(config.slow === 'stalled'
      ? { slowDropped: `${results.filter((r) => r.droppedAt !== undefined).length}/${results.length}` }
      : {}),
    maxBufferedBytes: Math.max(...results.map((r) => r.maxBuffered)),
  };
}

/** Measure event latency; resolves with one figure per configuration. */
export async function benchEvents(options: EventBenchOptions = {}): Promise<EventLatencyFigure[]> {
  const runs = options.runs ?? 3;
  const replays = options.replays ?? 2;
  const configs = options.configs ?? DEFAULT_EVENT_CONFIGS;
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
      WS_MAX_BUFFERED: MAX_BUFFERED,
    },
  );
  const runtime = await startEmbedded({ config, logger: createLogger('silent') });
  try {
    await runtime.ingest({ spec: bundledSamplePath() });
    // Runs go round the configurations (run 1 of each, then run 2 of each, ...), so a noisy minute
    // on this shared machine lands on every configuration rather than on one.
    const full = configs.map((c) => ({ slow: 'none' as const, batch: false, ...c }));
    const results: RunResult[][] = full.map(() => []);
    for (let run = 0; run < runs; run++) {
      for (const [i, c] of full.entries()) {
        log(
          `bench: event latency, run ${run + 1}/${runs}: ${c.subscribers} ${c.transport}${c.batch ? ' (batch)' : ''} subscriber(s)` +
            `${c.slow === 'none' ? '' : `, slow client ${c.slow}`}, ${replays} replays ...`,
        );
        results[i]!.push(await measureRun(runtime, c, replays));
      }
    }
    const figures = full.map((c, i) => summarize(c, results[i]!));
    return figures;
  } finally {
    await runtime.close();
  }
}

/** The figures as a table. */
export function formatEventFigures(figures: EventLatencyFigure[]): string {
  const spread = (f: Figure): string => `${f.median} (${f.min}..${f.max})`;
  const rows = [
    [
      'transport',
      'subscribers',
      'slow client',
      'deliveries',
      'p50 ms',
      'p99 ms',
      'max ms',
      'deliveries/s',
      'max buffered',
    ],
    ...figures.map((f) => [
      `${f.transport}${f.batch ? ' batch' : ''}`,
      String(f.subscribers),
      f.slow === 'stalled' ? `stalled, dropped ${f.slowDropped}` : f.slow,
      String(f.deliveries),
      spread(f.p50Ms),
      spread(f.p99Ms),
      String(f.maxMs),
      String(f.deliveriesPerSec),
      `${Math.round(f.maxBufferedBytes / 1024)} KiB`,
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const table = rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
  const reading = figures.find((f) => f.slow === 'reading');
  const stalled = figures.find((f) => f.slow === 'stalled');
  if (!reading || !stalled) return table;
  const ratio = (a: Figure, b: Figure): string => (a.median / b.median).toFixed(2);
  return (
    `${table}\nslow client: the other ${stalled.subscribers} clients' latency with it stalled / with it reading: ` +
    `p50 ${ratio(stalled.p50Ms, reading.p50Ms)}x, p99 ${ratio(stalled.p99Ms, reading.p99Ms)}x ` +
    `(send-buffer bound ${MAX_BUFFERED / 1024} KiB per client)`
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const flag = (name: string, fallback: number): number => {
    const i = process.argv.indexOf(name);
    return i === -1 ? fallback : Number(process.argv[i + 1]);
  };
  benchEvents({ runs: flag('--runs', 3), replays: flag('--replays', 2) }).then(
    (figures) =>
      console.log(`\nevent latency, collector write -> subscriber\n${formatEventFigures(figures)}`),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
