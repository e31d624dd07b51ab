/**
 * PromQL aggregation operators (sum, avg, min, max, count, stddev, stdvar, topk, bottomk,
 * quantile, count_values, group) over one instant vector, as Prometheus 2.42's
 * evaluator.aggregation: same grouping, same running formulas, same top-k heap.
 */
import type { AggregateOp } from './ast.js';
import { execError } from './functions.js';
import { labelsKey, signature, signatureSpec } from './labels.js';
import { isValidLabelName } from './parse.js';
import { quantile } from './quantile.js';
import type { Labels } from './types.js';
import type { Sample } from './values.js';

interface Group {
  labels: Labels;
  value: number;
  mean: number;
  count: number;
  heap: Sample[];
  values: number[];
}

/** Prometheus' strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent. */
export function formatFloatPlain(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Object.is(v, -0)) return '-0';
  const s = String(v);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, int, frac = '', expText] = m;
  const digits = int! + frac;
  const exp = Number(expText);
  const point = 1 + exp;
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

// Go's container/heap over a Sample array with a `less` order.
function up(h: Sample[], j: number, less: (a: Sample, b: Sample) => boolean): void {
  while (j > 0) {
    const i = ((j - 1) / 2) | 0;
    if (i === j || !less(h[j]!, h[i]!)) break;
    [h[i], h[j]] = [h[j]!, h[i]!];
    j = i;
  }
}

function down(h: Sample[], i0: number, n: number, less: (a: Sample, b: Sample) => boolean): boolean {
  let i = i0;
  for (;;) {
    const j1 = 2 * i + 1;
    if (j1 >= n || j1 < 0) break;
    let j = j1;
    const j2 = j1 + 1;
    if (j2 < n && less(h[j2]!, h[j1]!)) j = j2;
    if (!less(h[j]!, h[i]!)) break;
    [h[i], h[j]] = [h[j]!, h[i]!];
    i = j;
  }
  return i > i0;
}

function heapPush(h: Sample[], s: Sample, less: (a: Sample, b: Sample) => boolean): void {
  h.push(s);
  up(h, h.length - 1, less);
}

function heapPop(h: Sample[], less: (a: Sample, b: Sample) => boolean): void {
  const n = h.length - 1;
  [h[0], h[n]] = [h[n]!, h[0]!];
  down(h, 0, n, less);
  h.pop();
}

const lessByValue = (a: Sample, b: Sample): boolean => Number.isNaN(a.v) || a.v < b.v;
const lessByReverseValue = (a: Sample, b: Sample): boolean => Number.isNaN(a.v) || a.v > b.v;

/** Output label sets by input label set and grouping: see {@link groupLabels}. */
const groupLabelsCache = new WeakMap<Labels, Map<string, Labels>>();

/**
 * The labels of the group `metric` falls in: `groupBy`'s labels (`by`), or all but those and
 * `__name__` (`without`); `spec` is the grouping's {@link signatureSpec}. The same object for the
 * same input object and grouping, so a range query's output series keep one label object across
 * steps and their identity keys are computed once (as new objects at every step, the keys were a
 * fifth of a 100-series dashboard query). Label sets are never changed in place.
 */
function groupLabels(metric: Labels, groupBy: string[], without: boolean, spec: string): Labels {
  let bySpec = groupLabelsCache.get(metric);
  if (!bySpec) groupLabelsCache.set(metric, (bySpec = new Map()));
  let labels = bySpec.get(spec);
  if (!labels) {
    labels = {};
    if (without) {
      for (const [n, v] of Object.entries(metric)) {
        if (n !== '__name__' && !groupBy.includes(n)) labels[n] = v;
      }
    } else {
      for (const n of groupBy) if (metric[n] !== undefined && metric[n] !== '') labels[n] = metric[n];
    }
    bySpec.set(spec, labels);
  }
  return labels;
}

