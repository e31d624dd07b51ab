/**
 * PromQL evaluation over small in-memory series, every expected value worked out by hand from
 * Prometheus 2.42's definitions (the arithmetic is in the comments): selectors and lookback,
 * offset and @, rate-family extrapolation, *_over_time, aggregations, binary and set operators,
 * the other functions, range queries, subqueries, limits and the timeout.
 */
import { describe, expect, it } from 'vitest';
import { instantQuery, rangeQuery } from '../../src/promql/engine.js';
import { matches } from '../../src/promql/labels.js';
import {
  PromQLError,
  type Labels,
  type Queryable,
  type QueryValue,
  type SeriesData,
  type SeriesSelection,
} from '../../src/promql/types.js';

const M = 60_000;

/** A Queryable over an array, recording every selection it answers. */
class MemoryQueryable implements Queryable {
  readonly selections: SeriesSelection[] = [];
  constructor(private readonly series: SeriesData[]) {}
  async select(sel: SeriesSelection): Promise<SeriesData[]> {
    this.selections.push(sel);
    const out: SeriesData[] = [];
    for (const s of this.series) {
      if (!sel.matchers.every((m) => matches(m, s.labels))) continue;
      const idx = s.timestamps.flatMap((t, i) => (t >= sel.startMs && t <= sel.endMs ? [i] : []));
      if (idx.length === 0) continue;
      out.push({
        labels: s.labels,
        timestamps: idx.map((i) => s.timestamps[i]!),
        values: idx.map((i) => s.values[i]!),
      });
    }
    return out;
  }
}

function series(labels: Labels, points: [minutes: number, value: number][]): SeriesData {
  return { labels, timestamps: points.map(([m]) => m * M), values: points.map(([, v]) => v) };
}

// c: a counter sampled every minute with a reset at 3m. g: a counter starting at 1 at 1m.
// gauge{gpu="0"/"1"}: two gauges. info: a series for group_left.
const data = new MemoryQueryable([
  series({ __name__: 'c', job: 'a' }, [
    [0, 0],
    [1, 10],
    [2, 20],
    [3, 5],
    [4, 15],
  ]),
  series({ __name__: 'g', job: 'a' }, [
    [1, 1],
    [2, 11],
  ]),
  series({ __name__: 'gauge', gpu: '0', host: 'h1' }, [
    [0, 1],
    [1, 2],
    [2, 3],
    [3, 4],
    [4, 5],
  ]),
  series({ __name__: 'gauge', gpu: '1', host: 'h1' }, [
    [0, 10],
    [1, 8],
    [2, 8],
    [3, 2],
    [4, 7],
  ]),
  series({ __name__: 'gauge', gpu: '2', host: 'h2' }, [
    [0, -3],
    [4, 0.5],
  ]),
  series({ __name__: 'info', host: 'h1', model: 'A100' }, [
    [0, 1],
    [4, 1],
  ]),
  series({ __name__: 'info', host: 'h2', model: 'H100' }, [
    [0, 1],
    [4, 1],
  ]),
]);

/** The instant query's result as `{labels-string: value}`. */
async function at(query: string, minutes: number, q: Queryable = data): Promise<Record<string, number>> {
  return toMap(await instantQuery(query, minutes * M, q));
}

function toMap(v: QueryValue): Record<string, number> {
  if (v.resultType === 'scalar') return { scalar: v.result.v };
  if (v.resultType !== 'vector') throw new Error(`unexpected ${v.resultType}`);
  const out: Record<string, number> = {};
  for (const s of v.result) out[key(s.metric)] = s.point.v;
  return out;
}

function key(l: Labels): string {
  return `{${Object.keys(l)
    .sort()
    .map((k) => `${k}="${l[k]}"`)
    .join(',')}}`;
}

async function fails(promise: Promise<unknown>, type: string, message: RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PromQLError);
  expect((err as PromQLError).errorType).toBe(type);
  expect((err as PromQLError).message).toMatch(message);
}

