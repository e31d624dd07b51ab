/**
 * Differential spot-check of the engine against Prometheus 2.42 itself: `promtool test rules`
 * (Debian package `prometheus`) evaluates the same instant queries over the same series and
 * reports what it got; every value must agree to a relative 1e-9, every error must be an error.
 * The full HTTP-level corpus against a running Prometheus is test/e2e/promql-differential.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instantQuery } from '../../src/promql/engine.js';
import type { Labels, SeriesData } from '../../src/promql/types.js';

const PROMTOOL = '/usr/bin/promtool';
const INTERVAL_S = 15;

// promtool series notation: one value per 15 s from 0, `_` = no sample.
const SERIES: [string, string][] = [
  ['x{a="1",b="u"}', '0 10 20 5 15 25 _ _ 40 50 3 7 9 100 120 130'],
  ['x{a="2",b="u"}', '1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16.5'],
  ['x{a="3",b="v"}', '-5 -3 0.5 1e3 NaN 7 7 7.25 7 7 -Inf 8 9 10 11 12'],
  ['y{a="1",b="u"}', '2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2'],
  ['y{a="2",b="w"}', '_ _ _ 0.1 0.2 0.3 0.4 _ _ _ _ _ _ _ _ 1'],
  ['k{a="1"}', '1e16 1 -1e16 1 1 1 1 1 1 1 1 1 1 1 1 1'],
];

const EXPRESSIONS = [
  'x',
  'x offset 30s',
  'x offset -30s',
  'x @ 60',
  'rate(x[1m])',
  'rate(x[50s])',
  'increase(x[2m])',
  'delta(x[1m])',
  'irate(x[1m])',
  'idelta(x[45s])',
  'deriv(x[1m])',
  'predict_linear(x[1m], 600)',
  'predict_linear(x[2m] offset 30s, -30)',
  'holt_winters(x[2m], 0.5, 0.3)',
  'holt_winters(x[2m], 0.1, 0.9)',
  'changes(x[2m])',
  'resets(x[2m])',
  'avg_over_time(x[1m])',
  'sum_over_time(k[4m])',
  'stddev_over_time(x[1m])',
  'quantile_over_time(0.3, x[2m])',
  'last_over_time(y[1m])',
  'absent_over_time(y{a="2"}[30s])',
  'sum by (b) (x)',
  'avg without (a) (x)',
  'stddev(x)',
  'quantile(0.25, x)',
  'count_values("v", y)',
  'topk(1, x{b="u"})',
  'x / on(a) group_left y',
  'x > bool on(a) y',
  'x > 5',
  '5 < x',
  'x and y',
  'x or y',
  'x unless on(b) y',
  '-x ^ 2 + 2 ^ -1 ^ 2',
  'x - x offset 30s',
  'round(x / 3, 0.5)',
  'clamp(x, 2, 10)',
  'label_replace(x, "c", "$2-$1", "a", "(.)(.*)")',
  'timestamp(y)',
  'max_over_time(rate(x[1m])[2m:30s])',
  'sum_over_time(x[2m:30s] offset 30s)',
  'x + on(a) y',
  'x{a=~"(?i)1|2",b!~"V"}',
  'holt_winters(x[2m], 1, 0.5)',
];
const TIMES_S = [0, 60, 100, 225, 400];

function parseSeries(selector: string, values: string): SeriesData {
  const m = /^(\w+)\{(.*)\}$/.exec(selector)!;
  const labels: Labels = { __name__: m[1]! };
  for (const pair of m[2]!.split(',')) {
    const [k, v] = pair.split('=');
    labels[k!] = JSON.parse(v!) as string;
  }
  const timestamps: number[] = [];
  const vals: number[] = [];
  values.split(' ').forEach((v, i) => {
    if (v === '_') return;
    timestamps.push(i * INTERVAL_S * 1000);
    vals.push(v === 'NaN' ? NaN : v === '-Inf' ? -Infinity : Number(v));
  });
  return { labels, timestamps, values: vals };
}

/** promtool's duration form of an eval time ("1m40s"). */
function promDuration(s: number): string {
  if (s === 0) return '0s';
  const m = Math.floor(s / 60);
  return `${m ? `${m}m` : ''}${s % 60 ? `${s % 60}s` : ''}`;
}

