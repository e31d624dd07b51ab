/**
 * Federation, end to end with a real Prometheus (Debian `prometheus`): an embedded runtime scrapes a
 * dcgm-exporter stand-in once (247 active GPUs, 2,470 series), then a Prometheus scrapes our
 * /federate with `honor_labels: true` every second. Prometheus ends up holding exactly the newest
 * stored sample of every active GPU series, once each: the same count, the same label sets (ours
 * plus the `instance` and `job` Prometheus attaches), the same values and timestamps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { seriesLabels } from '../../src/promql/labels-view.js';
import { labelsKey } from '../../src/promql/labels.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { startPrometheus, type PrometheusHandle } from '../harness/prometheus.js';
import { startStandin, type Standin } from '../support/dcgm-exporter-standin.js';
import { until as waitUntil } from '../support/until.js';

const SERIES = 2470;
const MATCH = '{__name__=~"DCGM_.+"}';

interface MatrixSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

let runtime: EmbeddedRuntime;
let standin: Standin | undefined;
let prometheus: PrometheusHandle | undefined;
let ourHost: string;

/** Wait for `check`, with Prometheus' last log lines on a timeout. */
const until = (what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> =>
  waitUntil(what, timeoutMs, check, () => prometheus?.output() ?? '');

beforeAll(async () => {
  standin = await startStandin();
  const config = loadConfig(
    {},
    {
      MEMORY: true,
      PORT: 0,
      HOST: '127.0.0.1',
      CLUSTER_ID: 'fed',
      LOG_LEVEL: 'silent',
      SCRAPE_TARGETS: standin.url,
      SCRAPE_INTERVAL: '10s',
      SCRAPE_TIMEOUT: '5s',
      // The GPUs stay active for the whole test, however loaded the machine is.
      STALE_AFTER: '1h',
    },
  );
  runtime = await startEmbedded({ config, logger: createLogger('silent') });
  const summary = await runtime.scrape({ rounds: 1 });
  expect(summary.refusedByStore).toBe(0);
  await standin.close();
  standin = undefined;
  ourHost = new URL(runtime.address!).host;
  prometheus = await startPrometheus({
    config: [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: nexus-federate',
      '    honor_labels: true',
      '    metrics_path: /federate',
      '    params:',
      `      'match[]': ['${MATCH}']`,
      '    static_configs:',
      `      - targets: ['${ourHost}']`,
      '',
    ].join('\n'),
  });
  const prom = prometheus;
  await until(`Prometheus to hold ${SERIES} federated series`, 60_000, async () => {
    const v = await prom
      .api<{ result: { value: [number, string] }[] }>(
        `/api/v1/query?query=${encodeURIComponent(`count(${MATCH})`)}`,
      )
      .catch(() => ({ result: [] }));
    return Number(v.result[0]?.value[1] ?? 0) >= SERIES;
  });
  // A few more scrapes of the same samples must not add any.
  const scrapesBefore = await scrapeCount(prom);
  await until(
    'three more scrapes of /federate',
    30_000,
    async () => (await scrapeCount(prom)) >= scrapesBefore + 3,
  );
}, 120_000);

/** Samples Prometheus scraped from us so far, summed over its scrapes (`scrape_samples_scraped`). */
async function scrapeCount(prom: PrometheusHandle): Promise<number> {
  const v = await prom.api<{ result: { value: [number, string] }[] }>(
    `/api/v1/query?query=${encodeURIComponent('count_over_time(scrape_samples_scraped{job="nexus-federate"}[10m])')}`,
  );
  return Number(v.result[0]?.value[1] ?? 0);
}

afterAll(async () => {
  await prometheus?.stop();
  await standin?.close();
  await runtime?.close();
});

describe('Prometheus federating from /federate', () => {
  it('holds exactly the newest stored sample of every active GPU series: count, labels, values, times', async () => {
    const stored = await runtime.store.latestSamples('fed');
    expect(stored).toHaveLength(SERIES);
    const ours = new Map(stored.map((s) => [labelsKey(seriesLabels(s)), s]));
    expect(ours.size).toBe(SERIES);

    const matrix = await prometheus!.api<{ resultType: string; result: MatrixSeries[] }>(
      `/api/v1/query?query=${encodeURIComponent(`${MATCH}[1h]`)}&time=${Date.now() / 1000}`,
    );
    expect(matrix.resultType).toBe('matrix');
    expect(matrix.result).toHaveLength(SERIES);
    const seen = new Set<string>();
    for (const series of matrix.result) {
      const { instance, job, ...labels } = series.metric;
      expect([instance, job]).toEqual([ourHost, 'nexus-federate']);
      const key = labelsKey(labels);
      const mine = ours.get(key);
      expect(mine, `Prometheus holds a series we do not: ${JSON.stringify(labels)}`).toBeDefined();
      expect(seen.has(key)).toBe(false);
      seen.add(key);
      // Scraped several times, the same timestamped sample is stored once.
      expect(series.values).toHaveLength(1);
      const [t, v] = series.values[0]!;
      expect(Math.round(t * 1000)).toBe(mine!.timestampMs);
      expect(Number(v)).toBe(mine!.value);
    }
    expect(seen.size).toBe(SERIES);
  });

  it('shows dcgm-exporter labels plus cluster, with # TYPE lines dashboards rely on', async () => {
    const response = await fetch(
      `${runtime.address}/federate?match[]=${encodeURIComponent('DCGM_FI_DEV_GPU_UTIL')}`,
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    expect(text.split('\n')[0]).toBe('# TYPE DCGM_FI_DEV_GPU_UTIL gauge');
    const lines = text.split('\n').filter((l) => l.startsWith('DCGM_FI_DEV_GPU_UTIL{'));
    expect(lines).toHaveLength(247);
    for (const name of ['gpu', 'UUID', 'device', 'modelName', 'Hostname', 'cluster']) {
      expect(lines[0]).toContain(`${name}="`);
    }
    expect(lines[0]).toContain('cluster="fed"');
  });
});