describe('selectors', () => {
  it('takes the latest sample within the 5m lookback, inclusive at both ends', async () => {
    // gauge{gpu="2"} has samples at 0m and 4m: at 3m the 0m sample (-3); at 9m the 4m one (9-5=4,
    // still inside); at 9m + 1ms nothing.
    expect(await at('gauge{gpu="2"}', 3)).toEqual({ '{__name__="gauge",gpu="2",host="h2"}': -3 });
    expect(await at('gauge{gpu="2"}', 9)).toEqual({ '{__name__="gauge",gpu="2",host="h2"}': 0.5 });
    expect(toMap(await instantQuery('gauge{gpu="2"}', 9 * M + 1, data))).toEqual({});
  });

  it('applies =, !=, =~ and !~ with anchored regexes', async () => {
    expect(Object.keys(await at('gauge{gpu=~"0|1"}', 4))).toHaveLength(2);
    expect(Object.keys(await at('gauge{gpu!~"0|1"}', 4))).toEqual(['{__name__="gauge",gpu="2",host="h2"}']);
    expect(Object.keys(await at('gauge{gpu=~"1.*",host!="h2"}', 4))).toEqual([
      '{__name__="gauge",gpu="1",host="h1"}',
    ]);
    expect(Object.keys(await at('gauge{host=~"H1"}', 4))).toEqual([]);
    expect(Object.keys(await at('gauge{host=~"(?i)H1"}', 4))).toHaveLength(2);
  });

  it('shifts by offset (also negative) and pins with @ (seconds, start(), end())', async () => {
    expect(await at('c offset 2m', 4)).toEqual({ '{__name__="c",job="a"}': 20 });
    expect(await at('c offset -1m', 3)).toEqual({ '{__name__="c",job="a"}': 15 });
    expect(await at('c @ 60', 4)).toEqual({ '{__name__="c",job="a"}': 10 });
    expect(await at('c @ 120 offset 1m', 4)).toEqual({ '{__name__="c",job="a"}': 10 });
    const r = await rangeQuery('c @ start()', 1 * M, 3 * M, M, data);
    expect(r.resultType === 'matrix' && r.result[0]!.points.map((p) => p.v)).toEqual([10, 10, 10]);
    const e = await rangeQuery('c @ end()', 1 * M, 3 * M, M, data);
    expect(e.resultType === 'matrix' && e.result[0]!.points.map((p) => p.v)).toEqual([5, 5, 5]);
  });

  it('returns a range selector as a matrix, closed at both ends', async () => {
    // c[2m] at 4m: samples at 2m, 3m, 4m (2m = 4m - 2m is included).
    const r = await instantQuery('c[2m]', 4 * M, data);
    expect(r).toEqual({
      resultType: 'matrix',
      result: [
        {
          metric: { __name__: 'c', job: 'a' },
          points: [
            { t: 2 * M, v: 20 },
            { t: 3 * M, v: 5 },
            { t: 4 * M, v: 15 },
          ],
        },
      ],
    });
  });
});

