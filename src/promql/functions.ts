/**
 * PromQL function implementations, following Prometheus 2.42's promql/functions.go: the
 * element-wise math functions, the *_over_time family, rate/increase/delta with Prometheus'
 * extrapolation, label_replace/label_join, absent, sort and friends.
 */
import type { Expr, VectorSelectorNode } from './ast.js';
import { dropName, labelsKey, labelsString } from './labels.js';
import { isValidLabelName } from './parse.js';
import { quantile } from './quantile.js';
import { compileAnchored } from './regex.js';
import { PromQLError, type Labels } from './types.js';
import type { RangeSeries, Sample } from './values.js';

/** Raises an execution error (what a panic in a Prometheus function becomes). */
export function execError(message: string): never {
  throw new PromQLError('execution', message);
}

/** Element-wise functions: value -> value, metric name dropped. */
export const SIMPLE_FUNCTIONS: Readonly<Record<string, (v: number) => number>> = {
  abs: Math.abs,
  ceil: Math.ceil,
  floor: Math.floor,
  exp: Math.exp,
  sqrt: Math.sqrt,
  ln: Math.log,
  log2: Math.log2,
  log10: Math.log10,
  sgn: (v) => (v < 0 ? -1 : v > 0 ? 1 : v),
  acos: Math.acos,
  acosh: Math.acosh,
  asin: Math.asin,
  asinh: Math.asinh,
  atan: Math.atan,
  atanh: Math.atanh,
  cos: Math.cos,
  cosh: Math.cosh,
  sin: Math.sin,
  sinh: Math.sinh,
  tan: Math.tan,
  tanh: Math.tanh,
  deg: (v) => (v * 180) / Math.PI,
  rad: (v) => (v * Math.PI) / 180,
};

/** Date functions over a Unix time in seconds (UTC). */
export const DATE_FUNCTIONS: Readonly<Record<string, (d: Date) => number>> = {
  day_of_month: (d) => d.getUTCDate(),
  day_of_week: (d) => d.getUTCDay(),
  days_in_month: (d) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate(),
  hour: (d) => d.getUTCHours(),
  minute: (d) => d.getUTCMinutes(),
  month: (d) => d.getUTCMonth() + 1,
  year: (d) => d.getUTCFullYear(),
};

/**
 * What Go answers for a time it cannot convert (NaN, ±Inf, beyond int64 seconds): int64(v) is the
 * minimum int64 there, and time.Unix of it wraps to 292277026596-12-04 15:30 UTC, a Sunday.
 */
const GO_OVERFLOW_DATE: Readonly<Record<string, number>> = {
  day_of_month: 4,
  day_of_week: 0,
  days_in_month: 31,
  hour: 15,
  minute: 30,
  month: 12,
  year: 292277026596,
};

/** A date function applied to seconds since the epoch (Go: time.Unix(int64(v), 0).UTC()). */
export function dateOf(seconds: number, name: string): number {
  const f = DATE_FUNCTIONS[name]!;
  if (!(Math.abs(seconds) < 2 ** 63)) return GO_OVERFLOW_DATE[name]!;
  const d = new Date(Math.trunc(seconds) * 1000);
  return Number.isNaN(d.getTime()) ? NaN : f(d);
}

/** Context a range-vector function needs: the evaluation time and the selector's range and offset. */
export interface RangeContext {
  /** Evaluation time of the selector after @ (ms). */
  evalMs: number;
  /** The step's time (ms): Prometheus' `enh.Ts`, predict_linear's intercept time. */
  stepMs: number;
  rangeMs: number;
  offsetMs: number;
}

