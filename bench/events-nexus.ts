/**
 * Event latency in nexus mode (issue 18's target: collector write -> subscriber, 100 subscribers,
 * p99 <= 50 ms), under a live load rather than a replay burst:
 *
 *   npx tsx bench/events-nexus.ts [--seconds 20] [--interval-ms 2000] [--subscribers 100]
 *
 * The deployment of docs/nexus.md on this machine, every process the compiled CLI (bench/build.ts):
 * one etcd member and one PostgreSQL (test/harness, 127.0.0.1, temp dirs), a `collector`, an `api`,
 * and a `streamer` scraping dcgm-exporter stand-ins (test/support/dcgm-exporter-standin.ts) every
 * `--interval-ms`. The stand-ins serve the bundled sample's exposition (247 GPUs on 31 hosts, 10
 * fields each), one per host as dcgm-exporter runs, with fresh values on every scrape, so every
 * scrape changes every GPU record: 247 GPU events per interval, a 2,470-GPU fleet at
 * dcgm-exporter's 10 s default when the interval is 1 s.
 *
 * Measured per transport (/ws with one message per event, /ws `batch=true`, GraphQL over
 * graphql-ws, `telemetryUpdates` and `telemetryUpdateBatches`): `--subscribers` clients in one worker thread (bench/events.ts's subscriber code),
 * all subscribed to GPU_UPDATE, for `--seconds` after they are all subscribed. A latency is the
 * receiving time minus the event's `observedAt` (the collector's clock just before its etcd write;
 * same machine, same clock). Prints p50/p99/max and deliveries per second, with met/missed for p99
 * <= 50 ms. Everything is stopped and removed in a `finally`.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type EtcdHandle, startEtcd } from '../test/harness/etcd.js';
import { freePort } from '../test/harness/free-port.js';
import { type PostgresHarness, startPostgres } from '../test/harness/postgres.js';
import { type CliProcess, spawnCli } from '../test/support/cli-process.js';
import { SAMPLE_PROM_PATH, type Standin, startStandin } from '../test/support/dcgm-exporter-standin.js';
import { intArg } from './args.js';
import { ensureBuilt } from './build.js';
import { SUBSCRIBER_WORKER } from './events.js';
import { percentile } from './timing.js';

/** One transport's figures. */
export interface NexusEventFigure {
  transport: 'ws' | 'ws batch' | 'graphql' | 'graphql batch';
  subscribers: number;
  deliveries: number;
  deliveriesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Everything {@link benchEventsNexus} measured. */
export interface NexusEventFigures {
  intervalMs: number;
  seconds: number;
  gpusPerScrape: number;
  figures: NexusEventFigure[];
  loadAverage: number[];
}

/** Options of {@link benchEventsNexus}. */
export interface NexusEventOptions {
  /** Seconds measured per transport (default 20). */
  seconds?: number;
  /** Scrape interval of the streamer, ms (default 2000). */
  intervalMs?: number;
  /** Subscribers per transport (default 100). */
  subscribers?: number;
  log?: (line: string) => void;
}

const CLUSTER = 'bench';
const TRANSPORTS: NexusEventFigure['transport'][] = ['ws', 'ws batch', 'graphql', 'graphql batch'];

/**
 * The sample's exposition split per host, as dcgm-exporter serves it (one target per node): the
 * comment lines, then that host's samples.
 */
function perHost(template: string): Map<string, string> {
  const comments = template.split('\n').filter((line) => line.startsWith('#'));
  const hosts = new Map<string, string[]>();
  for (const line of template.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const host = /Hostname="([^"]*)"/.exec(line)?.[1] ?? '';
    let lines = hosts.get(host);
    if (!lines) hosts.set(host, (lines = []));
    lines.push(line);
  }
  return new Map([...hosts].map(([host, lines]) => [host, `${[...comments, ...lines].join('\n')}\n`]));
}

/** `body` with every value replaced by a fresh one on each call (so every GPU record changes). */
function fresh(body: string): () => string {
  let round = 0;
  return () => {
    round += 1;
    let i = 0;
    return body.replace(/ [-+0-9.eE]+$/gm, () => ` ${(round * 7 + (i += 1)) % 100}`);
  };
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await check().catch(() => undefined);
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`bench events-nexus: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Subscribe `count` clients of `transport` for `seconds`; their latencies. */
async function measure(
  apiBase: string,
  transport: NexusEventFigure['transport'],
  count: number,
  seconds: number,
): Promise<number[]> {
  const ws = apiBase.replace(/^http/, 'ws');
  const url = transport.startsWith('graphql')
    ? `${ws}/graphql`
    : `${ws}/ws?eventTypes=GPU_UPDATE${transport === 'ws batch' ? '&batch=true' : ''}`;
  const worker = new Worker(SUBSCRIBER_WORKER, {
    eval: true,
    workerData: {
      url,
      transport: transport.startsWith('graphql') ? 'graphql' : 'ws',
      batch: transport.endsWith('batch'),
      wsPath: createRequire(import.meta.url).resolve('ws'),
      count,
      slow: 'none',
      slowUrl: '',
      slowSubscriptions: 0,
    },
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${count} ${transport} clients did not subscribe in 60 s`)),
        60_000,
      );
      worker.on('message', (m: { type: string }) => {
        if (m.type !== 'ready') return;
        clearTimeout(timer);
        resolve();
      });
      worker.once('error', reject);
    });
    // Everything received before this point is dropped: the clients were still subscribing.
    const from = Date.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const report = await new Promise<{ latencies: number[]; received: number[] }>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the ${transport} subscribers did not report in 60 s`)),
        60_000,
      );
      worker.on('message', (m: { type: string; latencies: number[]; received: number[] }) => {
        if (m.type !== 'report') return;
        clearTimeout(timer);
        resolve(m);
      });
      worker.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      worker.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the ${transport} subscriber worker exited (${code}) before reporting`));
      });
      worker.postMessage('report');
    });
    return report.latencies.filter((_, i) => report.received[i]! >= from);
  } finally {
    await worker.terminate();
  }
}