describe('rate family', () => {
  it('rate: counter resets add the value before the reset', async () => {
    // c[3m] at 4m: 10, 20, 5, 15 at 1..4m. delta 15-10=5, reset 20->5 adds 20: 25.
    // First/last samples sit on the range edges (no extrapolation): 25 / 180s.
    expect(await at('rate(c[3m])', 4)).toEqual({ '{job="a"}': 25 / 180 });
    expect(await at('increase(c[3m])', 4)).toEqual({ '{job="a"}': 25 });
    expect(await at('resets(c[5m])', 4)).toEqual({ '{job="a"}': 1 });
    expect(await at('changes(c[5m])', 4)).toEqual({ '{job="a"}': 4 });
  });

  it('extrapolates by up to 1.1 average intervals, else by half an interval', async () => {
    // c[2m] at 2.5m: samples 1m (10), 2m (20). 30s to each edge < 1.1*60s: extrapolate over
    // 60+30+30 = 120s: 10 * 120/60 = 20.
    expect(toMap(await instantQuery('increase(c[2m])', 2.5 * M, data))).toEqual({ '{job="a"}': 20 });
    // c[4m] at 3.5m: samples 0m..3m = 0,10,20,5; increase 5 + 20 = 25 over 180s; 30s to the start
    // edge... the range starts at -0.5m: 30s < 66s; end edge 30s: 25 * (180+30+30)/180.
    // Zero point: 180 * (0/25) = 0 < 30, so the start extrapolation is capped at 0s:
    // 25 * (180 + 0 + 30) / 180.
    expect(toMap(await instantQuery('increase(c[4m])', 3.5 * M, data))).toEqual({
      '{job="a"}': (25 * 210) / 180,
    });
  });

  it('caps the start extrapolation at the counter zero point', async () => {
    // g[2m] at 2.5m: 1 at 1m, 11 at 2m: increase 10 over 60s. To the start edge 30s, but the zero
    // point is 60 * 1/10 = 6s before the first sample: 10 * (60 + 6 + 30) / 60 = 16.
    expect(toMap(await instantQuery('increase(g[2m])', 2.5 * M, data))).toEqual({ '{job="a"}': 16 });
  });

  it('delta does not treat drops as resets; irate/idelta use the last two samples', async () => {
    // gauge{gpu="1"}[3m] at 4m: 8, 8, 2, 7 at 1..4m: 7-8 = -1.
    expect((await at('delta(gauge{gpu="1"}[3m])', 4))['{gpu="1",host="h1"}']).toBe(-1);
    // last two: 2 -> 7: idelta 5, irate 5/60.
    expect((await at('idelta(gauge{gpu="1"}[3m])', 4))['{gpu="1",host="h1"}']).toBe(5);
    expect((await at('irate(gauge{gpu="1"}[3m])', 4))['{gpu="1",host="h1"}']).toBe(5 / 60);
    // irate over a drop takes the last value: 8 -> 2 at 3m: 2/60.
    expect((await at('irate(gauge{gpu="1"}[2m])', 3))['{gpu="1",host="h1"}']).toBe(2 / 60);
  });

  it('needs two samples; deriv is the least-squares slope per second', async () => {
    expect(await at('rate(gauge{gpu="2"}[1m])', 4)).toEqual({});
    // gauge{gpu="0"} rises by 1 per minute: slope 1/60.
    expect((await at('deriv(gauge{gpu="0"}[4m])', 4))['{gpu="0",host="h1"}']).toBeCloseTo(1 / 60, 15);
    expect((await at('deriv(info{host="h1"}[5m])', 4))['{host="h1",model="A100"}']).toBe(0);
  });
});