function labelsText(l: Labels): string {
  return `{${Object.keys(l)
    .sort()
    .map((k) => `${k}="${l[k]}"`)
    .join(', ')}}`;
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

let dir: string;
/** `expr@time` -> promtool's answer: `{labels} value` pairs or `ERR <message>`. */
const prometheus = new Map<string, Map<string, number> | string>();

beforeAll(async () => {
  if (!existsSync(PROMTOOL))
    throw new Error(`${PROMTOOL} not found: install the Debian package "prometheus"`);
  dir = await mkdtemp(join(tmpdir(), 'promql-spot-'));
  const yaml = ['evaluation_interval: 1m', 'tests:', `  - interval: ${INTERVAL_S}s`, '    input_series:'];
  for (const [s, v] of SERIES) yaml.push(`      - series: '${s}'`, `        values: '${v}'`);
  yaml.push('    promql_expr_test:');
  for (const e of EXPRESSIONS) {
    for (const t of TIMES_S) yaml.push(`      - expr: ${JSON.stringify(e)}`, `        eval_time: ${t}s`);
  }
  await writeFile(join(dir, 'spot.yml'), `${yaml.join('\n')}\n`);
  // Every case expects nothing, so promtool reports what it got for each non-empty answer.
  const run = spawnSync(PROMTOOL, ['test', 'rules', join(dir, 'spot.yml')], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const out = `${run.stdout}${run.stderr}`;
  const re =
    /expr: "((?:[^"\\]|\\.)*)", time: ([^,]+),(?:\s*\n\s+exp: [^\n]*\n\s+got: ([^\n]*)| err: ([^\n]*))/g;
  for (const m of out.matchAll(re)) {
    const key = `${JSON.parse(`"${m[1]}"`) as string}@${m[2]}`;
    if (m[4] !== undefined) {
      prometheus.set(key, `ERR ${m[4]}`);
      continue;
    }
    const values = new Map<string, number>();
    for (const p of m[3]!.matchAll(/(\{[^}]*\}) ([^,\s]+)/g)) values.set(p[1]!, parseValue(p[2]!));
    prometheus.set(key, values);
  }
  expect(prometheus.size, out.slice(0, 2000)).toBeGreaterThan(EXPRESSIONS.length);
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('engine vs Prometheus 2.42 (promtool)', () => {
  const data = SERIES.map(([s, v]) => parseSeries(s, v));
  const queryable = { select: async () => data };

  it.each(EXPRESSIONS)('%s', async (expr) => {
    for (const t of TIMES_S) {
      const want = prometheus.get(`${expr}@${promDuration(t)}`) ?? new Map<string, number>();
      let got: Map<string, number> | string;
      try {
        const r = await instantQuery(expr, t * 1000, queryable);
        got = new Map();
        if (r.resultType === 'vector') for (const s of r.result) got.set(labelsText(s.metric), s.point.v);
        else if (r.resultType === 'scalar') got.set('{}', r.result.v);
      } catch (err) {
        got = `ERR ${(err as Error).message}`;
      }
      const where = `${expr} at ${t}s`;
      if (typeof want === 'string' || typeof got === 'string') {
        expect(
          typeof got === 'string' && typeof want === 'string',
          `${where}: ${String(want)} vs ${String(got)}`,
        ).toBe(true);
        continue;
      }
      expect([...got.keys()].sort(), where).toEqual([...want.keys()].sort());
      for (const [k, w] of want) {
        const g = got.get(k)!;
        if (Number.isNaN(w) || !Number.isFinite(w)) expect(g, `${where} ${k}`).toBe(w);
        else expect(Math.abs(g - w), `${where} ${k}: ${g} vs ${w}`).toBeLessThanOrEqual(1e-9 * Math.abs(w));
      }
    }
  });
});
