/**
 * The PromQL Queryable over a real PGlite store: each matcher type, pushdown and in-memory checks
 * agreeing, the label view of exposition- and CSV-shaped series, merging of series that share one
 * label view, the sample window, and the max-samples limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import type { Sample } from '../../src/domain/types.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { seriesLabels } from '../../src/promql/labels-view.js';
import { parseSeriesSelector } from '../../src/promql/engine.js';
import { StoreQueryable, TOO_MANY_SAMPLES, pushdownFilter } from '../../src/promql/store-queryable.js';
import { PromQLError, type SeriesData } from '../../src/promql/types.js';
import { batch, sample } from '../support/samples.js';

const T0 = Date.parse('2025-07-18T20:42:00Z');
const UTIL = 'DCGM_FI_DEV_GPU_UTIL';
const TEMP = 'DCGM_FI_DEV_GPU_TEMP';

let store: SampleStore;
let queryable: StoreQueryable;

/** An exposition-shaped sample: every dcgm-exporter label plus __name__ in `labels`. */
function exposed(gpu: number, metric: string, t: number, value: number, extra: Partial<Sample> = {}): Sample {
  const host = extra.hostname ?? 'host-a';
  const uuid = `GPU-${host}-${gpu}`;
  return sample({
    hostname: host,
    gpuId: String(gpu),
    uuid,
    device: `nvidia${gpu}`,
    metric,
    timestampMs: t,
    value,
    labels: {
      __name__: metric,
      gpu: String(gpu),
      UUID: uuid,
      device: `nvidia${gpu}`,
      modelName: 'NVIDIA H100 80GB HBM3',
      Hostname: host,
      DCGM_FI_DRIVER_VERSION: '535.129.03',
    },
    ...extra,
  });
}

beforeAll(async () => {
  store = await createPgliteSampleStore({ memory: true });
  await store.migrate();
  const samples: Sample[] = [];
  for (let i = 0; i < 3; i++) {
    for (const gpu of [0, 1]) {
      samples.push(exposed(gpu, UTIL, T0 + i * 10_000, 10 * gpu + i));
      samples.push(exposed(gpu, TEMP, T0 + i * 10_000, 40 + gpu));
    }
    samples.push(
      exposed(0, UTIL, T0 + i * 10_000, 70 + i, {
        hostname: 'host-b',
        pod: 'trainer-0',
        namespace: 'ml',
        container: 'main',
      }),
    );
  }
  // A CSV-shaped series of host-c: labels_raw written by a Prometheus (instance, job), the other
  // rows of the same GPU without labels_raw: one label view once instance/job are dropped...
  const csv = (t: number, v: number, labels: Record<string, string>): Sample =>
    sample({
      hostname: 'host-c',
      gpuId: '3',
      uuid: 'GPU-c-3',
      device: 'nvidia3',
      metric: UTIL,
      timestampMs: t,
      value: v,
      labels,
    });
  samples.push(
    csv(T0, 1, { DCGM_FI_DRIVER_VERSION: '535', instance: 'host-c:9400', job: 'dcgm', __name__: UTIL }),
    csv(T0 + 10_000, 2, { DCGM_FI_DRIVER_VERSION: '535' }),
    csv(T0 + 20_000, 3, { DCGM_FI_DRIVER_VERSION: '535', instance: 'host-c:9400', job: 'dcgm' }),
  );
  await store.writeBatch(batch(samples));
  queryable = new StoreQueryable(store);
});

afterAll(async () => {
  await store?.close();
});

async function select(selector: string, startMs = T0, endMs = T0 + 60_000): Promise<SeriesData[]> {
  return queryable.select({ matchers: parseSeriesSelector(selector), startMs, endMs });
}

const names = (series: SeriesData[]): string[] =>
  series.map((s) => `${s.labels.Hostname}/${s.labels.gpu}/${s.labels.__name__}`).sort();

describe('label view', () => {
  it('shows dcgm-exporter labels plus cluster, without empty values or upstream target labels', async () => {
    const [b] = await select(`${UTIL}{Hostname="host-b"}`);
    expect(b!.labels).toEqual({
      __name__: UTIL,
      gpu: '0',
      UUID: 'GPU-host-b-0',
      device: 'nvidia0',
      modelName: 'NVIDIA H100 80GB HBM3',
      Hostname: 'host-b',
      DCGM_FI_DRIVER_VERSION: '535.129.03',
      container: 'main',
      pod: 'trainer-0',
      namespace: 'ml',
      cluster: 'c1',
    });
    const [a] = await select(`${UTIL}{Hostname="host-a",gpu="0"}`);
    expect(a!.labels).not.toHaveProperty('pod');
    expect(a!.labels).not.toHaveProperty('container');
  });

  it('keeps a series own cluster label and drops the lower-case aliases', () => {
    const labels = seriesLabels(
      sample({ labels: { cluster: 'theirs', uuid: 'x', hostname: 'y', job: 'j', instance: 'i' } }),
    );
    expect(labels.cluster).toBe('theirs');
    expect(Object.keys(labels).sort()).toEqual(
      ['Hostname', 'UUID', '__name__', 'cluster', 'device', 'gpu', 'modelName'].sort(),
    );
  });

  it('merges stored series that share one label view, samples in time order', async () => {
    const series = await select(`${UTIL}{Hostname="host-c"}`);
    expect(series).toHaveLength(1);
    expect(series[0]!.timestamps).toEqual([T0, T0 + 10_000, T0 + 20_000]);
    expect(series[0]!.values).toEqual([1, 2, 3]);
  });
});

