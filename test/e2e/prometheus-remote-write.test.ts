/**
 * Prometheus remote write, end to end with a real Prometheus (Debian `prometheus`): it scrapes a
 * dcgm-exporter stand-in every second and remote-writes to an embedded runtime's POST
 * /api/v1/write. After a few scrapes the stand-in stops (Prometheus then writes staleness markers,
 * which are dropped and counted); once Prometheus has nothing pending and its sent-samples counter
 * stands still, the store holds exactly the (series, timestamp, value) points Prometheus holds for
 * the DCGM metrics, once each, and the last scrape's values equal the bundled CSV.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { metricTotal, startPrometheus, type PrometheusHandle } from '../harness/prometheus.js';
import { startStandin, type Standin } from '../support/dcgm-exporter-standin.js';
import { readSampleRows } from '../support/sample-csv.js';
import { until as waitUntil } from '../support/until.js';

const SCRAPES = 4;
const SERIES = 2470;

interface MatrixSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

let runtime: EmbeddedRuntime;
let standin: Standin | undefined;
let prometheus: PrometheusHandle | undefined;
let instance: string;
let scrapes = 0;

/** Wait for `check`, with Prometheus' last log lines on a timeout. */
const until = (what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> =>
  waitUntil(what, timeoutMs, check, () => prometheus?.output() ?? '');

async function ours(name: string): Promise<number> {
  const text = (await runtime.app.inject({ method: 'GET', url: '/metrics' })).body;
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match === null ? 0 : Number(match[1]);
}

beforeAll(async () => {
  standin = await startStandin();
  instance = new URL(standin.url).host;
  const config = loadConfig(
    {},
    { MEMORY: true, PORT: 0, HOST: '127.0.0.1', CLUSTER_ID: 'prom', LOG_LEVEL: 'silent' },
  );
  runtime = await startEmbedded({ config, logger: createLogger('silent') });
  prometheus = await startPrometheus({
    config: [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: dcgm',
      '    static_configs:',
      `      - targets: ['${instance}']`,
      'remote_write:',
      `  - url: ${runtime.address}/api/v1/write`,
      '    queue_config:',
      '      batch_send_deadline: 1s',
      '      min_backoff: 100ms',
      '      max_backoff: 1s',
      '',
    ].join('\n'),
  });
  const stand = standin;
  await until(`${SCRAPES} scrapes of the stand-in`, 30_000, async () => stand.requests.length >= SCRAPES);
  await stand.close();
  scrapes = stand.requests.length;
  standin = undefined;
  // Prometheus gets no DCGM sample any more; the failed scrape after the stop wrote a staleness
  // marker for each series, after its samples. Wait until all those markers arrived, nothing is
  // pending, and the DCGM samples received stand still. (Prometheus' own series, `up` and
  // `scrape_*`, keep coming every second: its sent-samples counter never stands still.)
  let last = -1;
  let stableSince = Date.now();
  let seen = '';
  await until('Prometheus to finish sending', 30_000, async () => {
    const m = await prometheus!.selfMetrics();
    const pending = metricTotal(m, 'prometheus_remote_storage_samples_pending');
    const failed = metricTotal(m, 'prometheus_remote_storage_samples_failed_total');
    const received = await ours('nexus_remote_write_samples_total');
    const stale = await ours('nexus_remote_write_stale_markers_total');
    seen = JSON.stringify({ pending, failed, received, stale });
    if (received !== last) {
      last = received;
      stableSince = Date.now();
    }
    return stale >= SERIES && pending === 0 && Date.now() - stableSince >= 1500;
  }).catch((error: Error) => {
    throw new Error(`${error.message}\nlast seen: ${seen}`);
  });
  await runtime.drain();
}, 90_000);

afterAll(async () => {
  await prometheus?.stop();
  await standin?.close();
  await runtime?.close();
});

describe('Prometheus remote write into the embedded runtime', () => {
  it('stores exactly the DCGM samples Prometheus holds, once each', async () => {
    const matrix = await prometheus!.api<{ resultType: string; result: MatrixSeries[] }>(
      `/api/v1/query?query=${encodeURIComponent('{__name__=~"DCGM_.+"}[1h]')}&time=${Date.now() / 1000}`,
    );
    expect(matrix.resultType).toBe('matrix');
    expect(matrix.result).toHaveLength(SERIES);
    const key = (host: string, gpu: string, metric: string, ms: number, value: number): string =>
      `${host}|${gpu}|${metric}|${ms}|${value}`;
    const theirs = new Set<string>();
    const perMetricTheirs = new Map<string, number>();
    const gpus = new Set<string>();
    let theirTotal = 0;
    for (const s of matrix.result) {
      const { __name__: name, Hostname: host, gpu } = s.metric as Record<string, string>;
      gpus.add(`${host}|${gpu}`);
      perMetricTheirs.set(name!, (perMetricTheirs.get(name!) ?? 0) + s.values.length);
      theirTotal += s.values.length;
      for (const [t, v] of s.values) theirs.add(key(host!, gpu!, name!, Math.round(t * 1000), Number(v)));
    }
    expect(theirs.size).toBe(theirTotal);

    const stored = await runtime.store.countSamples();
    const mine = new Set<string>();
    const perMetricMine = new Map<string, number>();
    let myTotal = 0;
    for (const g of gpus) {
      const [hostname, gpuId] = g.split('|') as [string, string];
      const rows = await runtime.store.querySamples({
        gpu: { clusterId: 'prom', hostname, gpuId },
        limit: 1_000_000,
      });
      for (const r of rows) {
        mine.add(key(r.hostname, r.gpuId, r.metric, r.timestampMs, r.value));
        perMetricMine.set(r.metric, (perMetricMine.get(r.metric) ?? 0) + 1);
        myTotal += 1;
      }
    }
    const self = await prometheus!.selfMetrics();
    const figures = {
      scrapes,
      prometheusSent: metricTotal(self, 'prometheus_remote_storage_samples_total'),
      prometheusRetried: metricTotal(self, 'prometheus_remote_storage_samples_retried_total'),
      prometheusFailed: metricTotal(self, 'prometheus_remote_storage_samples_failed_total'),
      prometheusSeries: matrix.result.length,
      prometheusSamples: theirTotal,
      storedSamples: stored,
      droppedSeries: await ours('nexus_remote_write_dropped_series_total'),
      staleMarkers: await ours('nexus_remote_write_stale_markers_total'),
      perMetric: Object.fromEntries(perMetricTheirs),
    };
    console.log('remote write figures', JSON.stringify(figures));
    expect(theirTotal).toBeGreaterThanOrEqual(SERIES * (SCRAPES - 1));
    expect(figures.prometheusFailed).toBe(0);
    expect(figures.staleMarkers).toBe(SERIES);
    expect(stored).toBe(theirTotal);
    expect(myTotal).toBe(theirTotal);
    expect(perMetricMine).toEqual(perMetricTheirs);
    expect(mine).toEqual(theirs);
    // Prometheus' own series (up, scrape_*) came too and were dropped, never dead-lettered.
    expect(figures.droppedSeries).toBeGreaterThan(0);
    expect(await runtime.store.listDeadLetters({ source: 'remote-write' })).toEqual([]);
  });

  it("keeps Prometheus' labels and the CSV's values in the last scrape", async () => {
    const latest = await runtime.store.latestSamples('prom');
    expect(latest).toHaveLength(SERIES);
    for (const s of latest) expect(s.labels).toMatchObject({ instance, job: 'dcgm' });
    const key = (h: string, g: string, m: string): string => `${h}|${g}|${m}`;
    const expected = new Map(readSampleRows().map((r) => [key(r.hostname, r.gpuId, r.metric), r.value]));
    expect(new Map(latest.map((s) => [key(s.hostname, s.gpuId, s.metric), s.value]))).toEqual(expected);
    const cluster = (await runtime.app.inject({ method: 'GET', url: '/api/v1/clusters/prom' })).json() as {
      metadata: Record<string, number>;
    };
    expect(cluster.metadata).toMatchObject({ total_hosts: 31, total_gpus: 247 });
  });
});