/** Evaluate one aggregation at one step. `param` is the scalar (topk, bottomk, quantile) or string (count_values). */
export function aggregate(
  op: AggregateOp,
  vec: Sample[],
  grouping: string[],
  without: boolean,
  param: number | string | undefined,
): Sample[] {
  let k = 0;
  if (op === 'topk' || op === 'bottomk') {
    const f = param as number;
    if (!Number.isFinite(f) || f >= 2 ** 63 || f < -(2 ** 63))
      execError(`Scalar value ${goFloat(f)} overflows int64`);
    k = Math.trunc(f);
    if (k < 1) return [];
  }
  const q = op === 'quantile' ? (param as number) : 0;
  let valueLabel = '';
  let groupBy = grouping;
  if (op === 'count_values') {
    valueLabel = param as string;
    if (!isValidLabelName(valueLabel)) execError(`invalid label name "${valueLabel}"`);
    if (!without) groupBy = [...grouping, valueLabel];
  }
  const groups = new Map<string, Group>();
  const ordered: Group[] = [];
  // The grouping's cache key, once per step rather than once per sample.
  const spec = signatureSpec(!without, groupBy);
  for (const s0 of vec) {
    let s = s0;
    if (op === 'count_values') s = { metric: { ...s.metric, [valueLabel]: formatFloatPlain(s.v) }, v: s.v };
    const key = signature(s.metric, !without, groupBy, spec);
    const g = groups.get(key);
    if (!g) {
      const labels = groupLabels(s.metric, groupBy, without, spec);
      const ng: Group = { labels, value: s.v, mean: s.v, count: 1, heap: [], values: [] };
      if (op === 'stddev' || op === 'stdvar') ng.value = 0;
      else if (op === 'topk' || op === 'bottomk') ng.heap = [{ metric: s.metric, v: s.v }];
      else if (op === 'quantile') ng.values = [s.v];
      else if (op === 'group') ng.value = 1;
      groups.set(key, ng);
      ordered.push(ng);
      continue;
    }
    const v = s.v;
    switch (op) {
      case 'sum':
        g.value += v;
        break;
      case 'avg': {
        g.count++;
        if (isInf(g.mean)) {
          if (isInf(v) && g.mean > 0 === v > 0) break;
          if (Number.isFinite(v)) break;
        }
        g.mean += v / g.count - g.mean / g.count;
        break;
      }
      case 'max':
        if (g.value < v || Number.isNaN(g.value)) g.value = v;
        break;
      case 'min':
        if (g.value > v || Number.isNaN(g.value)) g.value = v;
        break;
      case 'count':
      case 'count_values':
        g.count++;
        break;
      case 'stddev':
      case 'stdvar': {
        g.count++;
        const delta = v - g.mean;
        g.mean += delta / g.count;
        g.value += delta * (v - g.mean);
        break;
      }
      case 'topk':
      case 'bottomk': {
        const less = op === 'topk' ? lessByValue : lessByReverseValue;
        const top = g.heap[0]!.v;
        const better = op === 'topk' ? top < v : top > v;
        if (g.heap.length < k || better || Number.isNaN(top)) {
          if (g.heap.length === k) {
            if (k === 1) {
              g.heap[0] = { metric: s.metric, v };
              break;
            }
            heapPop(g.heap, less);
          }
          heapPush(g.heap, { metric: s.metric, v }, less);
        }
        break;
      }
      case 'quantile':
        g.values.push(v);
        break;
      case 'group':
        break;
    }
  }
  const out: Sample[] = [];
  for (const g of ordered) {
    let value = g.value;
    switch (op) {
      case 'avg':
        value = g.mean;
        break;
      case 'count':
      case 'count_values':
        value = g.count;
        break;
      case 'stdvar':
        value = g.value / g.count;
        break;
      case 'stddev':
        value = Math.sqrt(g.value / g.count);
        break;
      case 'topk':
      case 'bottomk': {
        const less = op === 'topk' ? lessByValue : lessByReverseValue;
        const sorted = [...g.heap].sort((a, b) => (less(b, a) ? -1 : less(a, b) ? 1 : 0));
        for (const s of sorted) out.push({ metric: s.metric, v: s.v });
        continue;
      }
      case 'quantile':
        value = quantile(q, g.values);
        break;
      default:
        break;
    }
    out.push({ metric: g.labels, v: value });
  }
  return out;
}

function isInf(v: number): boolean {
  return v === Infinity || v === -Infinity;
}

/** A float as Go's %v prints it in error messages (close enough: NaN, +Inf, -Inf, plain numbers). */
function goFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** True when two samples of a vector share a label set. */
export function hasDuplicateLabels(vec: Sample[]): boolean {
  if (vec.length < 2) return false;
  const seen = new Set<string>();
  for (const s of vec) {
    const k = labelsKey(s.metric);
    if (seen.has(k)) return true;
    seen.add(k);
  }
  return false;
}