describe('*_over_time', () => {
  it('aggregates each series over its range and drops the name (except last_over_time)', async () => {
    // gauge{gpu="1"}[4m] at 4m: 10, 8, 8, 2, 7.
    const q = (f: string) => at(`${f}(gauge{gpu="1"}[4m])`, 4).then((r) => r['{gpu="1",host="h1"}']);
    expect(await q('avg_over_time')).toBeCloseTo(35 / 5, 12);
    expect(await q('sum_over_time')).toBe(35);
    expect(await q('min_over_time')).toBe(2);
    expect(await q('max_over_time')).toBe(10);
    expect(await q('count_over_time')).toBe(5);
    expect(await q('present_over_time')).toBe(1);
    // population variance: mean 7, squared deviations 9+1+1+25+0 = 36, /5 = 7.2.
    expect(await q('stdvar_over_time')).toBeCloseTo(7.2, 12);
    expect(await q('stddev_over_time')).toBeCloseTo(Math.sqrt(7.2), 12);
    expect(await at('last_over_time(gauge{gpu="1"}[4m])', 4)).toEqual({
      '{__name__="gauge",gpu="1",host="h1"}': 7,
    });
  });

  it('quantile_over_time interpolates between ranks; phi outside [0,1] is +-Inf', async () => {
    // sorted 2, 7, 8, 8, 10; phi 0.3: rank 0.3*4 = 1.2 -> 7*0.8 + 8*0.2 = 7.2.
    expect((await at('quantile_over_time(0.3, gauge{gpu="1"}[4m])', 4))['{gpu="1",host="h1"}']).toBeCloseTo(
      7.2,
      12,
    );
    expect((await at('quantile_over_time(2, gauge{gpu="1"}[4m])', 4))['{gpu="1",host="h1"}']).toBe(Infinity);
    expect((await at('quantile_over_time(-1, gauge{gpu="1"}[4m])', 4))['{gpu="1",host="h1"}']).toBe(
      -Infinity,
    );
  });

  it('absent_over_time answers 1 with the equality labels when nothing is in range', async () => {
    expect(await at('absent_over_time(gauge{gpu="2"}[1m])', 2)).toEqual({ '{gpu="2"}': 1 });
    expect(await at('absent_over_time(gauge{gpu="2"}[1m])', 4)).toEqual({});
  });
});

describe('aggregations', () => {
  // gauge at 4m: gpu0=5 (h1), gpu1=7 (h1), gpu2=0.5 (h2).
  it('sum, avg, min, max, count, group with by/without', async () => {
    expect(await at('sum(gauge)', 4)).toEqual({ '{}': 12.5 });
    expect(await at('sum by (host) (gauge)', 4)).toEqual({ '{host="h1"}': 12, '{host="h2"}': 0.5 });
    expect(await at('sum without (gpu) (gauge)', 4)).toEqual({ '{host="h1"}': 12, '{host="h2"}': 0.5 });
    expect(await at('avg by (host) (gauge)', 4)).toEqual({ '{host="h1"}': 6, '{host="h2"}': 0.5 });
    expect(await at('min(gauge)', 4)).toEqual({ '{}': 0.5 });
    expect(await at('max(gauge) by (host)', 4)).toEqual({ '{host="h1"}': 7, '{host="h2"}': 0.5 });
    expect(await at('count(gauge)', 4)).toEqual({ '{}': 3 });
    expect(await at('group by (host) (gauge)', 4)).toEqual({ '{host="h1"}': 1, '{host="h2"}': 1 });
    expect(await at('sum by (__name__) (gauge)', 4)).toEqual({ '{__name__="gauge"}': 12.5 });
  });

  it('stddev/stdvar are population statistics', async () => {
    // h1: 5 and 7, mean 6, variance (1+1)/2 = 1.
    expect(await at('stdvar by (host) (gauge)', 4)).toEqual({ '{host="h1"}': 1, '{host="h2"}': 0 });
    expect(await at('stddev by (host) (gauge)', 4)).toEqual({ '{host="h1"}': 1, '{host="h2"}': 0 });
  });

  it('topk/bottomk keep the full labels; k < 1 is empty', async () => {
    expect(await at('topk(2, gauge)', 4)).toEqual({
      '{__name__="gauge",gpu="1",host="h1"}': 7,
      '{__name__="gauge",gpu="0",host="h1"}': 5,
    });
    expect(await at('bottomk by (host) (1, gauge)', 4)).toEqual({
      '{__name__="gauge",gpu="0",host="h1"}': 5,
      '{__name__="gauge",gpu="2",host="h2"}': 0.5,
    });
    expect(await at('topk(0, gauge)', 4)).toEqual({});
    await fails(
      instantQuery('topk(scalar(gauge{gpu="9"}), gauge)', 4 * M, data),
      'execution',
      /overflows int64/,
    );
  });

  it('quantile interpolates; count_values adds its label with Go float formatting', async () => {
    // sorted 0.5, 5, 7; phi 0.75: rank 1.5 -> 5*0.5 + 7*0.5 = 6.
    expect(await at('quantile(0.75, gauge)', 4)).toEqual({ '{}': 6 });
    expect(await at('quantile(1.5, gauge)', 4)).toEqual({ '{}': Infinity });
    expect(await at('count_values("v", gauge)', 4)).toEqual({ '{v="5"}': 1, '{v="7"}': 1, '{v="0.5"}': 1 });
    expect(await at('count_values by (host) ("v", gauge * 0 + 1e21)', 4)).toEqual({
      '{host="h1",v="1000000000000000000000"}': 2,
      '{host="h2",v="1000000000000000000000"}': 1,
    });
  });
});