/** Run the deployment, measure each transport, stop everything. */
export async function benchEventsNexus(options: NexusEventOptions = {}): Promise<NexusEventFigures> {
  const seconds = options.seconds ?? 20;
  const intervalMs = options.intervalMs ?? 2000;
  const subscribers = options.subscribers ?? 100;
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  await ensureBuilt(log);
  const template = readFileSync(SAMPLE_PROM_PATH, 'utf8');
  const gpusPerScrape = new Set(
    template
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => `${/Hostname="([^"]*)"/.exec(line)?.[1]}/${/gpu="([^"]*)"/.exec(line)?.[1]}`),
  ).size;
  let pg: PostgresHarness | undefined;
  let etcd: EtcdHandle | undefined;
  const standins: Standin[] = [];
  const procs: CliProcess[] = [];
  try {
    log('bench events-nexus: etcd, PostgreSQL, collector, api, scraping streamer ...');
    // One after the other: a failure of the second must not leave the first unstopped.
    pg = await startPostgres();
    etcd = await startEtcd({ members: 1 });
    for (const body of perHost(template).values()) standins.push(await startStandin({ body: fresh(body) }));
    const env: Record<string, string> = {
      CLUSTER_ID: CLUSTER,
      DATABASE_URL: await pg.createDatabase(`events_nexus_${process.pid}`),
      ETCD_ENDPOINTS: etcd.endpointList,
      ENABLE_NEXUS: 'true',
      REDIS_URL: '',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      WS_MAX_CONNECTIONS: '1000',
    };
    const collector = spawnCli(['collector'], { ...env, COLLECTOR_ID: 'collector-1' }, { built: true });
    procs.push(collector);
    await collector.waitFor(/consuming/, 90_000);
    const port = await freePort();
    const api = spawnCli(['api'], { ...env, PORT: String(port) }, { built: true });
    procs.push(api);
    const apiBase = `http://127.0.0.1:${port}`;
    await waitFor('the API', async () => ((await fetch(`${apiBase}/health`)).ok ? true : undefined));
    const streamer = spawnCli(
      [
        'streamer',
        ...standins.flatMap((t) => ['--scrape', t.url]),
        ...['--scrape-interval', `${intervalMs}ms`],
        ...['--scrape-timeout', `${Math.min(intervalMs, 1000)}ms`],
      ],
      { ...env, SERVICE_ID: 'streamer-1' },
      { built: true },
    );
    procs.push(streamer);
    // Warm: the hierarchy holds the sample's GPUs before anyone subscribes.
    await waitFor('the first scrapes in the hierarchy', async () => {
      const r = await fetch(`${apiBase}/api/v1/clusters/${CLUSTER}`);
      const body = (await r.json()) as { metadata?: { total_gpus?: number } };
      return (body.metadata?.total_gpus ?? 0) >= gpusPerScrape ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 2 * intervalMs));

    const figures: NexusEventFigure[] = [];
    for (const transport of TRANSPORTS) {
      log(`bench events-nexus: ${subscribers} ${transport} subscribers for ${seconds} s ...`);
      const latencies = (await measure(apiBase, transport, subscribers, seconds)).sort((a, b) => a - b);
      if (latencies.length === 0)
        throw new Error(
          `bench events-nexus: no ${transport} event arrived in ${seconds} s:\n${api.output().slice(-2000)}`,
        );
      figures.push({
        transport,
        subscribers,
        deliveries: latencies.length,
        deliveriesPerSec: Math.round(latencies.length / seconds),
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        maxMs: latencies.at(-1)!,
      });
    }
    return {
      intervalMs,
      seconds,
      gpusPerScrape,
      figures,
      loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    };
  } catch (error) {
    const tails = procs.map((p) => `--- ${p.child.spawnargs.slice(2).join(' ')}\n${p.output().slice(-1500)}`);
    throw new Error(`${String(error)}\n${tails.join('\n')}`, { cause: error });
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 10_000))])));
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all([...standins.map((t) => t.close()), etcd?.stop(), pg?.stop()]);
  }
}

/** The figures as a table with met/missed for p99 <= 50 ms. */
export function formatNexusEventFigures(f: NexusEventFigures): string {
  const rows = [
    [
      'transport',
      'subscribers',
      'deliveries',
      'deliveries/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'target p99 <= 50 ms',
    ],
    ...f.figures.map((x) => [
      x.transport,
      String(x.subscribers),
      String(x.deliveries),
      String(x.deliveriesPerSec),
      String(x.p50Ms),
      String(x.p99Ms),
      String(x.maxMs),
      x.p99Ms <= 50 ? 'met' : 'MISSED',
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return (
    `event latency in nexus mode (collector -> etcd -> api -> subscriber), a scrape of ${f.gpusPerScrape} GPUs every ${f.intervalMs} ms, ` +
    `${f.seconds} s per transport; ${cpus().length} cores, load ${f.loadAverage.join('/')}\n` +
    rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n')
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchEventsNexus({
    seconds: intArg('--seconds', 20),
    intervalMs: intArg('--interval-ms', 2000),
    subscribers: intArg('--subscribers', 100),
  }).then(
    (f) => console.log(`\n${formatNexusEventFigures(f)}`),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