describe('matchers', () => {
  it('= on the metric name and an indexed column', async () => {
    expect(names(await select(`${UTIL}{gpu="1"}`))).toEqual(['host-a/1/' + UTIL]);
  });

  it('!= on a label', async () => {
    expect(names(await select(`${TEMP}{gpu!="1"}`))).toEqual(['host-a/0/' + TEMP]);
  });

  it('=~ on the name: literal alternation, prefix and a general regex', async () => {
    expect(await select(`{__name__=~"${UTIL}|${TEMP}", Hostname="host-a"}`)).toHaveLength(4);
    expect(await select(`{__name__=~"DCGM_FI_DEV_.*", Hostname="host-a"}`)).toHaveLength(4);
    expect(names(await select(`{__name__=~".*TEMP", gpu="0"}`))).toEqual(['host-a/0/' + TEMP]);
  });

  it('!~ and a label that is absent matching the empty string', async () => {
    expect(names(await select(`${UTIL}{Hostname!~"host-(a|c)"}`))).toEqual(['host-b/0/' + UTIL]);
    expect(names(await select(`${UTIL}{pod=""}`))).toEqual([
      `host-a/0/${UTIL}`,
      `host-a/1/${UTIL}`,
      `host-c/3/${UTIL}`,
    ]);
    expect(names(await select(`${UTIL}{pod=~"train.*"}`))).toEqual([`host-b/0/${UTIL}`]);
  });

  it('cluster and case-insensitive regexes', async () => {
    expect(await select(`${UTIL}{cluster="c1"}`)).toHaveLength(4);
    expect(await select(`${UTIL}{cluster="other"}`)).toHaveLength(0);
    expect(await select(`${UTIL}{Hostname=~"(?i)HOST-B"}`)).toHaveLength(1);
  });

  it('contradicting equalities select nothing without reading', () => {
    const matchers = parseSeriesSelector(`${UTIL}{gpu="0",gpu="1"}`);
    expect(pushdownFilter(matchers)).toBeUndefined();
    expect(pushdownFilter(parseSeriesSelector(`{__name__="${UTIL}",__name__="${TEMP}"}`))).toBeUndefined();
  });

  it('a bad regex is bad_data', async () => {
    await expect(select(`${UTIL}{Hostname=~"("}`)).rejects.toMatchObject({ errorType: 'bad_data' });
  });
});

describe('window and limits', () => {
  it('returns only samples inside the inclusive window, and no series without one', async () => {
    const [s] = await select(`${UTIL}{Hostname="host-a",gpu="0"}`, T0 + 10_000, T0 + 20_000);
    expect(s!.timestamps).toEqual([T0 + 10_000, T0 + 20_000]);
    expect(s!.values).toEqual([1, 2]);
    expect(await select(UTIL, T0 + 30_000, T0 + 90_000)).toEqual([]);
  });

  it('refuses a selection over maxSamples with Prometheus execution error', async () => {
    const small = new StoreQueryable(store, { maxSamples: 5 });
    const error = await small
      .select({ matchers: parseSeriesSelector(UTIL), startMs: T0, endMs: T0 + 60_000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PromQLError);
    expect(error).toMatchObject({ errorType: 'execution', message: TOO_MANY_SAMPLES });
    const enough = new StoreQueryable(store, { maxSamples: 12 });
    const all = await enough.select({ matchers: parseSeriesSelector(UTIL), startMs: T0, endMs: T0 + 60_000 });
    expect(all.reduce((n, s) => n + s.timestamps.length, 0)).toBe(12);
  });
});

describe('series selector parsing (match[])', () => {
  it('parses a name and every operator with Go string escapes', () => {
    expect(parseSeriesSelector(`${UTIL}{a!~'x\\ty', b=\`raw\\n\`}`)).toEqual(
      [
        { name: 'a', type: '!~', value: 'x\ty' },
        { name: 'b', type: '=', value: 'raw\\n' },
        { name: '__name__', type: '=', value: UTIL },
      ].sort((x, y) => (x.name === '__name__' ? -1 : y.name === '__name__' ? 1 : 0)),
    );
  });

  it('refuses expressions, syntax errors and selectors matching everything', () => {
    for (const bad of ['sum(foo)', 'foo[5m]', 'foo{', '{a=""}', '{a=~".*"}', '']) {
      expect(() => parseSeriesSelector(bad), bad).toThrow(PromQLError);
    }
  });
});