describe('binary operators', () => {
  it('arithmetic with scalars drops the name; Go semantics for % and ^', async () => {
    expect(await at('gauge{gpu="1"} * 2', 4)).toEqual({ '{gpu="1",host="h1"}': 14 });
    expect(await at('10 - gauge{gpu="1"}', 4)).toEqual({ '{gpu="1",host="h1"}': 3 });
    expect(await at('gauge{gpu="1"} % 4', 4)).toEqual({ '{gpu="1",host="h1"}': 3 });
    expect(await at('-gauge{gpu="1"} % 4', 4)).toEqual({ '{gpu="1",host="h1"}': -3 });
    expect(await at('2 ^ 3 ^ 2', 0)).toEqual({ scalar: 512 });
    expect(await at('1 ^ NaN', 0)).toEqual({ scalar: 1 });
    expect(await at('-1 ^ 0.5', 0)).toEqual({ scalar: -1 });
  });

  it('comparisons filter and keep the vector value; bool gives 0/1 and drops the name', async () => {
    expect(await at('gauge > 4', 4)).toEqual({
      '{__name__="gauge",gpu="0",host="h1"}': 5,
      '{__name__="gauge",gpu="1",host="h1"}': 7,
    });
    expect(await at('6 < gauge', 4)).toEqual({ '{__name__="gauge",gpu="1",host="h1"}': 7 });
    expect(await at('gauge > bool 6', 4)).toEqual({
      '{gpu="0",host="h1"}': 0,
      '{gpu="1",host="h1"}': 1,
      '{gpu="2",host="h2"}': 0,
    });
    expect(await at('2 > bool 1', 0)).toEqual({ scalar: 1 });
  });

  it('matches vectors one-to-one on all labels but the name; on/ignoring narrow it', async () => {
    // gauge - gauge offset 1m at 4m: gpu0 5-4, gpu1 7-2; gpu2 has no sample in 3m's lookback? It
    // does (0m sample, -3): 0.5 - -3 = 3.5.
    expect(await at('gauge - gauge offset 1m', 4)).toEqual({
      '{gpu="0",host="h1"}': 1,
      '{gpu="1",host="h1"}': 5,
      '{gpu="2",host="h2"}': 3.5,
    });
    // comparison between vectors keeps the lhs name.
    expect(Object.keys(await at('gauge >= gauge', 4))).toContain('{__name__="gauge",gpu="0",host="h1"}');
    expect(await at('sum by (host) (gauge) / on(host) sum by (host) (info)', 4)).toEqual({
      '{host="h1"}': 12,
      '{host="h2"}': 0.5,
    });
  });

  it('group_left copies the include labels from the one side', async () => {
    expect(await at('gauge * on(host) group_left(model) info', 4)).toEqual({
      '{gpu="0",host="h1",model="A100"}': 5,
      '{gpu="1",host="h1",model="A100"}': 7,
      '{gpu="2",host="h2",model="H100"}': 0.5,
    });
    expect(await at('info * on(host) group_right gauge{gpu="2"}', 4)).toEqual({ '{gpu="2",host="h2"}': 0.5 });
  });

  it('refuses many-to-many and ambiguous one-to-one matches (execution errors)', async () => {
    await fails(
      instantQuery('info + on(host) gauge', 4 * M, data),
      'execution',
      /found duplicate series for the match group \{host="h1"\} on the right hand-side/,
    );
    // Unique on the right, two h1 series on the left: one-to-one must be made explicit.
    await fails(
      instantQuery('gauge + on(host) info', 4 * M, data),
      'execution',
      /many-to-one matching must be explicit/,
    );
    await fails(instantQuery('abs({__name__=~"c|g"})', 2 * M, data), 'execution', /same labelset/);
  });

  it('and, or, unless keep labels and values of the kept side', async () => {
    expect(await at('gauge and on(host) info{model="H100"}', 4)).toEqual({
      '{__name__="gauge",gpu="2",host="h2"}': 0.5,
    });
    expect(await at('gauge unless on(host) info{model="H100"}', 4)).toEqual({
      '{__name__="gauge",gpu="0",host="h1"}': 5,
      '{__name__="gauge",gpu="1",host="h1"}': 7,
    });
    expect(await at('gauge{gpu="0"} or on(host) info', 4)).toEqual({
      '{__name__="gauge",gpu="0",host="h1"}': 5,
      '{__name__="info",host="h2",model="H100"}': 1,
    });
  });
});