/** Prometheus' extrapolatedRate (rate, increase, delta). */
function extrapolatedRate(
  s: RangeSeries,
  ctx: RangeContext,
  isCounter: boolean,
  isRate: boolean,
): number | undefined {
  const n = s.hi - s.lo;
  if (n < 2) return undefined;
  const rangeStart = ctx.evalMs - (ctx.rangeMs + ctx.offsetMs);
  const rangeEnd = ctx.evalMs - ctx.offsetMs;
  const firstT = s.t[s.lo]!;
  const lastT = s.t[s.hi - 1]!;
  const firstV = s.v[s.lo]!;
  let result = s.v[s.hi - 1]! - firstV;
  if (isCounter) {
    let last = 0;
    for (let i = s.lo; i < s.hi; i++) {
      const v = s.v[i]!;
      if (v < last) result += last;
      last = v;
    }
  }
  let durationToStart = (firstT - rangeStart) / 1000;
  const durationToEnd = (rangeEnd - lastT) / 1000;
  const sampledInterval = (lastT - firstT) / 1000;
  const averageDurationBetweenSamples = sampledInterval / (n - 1);
  if (isCounter && result > 0 && firstV >= 0) {
    const durationToZero = sampledInterval * (firstV / result);
    if (durationToZero < durationToStart) durationToStart = durationToZero;
  }
  const threshold = averageDurationBetweenSamples * 1.1;
  let extrapolateToInterval = sampledInterval;
  extrapolateToInterval += durationToStart < threshold ? durationToStart : averageDurationBetweenSamples / 2;
  extrapolateToInterval += durationToEnd < threshold ? durationToEnd : averageDurationBetweenSamples / 2;
  result = result * (extrapolateToInterval / sampledInterval);
  if (isRate) result = result / (ctx.rangeMs / 1000);
  return result;
}

/** Prometheus' instantValue (irate, idelta). */
function instantValue(s: RangeSeries, isRate: boolean): number | undefined {
  if (s.hi - s.lo < 2) return undefined;
  const lastV = s.v[s.hi - 1]!;
  const prevV = s.v[s.hi - 2]!;
  const interval = s.t[s.hi - 1]! - s.t[s.hi - 2]!;
  let result = isRate && lastV < prevV ? lastV : lastV - prevV;
  if (interval === 0) return undefined;
  if (isRate) result /= interval / 1000;
  return result;
}

/** Kahan-Neumaier summation step (Prometheus' kahanSumInc): returns [sum, compensation]. */
export function kahanSumInc(inc: number, sum: number, c: number): [number, number] {
  const t = sum + inc;
  if (Math.abs(sum) >= Math.abs(inc)) c += sum - t + inc;
  else c += inc - t + sum;
  return [t, c];
}

/** Prometheus' linearRegression: slope and intercept (at `interceptTime`, ms) with Kahan sums. */
function linearRegression(s: RangeSeries, interceptTime: number): [number, number] {
  const initY = s.v[s.lo]!;
  let constY = true;
  let n = 0;
  let [sumX, cX, sumY, cY, sumXY, cXY, sumX2, cX2] = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = s.lo; i < s.hi; i++) {
    const y = s.v[i]!;
    if (constY && i > s.lo && y !== initY) constY = false;
    n += 1;
    const x = (s.t[i]! - interceptTime) / 1e3;
    [sumX, cX] = kahanSumInc(x, sumX, cX);
    [sumY, cY] = kahanSumInc(y, sumY, cY);
    [sumXY, cXY] = kahanSumInc(x * y, sumXY, cXY);
    [sumX2, cX2] = kahanSumInc(x * x, sumX2, cX2);
  }
  if (constY) return isInf(initY) ? [NaN, NaN] : [0, initY];
  sumX += cX;
  sumY += cY;
  sumXY += cXY;
  sumX2 += cX2;
  const covXY = sumXY - (sumX * sumY) / n;
  const varX = sumX2 - (sumX * sumX) / n;
  const slope = covXY / varX;
  return [slope, sumY / n - (slope * sumX) / n];
}

/** Go's `%f` of a float (6 decimals), for Prometheus' error messages. */
function goFixed(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (isInf(v)) return v > 0 ? '+Inf' : '-Inf';
  return v.toFixed(6);
}

/** Prometheus' holt_winters (double exponential smoothing) with smoothing `sf` and trend `tf`. */
function holtWinters(s: RangeSeries, sf: number, tf: number): number | undefined {
  if (!(sf > 0 && sf < 1)) execError(`invalid smoothing factor. Expected: 0 < sf < 1, got: ${goFixed(sf)}`);
  if (!(tf > 0 && tf < 1)) execError(`invalid trend factor. Expected: 0 < tf < 1, got: ${goFixed(tf)}`);
  const l = s.hi - s.lo;
  if (l < 2) return undefined;
  let s0 = 0;
  let s1 = s.v[s.lo]!;
  let b = s.v[s.lo + 1]! - s.v[s.lo]!;
  for (let i = 1; i < l; i++) {
    const x = sf * s.v[s.lo + i]!;
    // Prometheus' calcTrendValue: the first step keeps the initial trend.
    if (i - 1 !== 0) b = tf * (s1 - s0) + (1 - tf) * b;
    const y = (1 - sf) * (s1 + b);
    s0 = s1;
    s1 = x + y;
  }
  return s1;
}