describe('other functions', () => {
  it('math functions drop the name', async () => {
    expect(await at('abs(gauge{gpu="2"})', 3)).toEqual({ '{gpu="2",host="h2"}': 3 });
    expect(await at('sqrt(gauge{gpu="0"} - 1)', 4)).toEqual({ '{gpu="0",host="h1"}': 2 });
    expect(await at('sgn(gauge{gpu="2"})', 3)).toEqual({ '{gpu="2",host="h2"}': -1 });
    expect(await at('ceil(gauge{gpu="2"})', 4)).toEqual({ '{gpu="2",host="h2"}': 1 });
    expect(await at('floor(gauge{gpu="2"})', 4)).toEqual({ '{gpu="2",host="h2"}': 0 });
    expect(
      await at('exp(ln(gauge{gpu="0"}))', 4)['{gpu="0",host="h1"}'.length ? 'then' : 'then'](
        (r) => r['{gpu="0",host="h1"}'],
      ),
    ).toBeCloseTo(5, 12);
    expect(await at('log2(gauge{gpu="1"} + 1)', 4)).toEqual({ '{gpu="1",host="h1"}': 3 });
    expect(await at('log10(gauge{gpu="1"} + 3)', 4)).toEqual({ '{gpu="1",host="h1"}': 1 });
  });

  it('round ties up, to a multiple; clamp/clamp_min/clamp_max', async () => {
    // 0.5 rounds to 1; -2.5 rounds to -2 (floor(x + 0.5)); 7 to the nearest 5 is 5; 7.5 is 10.
    expect(await at('round(gauge{gpu="2"})', 4)).toEqual({ '{gpu="2",host="h2"}': 1 });
    expect(await at('round(gauge{gpu="2"} - 3)', 4)).toEqual({ '{gpu="2",host="h2"}': -2 });
    expect(await at('round(gauge{gpu="1"}, 5)', 4)).toEqual({ '{gpu="1",host="h1"}': 5 });
    expect(await at('clamp(gauge, 1, 6)', 4)).toEqual({
      '{gpu="0",host="h1"}': 5,
      '{gpu="1",host="h1"}': 6,
      '{gpu="2",host="h2"}': 1,
    });
    expect(await at('clamp(gauge, 6, 1)', 4)).toEqual({});
    expect(await at('clamp_min(gauge{gpu="2"}, 2)', 4)).toEqual({ '{gpu="2",host="h2"}': 2 });
    expect(await at('clamp_max(gauge{gpu="1"}, 2)', 4)).toEqual({ '{gpu="1",host="h1"}': 2 });
  });

  it('label_replace and label_join rewrite labels (name kept)', async () => {
    expect(await at('label_replace(gauge{gpu="1"}, "dev", "nvidia$1", "gpu", "(.*)")', 4)).toEqual({
      '{__name__="gauge",dev="nvidia1",gpu="1",host="h1"}': 7,
    });
    // No match: unchanged. Empty result: the label is removed.
    expect(await at('label_replace(gauge{gpu="1"}, "dev", "x", "gpu", "9")', 4)).toEqual({
      '{__name__="gauge",gpu="1",host="h1"}': 7,
    });
    expect(await at('label_replace(gauge{gpu="1"}, "host", "", "gpu", ".*")', 4)).toEqual({
      '{__name__="gauge",gpu="1"}': 7,
    });
    expect(await at('label_join(gauge{gpu="1"}, "id", "/", "host", "gpu")', 4)).toEqual({
      '{__name__="gauge",gpu="1",host="h1",id="h1/1"}': 7,
    });
    await fails(
      instantQuery('label_replace(gauge, "gpu", "x", "gpu", ".*")', 4 * M, data),
      'execution',
      /duplicated label set/,
    );
  });

  it('absent, scalar, vector, time, timestamp, sort, sort_desc', async () => {
    expect(await at('absent(nope{a="1",b=~"x"})', 4)).toEqual({ '{a="1"}': 1 });
    expect(await at('absent(gauge)', 4)).toEqual({});
    expect(await at('scalar(gauge{gpu="1"})', 4)).toEqual({ scalar: 7 });
    expect(await at('scalar(gauge)', 4)).toEqual({ scalar: NaN });
    expect(await at('vector(2) + time()', 2)).toEqual({ '{}': 122 });
    // timestamp of a selector is the sample's own time: gpu2's 0m sample seen at 3m.
    expect(await at('timestamp(gauge{gpu="2"})', 3)).toEqual({ '{gpu="2",host="h2"}': 0 });
    const sorted = await instantQuery('sort_desc(gauge)', 4 * M, data);
    expect(sorted.resultType === 'vector' && sorted.result.map((s) => s.point.v)).toEqual([7, 5, 0.5]);
    const asc = await instantQuery('sort(gauge)', 4 * M, data);
    expect(asc.resultType === 'vector' && asc.result.map((s) => s.point.v)).toEqual([0.5, 5, 7]);
  });
});