function isInf(v: number): boolean {
  return v === Infinity || v === -Infinity;
}

/** The range-vector functions that map one series to one value (undefined: no output). */
export const RANGE_FUNCTIONS: Readonly<
  Record<string, (s: RangeSeries, ctx: RangeContext, scalars: readonly number[]) => number | undefined>
> = {
  rate: (s, ctx) => extrapolatedRate(s, ctx, true, true),
  increase: (s, ctx) => extrapolatedRate(s, ctx, true, false),
  delta: (s, ctx) => extrapolatedRate(s, ctx, false, false),
  irate: (s) => instantValue(s, true),
  idelta: (s) => instantValue(s, false),
  deriv: (s) => (s.hi - s.lo < 2 ? undefined : linearRegression(s, s.t[s.lo]!)[0]),
  predict_linear: (s, ctx, [duration]) => {
    if (s.hi - s.lo < 2) return undefined;
    const [slope, intercept] = linearRegression(s, ctx.stepMs);
    return slope * duration! + intercept;
  },
  holt_winters: (s, _ctx, [sf, tf]) => holtWinters(s, sf!, tf!),
  changes: (s) => {
    let changes = 0;
    let prev = s.v[s.lo]!;
    for (let i = s.lo + 1; i < s.hi; i++) {
      const cur = s.v[i]!;
      if (cur !== prev && !(Number.isNaN(cur) && Number.isNaN(prev))) changes++;
      prev = cur;
    }
    return changes;
  },
  resets: (s) => {
    let resets = 0;
    let prev = s.v[s.lo]!;
    for (let i = s.lo + 1; i < s.hi; i++) {
      const cur = s.v[i]!;
      if (cur < prev) resets++;
      prev = cur;
    }
    return resets;
  },
  avg_over_time: (s) => {
    let mean = 0;
    let c = 0;
    let count = 0;
    for (let i = s.lo; i < s.hi; i++) {
      const v = s.v[i]!;
      count++;
      if (isInf(mean)) {
        if (isInf(v) && mean > 0 === v > 0) continue;
        if (Number.isFinite(v)) continue;
      }
      [mean, c] = kahanSumInc(v / count - mean / count, mean, c);
    }
    return isInf(mean) ? mean : mean + c;
  },
  min_over_time: (s) => {
    let min = s.v[s.lo]!;
    for (let i = s.lo; i < s.hi; i++) {
      const v = s.v[i]!;
      if (v < min || Number.isNaN(min)) min = v;
    }
    return min;
  },
  max_over_time: (s) => {
    let max = s.v[s.lo]!;
    for (let i = s.lo; i < s.hi; i++) {
      const v = s.v[i]!;
      if (v > max || Number.isNaN(max)) max = v;
    }
    return max;
  },
  sum_over_time: (s) => {
    let sum = 0;
    let c = 0;
    for (let i = s.lo; i < s.hi; i++) [sum, c] = kahanSumInc(s.v[i]!, sum, c);
    return isInf(sum) ? sum : sum + c;
  },
  count_over_time: (s) => s.hi - s.lo,
  last_over_time: (s) => s.v[s.hi - 1]!,
  present_over_time: () => 1,
  quantile_over_time: (s, _ctx, [q]) => quantile(q!, Array.from(s.v.slice(s.lo, s.hi))),
  stddev_over_time: (s) => Math.sqrt(variance(s)),
  stdvar_over_time: (s) => variance(s),
};

function variance(s: RangeSeries): number {
  let count = 0;
  let [mean, cMean, aux, cAux] = [0, 0, 0, 0];
  for (let i = s.lo; i < s.hi; i++) {
    const v = s.v[i]!;
    count++;
    const delta = v - (mean + cMean);
    [mean, cMean] = kahanSumInc(delta / count, mean, cMean);
    [aux, cAux] = kahanSumInc(delta * (v - (mean + cMean)), aux, cAux);
  }
  return (aux + cAux) / count;
}