describe('range queries', () => {
  it('evaluates every step; a series is present only at steps where it has a value', async () => {
    const r = await rangeQuery('gauge > 4', 0, 4 * M, M, data);
    expect(r).toEqual({
      resultType: 'matrix',
      result: [
        { metric: { __name__: 'gauge', gpu: '0', host: 'h1' }, points: [{ t: 4 * M, v: 5 }] },
        {
          metric: { __name__: 'gauge', gpu: '1', host: 'h1' },
          points: [
            { t: 0, v: 10 },
            { t: M, v: 8 },
            { t: 2 * M, v: 8 },
            { t: 4 * M, v: 7 },
          ],
        },
      ],
    });
  });

  it('turns a scalar into one label-less series and refuses range-vector and string types', async () => {
    expect(await rangeQuery('time() * 2', 0, 2 * M, M, data)).toEqual({
      resultType: 'matrix',
      result: [
        {
          metric: {},
          points: [
            { t: 0, v: 0 },
            { t: M, v: 120 },
            { t: 2 * M, v: 240 },
          ],
        },
      ],
    });
    await fails(
      rangeQuery('gauge[1m]', 0, M, M, data),
      'bad_data',
      /invalid expression type "range vector" for range query/,
    );
    await fails(rangeQuery('"s"', 0, M, M, data), 'bad_data', /invalid expression type "string"/);
    await fails(rangeQuery('gauge', 0, M, 0, data), 'bad_data', /step/);
  });

  it('fails when a range-vector function maps two series to one label set, even at different steps', async () => {
    // a{job="x"} has values only around 1m, b{job="x"} only around 6m: rate() drops the names, so
    // both become {job="x"} (Prometheus checks the whole output matrix).
    const q = new MemoryQueryable([
      series({ __name__: 'a', job: 'x' }, [
        [0, 1],
        [1, 2],
      ]),
      series({ __name__: 'b', job: 'x' }, [
        [5, 1],
        [6, 2],
      ]),
    ]);
    await fails(rangeQuery('rate({job="x"}[1m])', 0, 6 * M, M, q), 'execution', /same labelset/);
    // last_over_time keeps the names: no clash.
    const r = await rangeQuery('last_over_time({job="x"}[1m])', 0, 6 * M, M, q);
    expect(r.resultType === 'matrix' && r.result.map((x) => x.metric.__name__)).toEqual(['a', 'b']);
  });

  it('selects once per selector with the whole window', async () => {
    const q = new MemoryQueryable([]);
    await rangeQuery('rate(c[5m] offset 1m) + c', 10 * M, 20 * M, M, q);
    expect(q.selections.map((s) => [s.startMs, s.endMs])).toEqual([
      [10 * M - 6 * M, 20 * M - M],
      [10 * M - 5 * M, 20 * M],
    ]);
  });

  it('answers the same values at each step as instant queries', async () => {
    const r = await rangeQuery('sum by (host) (rate(gauge[2m]))', M, 4 * M, 30_000, data);
    if (r.resultType !== 'matrix') throw new Error('matrix expected');
    for (const s of r.result) {
      for (const p of s.points) {
        const inst = await instantQuery('sum by (host) (rate(gauge[2m]))', p.t, data);
        const v =
          inst.resultType === 'vector'
            ? inst.result.find((x) => x.metric.host === s.metric.host)?.point.v
            : undefined;
        expect(v).toBe(p.v);
      }
    }
  });
});

describe('subqueries', () => {
  it('evaluates the inner query at step-aligned times in [t - range, t]', async () => {
    // sum(gauge) at 2m, 3m, 4m: 13, 6 + 4 - 3... per step: 2m: 3+8-3 = 8, 3m: 4+2-3 = 3, 4m: 5+7+0.5 = 12.5.
    expect(await at('max_over_time(sum(gauge)[2m:1m])', 4)).toEqual({ '{}': 12.5 });
    expect(await at('min_over_time(sum(gauge)[2m:1m])', 4)).toEqual({ '{}': 3 });
    // default step (1m) and offset: inner times 1m, 2m, 3m: 0m..: 1m: 2+8-3 = 7.
    expect(await at('max_over_time(sum(gauge)[2m:] offset 1m)', 4)).toEqual({ '{}': 8 });
  });

  it('feeds rate with the subquery range', async () => {
    // c sampled by the subquery at 1m..4m: 10, 20, 5, 15 -> same as rate(c[3m]) at 4m.
    expect(await at('rate(c[3m:1m])', 4)).toEqual({ '{job="a"}': 25 / 180 });
  });
});

describe('limits', () => {
  it('refuses to load more samples than maxSamples', async () => {
    await fails(instantQuery('c[10m]', 4 * M, data, { maxSamples: 3 }), 'execution', /too many samples/);
    expect(toMap(await instantQuery('c', 4 * M, data, { maxSamples: 10 }))).toEqual({
      '{__name__="c",job="a"}': 15,
    });
  });

  it('stops with a timeout error once the signal fires', async () => {
    const controller = new AbortController();
    controller.abort();
    await fails(
      rangeQuery('c', 0, 1000 * M, M, data, { signal: controller.signal }),
      'timeout',
      /query timed out/,
    );
  });

  it('honours a custom lookback', async () => {
    expect(await at('gauge{gpu="2"}', 3)).not.toEqual({});
    expect(toMap(await instantQuery('gauge{gpu="2"}', 3 * M, data, { lookbackMs: M }))).toEqual({});
  });
});