/** Prometheus' createLabelsForAbsentFunction: the equality matchers of a plain selector argument. */
export function absentLabels(arg: Expr): Labels {
  let e = arg;
  while (e.kind === 'paren') e = e.expr;
  let sel: VectorSelectorNode | undefined;
  if (e.kind === 'vectorSelector') sel = e;
  else if (e.kind === 'matrixSelector') sel = e.selector;
  if (!sel) return {};
  const out: Labels = {};
  const has = new Set<string>();
  for (const m of sel.matchers) {
    if (m.name === '__name__') continue;
    if (m.type === '=' && !has.has(m.name)) {
      if (m.value === '') delete out[m.name];
      else out[m.name] = m.value;
      has.add(m.name);
    } else delete out[m.name];
  }
  return out;
}

/** Go's regexp Expand for a label_replace replacement: $1, ${1}, $name, ${name}, $$. */
export function expandReplacement(template: string, match: RegExpExecArray): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '$' || i + 1 >= template.length) {
      out += c;
      continue;
    }
    const next = template[i + 1]!;
    if (next === '$') {
      out += '$';
      i++;
      continue;
    }
    let name: string;
    let end: number;
    if (next === '{') {
      const close = template.indexOf('}', i + 2);
      name = close < 0 ? '' : template.slice(i + 2, close);
      if (close < 0 || !/^[A-Za-z0-9_]+$/.test(name)) {
        out += c;
        continue;
      }
      end = close;
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(template.slice(i + 1));
      if (!m) {
        out += c;
        continue;
      }
      name = m[0];
      end = i + name.length;
    }
    if (/^\d+$/.test(name)) {
      const idx = Number(name);
      out += idx < match.length ? (match[idx] ?? '') : '';
    } else {
      out += match.groups?.[name] ?? '';
    }
    i = end;
  }
  return out;
}

const replaceCache = new Map<string, RegExp>();

/** label_replace(v, dst, replacement, src, regex). */
export function labelReplace(vec: Sample[], dst: string, repl: string, src: string, regex: string): Sample[] {
  let re = replaceCache.get(regex);
  if (!re) {
    try {
      re = compileAnchored(regex);
    } catch {
      execError(`invalid regular expression in label_replace(): ${regex}`);
    }
    if (replaceCache.size > 100) replaceCache.clear();
    replaceCache.set(regex, re);
  }
  if (!isValidLabelName(dst)) execError(`invalid destination label name in label_replace(): ${dst}`);
  const seen = new Set<string>();
  const out: Sample[] = [];
  for (const s of vec) {
    const m = re.exec(s.metric[src] ?? '');
    let metric = s.metric;
    if (m) {
      const res = expandReplacement(repl, m);
      metric = { ...s.metric };
      delete metric[dst];
      if (res !== '') metric[dst] = res;
    }
    const key = labelsKey(metric);
    if (seen.has(key))
      execError(`duplicated label set in output of label_replace(): ${labelsString(s.metric)}`);
    seen.add(key);
    out.push({ metric, v: s.v });
  }
  return out;
}

/** label_join(v, dst, separator, src...). */
export function labelJoin(vec: Sample[], dst: string, sep: string, srcs: string[]): Sample[] {
  for (const src of srcs)
    if (!isValidLabelName(src)) execError(`invalid source label name in label_join(): ${src}`);
  if (!isValidLabelName(dst)) execError(`invalid destination label name in label_join(): ${dst}`);
  return vec.map((s) => {
    const joined = srcs.map((n) => s.metric[n] ?? '').join(sep);
    const metric = { ...s.metric };
    delete metric[dst];
    if (joined !== '') metric[dst] = joined;
    return { metric, v: s.v };
  });
}

/** round(v, to_nearest): ties round up, as Prometheus. */
export function roundTo(v: number, toNearest: number): number {
  const inv = 1 / toNearest;
  return Math.floor(v * inv + 0.5) / inv;
}

/** Drops `__name__` from every sample. */
export function mapDropName(vec: Sample[], f: (v: number) => number): Sample[] {
  return vec.map((s) => ({ metric: dropName(s.metric), v: f(s.v) }));
}
