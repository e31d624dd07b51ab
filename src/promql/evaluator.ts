/**
 * The PromQL evaluator: plans the sample window every selector needs, loads each selector once
 * from the {@link Queryable}, then evaluates the tree at each step time over the loaded samples
 * (binary search per series), as Prometheus 2.42 does for instant and range queries.
 */
import type { AtModifier, Expr, MatrixSelectorNode, SubqueryNode, VectorSelectorNode } from './ast.js';
import { SET_OPS } from './ast.js';
import { aggregate, hasDuplicateLabels } from './aggregate.js';
import { scalarBinop, setBinop, vectorBinop, vectorScalarBinop } from './binary.js';
import {
  DATE_FUNCTIONS,
  RANGE_FUNCTIONS,
  type RangeContext,
  SIMPLE_FUNCTIONS,
  absentLabels,
  dateOf,
  execError,
  labelJoin,
  labelReplace,
  mapDropName,
  roundTo,
} from './functions.js';
import { compareLabels, dropName, labelsKey, matches } from './labels.js';
import { PromQLError, type Labels, type Queryable, type SeriesData } from './types.js';
import { lowerBound, upperBound, type RangeSeries, type Sample, type Value } from './values.js';

/** Settings of one evaluation. */
export interface EvalSettings {
  startMs: number;
  endMs: number;
  lookbackMs: number;
  /** Step of subqueries without an explicit one (Prometheus' evaluation interval). */
  defaultSubqueryStepMs: number;
  maxSamples: number;
  signal?: AbortSignal;
}

export const TOO_MANY_SAMPLES = 'query processing would load too many samples into memory in query execution';

type Selector = VectorSelectorNode;

export class Evaluator {
  private readonly windows = new Map<Selector, { lo: number; hi: number }>();
  private readonly data = new Map<Selector, SeriesData[]>();
  private readonly subqueryCache = new Map<SubqueryNode, Map<number, Sample[]>>();
  private loadedSamples = 0;
  /** Per range-vector function call (keyed by its argument list): output label key -> input label key. */
  private readonly rangeOutputSources = new WeakMap<Expr[], Map<string, string>>();

  constructor(private readonly settings: EvalSettings) {}

  /** Load every selector's samples (one select per selector). */
  async load(expr: Expr, queryable: Queryable, times: { lo: number; hi: number }): Promise<void> {
    this.plan(expr, times.lo, times.hi);
    const entries = [...this.windows.entries()];
    await Promise.all(
      entries.map(async ([sel, w]) => {
        let series: SeriesData[];
        try {
          series = await queryable.select(
            { matchers: sel.matchers, startMs: w.lo, endMs: w.hi },
            this.settings.signal,
          );
        } catch (err) {
          if (this.settings.signal?.aborted)
            throw new PromQLError('timeout', 'query timed out in query execution');
          throw err;
        }
        // The store may answer a wider window or looser matching: keep exactly what was asked.
        const kept: SeriesData[] = [];
        for (const s of series) {
          if (!sel.matchers.every((m) => matches(m, s.labels))) continue;
          const lo = lowerBound(s.timestamps, w.lo);
          const hi = upperBound(s.timestamps, w.hi);
          if (hi <= lo) continue;
          const trimmed =
            lo === 0 && hi === s.timestamps.length
              ? s
              : { labels: s.labels, timestamps: s.timestamps.slice(lo, hi), values: s.values.slice(lo, hi) };
          kept.push(trimmed);
          this.loadedSamples += hi - lo;
        }
        if (this.loadedSamples > this.settings.maxSamples)
          throw new PromQLError('execution', TOO_MANY_SAMPLES);
        kept.sort((a, b) => compareLabels(a.labels, b.labels));
        this.data.set(sel, kept);
      }),
    );
  }

  /** Number of samples loaded from the store. */
  get samplesLoaded(): number {
    return this.loadedSamples;
  }

  private atTime(at: AtModifier | undefined): number | undefined {
    if (!at) return undefined;
    if (at.kind === 'time') return at.ms;
    return at.kind === 'start' ? this.settings.startMs : this.settings.endMs;
  }

  private widen(sel: Selector, lo: number, hi: number): void {
    const w = this.windows.get(sel);
    if (!w) this.windows.set(sel, { lo, hi });
    else {
      w.lo = Math.min(w.lo, lo);
      w.hi = Math.max(w.hi, hi);
    }
  }

  /** Record the sample window each selector needs when `e` is evaluated at times in [lo, hi]. */
  private plan(e: Expr, lo: number, hi: number): void {
    switch (e.kind) {
      case 'vectorSelector': {
        const at = this.atTime(e.at);
        const [a, b] = at === undefined ? [lo, hi] : [at, at];
        this.widen(e, a - e.offsetMs - this.settings.lookbackMs, b - e.offsetMs);
        return;
      }
      case 'matrixSelector': {
        const at = this.atTime(e.selector.at);
        const [a, b] = at === undefined ? [lo, hi] : [at, at];
        this.widen(e.selector, a - e.selector.offsetMs - e.rangeMs, b - e.selector.offsetMs);
        return;
      }
      case 'subquery': {
        const at = this.atTime(e.at);
        const [a, b] = at === undefined ? [lo, hi] : [at, at];
        this.plan(e.expr, a - e.offsetMs - e.rangeMs, b - e.offsetMs);
        return;
      }
      case 'call':
        for (const arg of e.args) this.plan(arg, lo, hi);
        return;
      case 'aggregate':
        if (e.param) this.plan(e.param, lo, hi);
        this.plan(e.expr, lo, hi);
        return;
      case 'binary':
        this.plan(e.lhs, lo, hi);
        this.plan(e.rhs, lo, hi);
        return;
      case 'unary':
      case 'paren':
        this.plan(e.expr, lo, hi);
        return;
      default:
        return;
    }
  }

  /** Throws the timeout error when the query's signal has fired. */
  checkAborted(): void {
    if (this.settings.signal?.aborted)
      throw new PromQLError('timeout', 'query timed out in expression evaluation');
  }

  /** Evaluate `e` at time `ts` (ms). */
  eval(e: Expr, ts: number): Value {
    switch (e.kind) {
      case 'number':
        return { type: 'scalar', v: e.value };
      case 'string':
        return { type: 'string', s: e.value };
      case 'paren':
        return this.eval(e.expr, ts);
      case 'vectorSelector':
        return { type: 'vector', samples: this.instantSelect(e, ts) };
      case 'matrixSelector':
        return { type: 'matrix', series: this.rangeSelect(e, ts) };
      case 'subquery':
        return { type: 'matrix', series: this.subquery(e, ts) };
      case 'unary': {
        const v = this.eval(e.expr, ts);
        if (e.op === '+') return v;
        if (v.type === 'scalar') return { type: 'scalar', v: -v.v };
        const samples = mapDropName(this.vector(v), (x) => -x);
        return { type: 'vector', samples: checkUnique(samples) };
      }
      case 'binary':
        return this.binary(e, ts);
      case 'aggregate': {
        const vec = this.vector(this.eval(e.expr, ts));
        let param: number | string | undefined;
        if (e.param) {
          const p = this.eval(e.param, ts);
          param = p.type === 'string' ? p.s : this.scalar(p);
        }
        return { type: 'vector', samples: aggregate(e.op, vec, e.grouping, e.without, param) };
      }
      case 'call':
        return this.call(e.func, e.args, ts);
    }
  }

  private vector(v: Value): Sample[] {
    if (v.type !== 'vector') throw new PromQLError('internal', `expected an instant vector, got ${v.type}`);
    return v.samples;
  }

  private scalar(v: Value): number {
    if (v.type !== 'scalar') throw new PromQLError('internal', `expected a scalar, got ${v.type}`);
    return v.v;
  }

  private instantSelect(sel: Selector, ts: number): Sample[] {
    const ref = (this.atTime(sel.at) ?? ts) - sel.offsetMs;
    const minT = ref - this.settings.lookbackMs;
    const out: Sample[] = [];
    for (const s of this.data.get(sel) ?? []) {
      const i = upperBound(s.timestamps, ref) - 1;
      if (i < 0) continue;
      const t = s.timestamps[i]!;
      if (t < minT) continue;
      out.push({ metric: s.labels, v: s.values[i]!, t });
    }
    return out;
  }

  private rangeSelect(m: MatrixSelectorNode, ts: number): RangeSeries[] {
    const sel = m.selector;
    const ref = (this.atTime(sel.at) ?? ts) - sel.offsetMs;
    const out: RangeSeries[] = [];
    for (const s of this.data.get(sel) ?? []) {
      const lo = lowerBound(s.timestamps, ref - m.rangeMs);
      const hi = upperBound(s.timestamps, ref, lo);
      if (hi > lo) out.push({ metric: s.labels, t: s.timestamps, v: s.values, lo, hi });
    }
    return out;
  }

  private subquery(sq: SubqueryNode, ts: number): RangeSeries[] {
    const ref = (this.atTime(sq.at) ?? ts) - sq.offsetMs;
    const step = sq.stepMs || this.settings.defaultSubqueryStepMs;
    let cache = this.subqueryCache.get(sq);
    if (!cache) {
      cache = new Map();
      this.subqueryCache.set(sq, cache);
    }
    const series = new Map<string, { metric: Labels; t: number[]; v: number[] }>();
    const first = Math.ceil((ref - sq.rangeMs) / step) * step;
    for (let t = first; t <= ref; t += step) {
      let vec = cache.get(t);
      if (!vec) {
        this.checkAborted();
        vec = this.stepVector(sq.expr, t);
        cache.set(t, vec);
      }
      for (const s of vec) {
        const key = labelsKey(s.metric);
        let ser = series.get(key);
        if (!ser) {
          ser = { metric: s.metric, t: [], v: [] };
          series.set(key, ser);
        }
        ser.t.push(t);
        ser.v.push(s.v);
      }
    }
    // Forget inner steps no later outer step can need (outer steps only move forward).
    if (cache.size > 4 * Math.ceil(sq.rangeMs / step) + 8) {
      for (const t of cache.keys()) if (t < first) cache.delete(t);
    }
    return [...series.values()]
      .sort((a, b) => compareLabels(a.metric, b.metric))
      .map((s) => ({ metric: s.metric, t: s.t, v: s.v, lo: 0, hi: s.t.length }));
  }

  /** The instant vector (or scalar as a label-less vector) of `e` at `ts`, as a range evaluation step sees it. */
  stepVector(e: Expr, ts: number): Sample[] {
    const v = this.eval(e, ts);
    if (v.type === 'scalar') return [{ metric: {}, v: v.v }];
    return this.vector(v);
  }

  private binary(e: Extract<Expr, { kind: 'binary' }>, ts: number): Value {
    const l = this.eval(e.lhs, ts);
    const r = this.eval(e.rhs, ts);
    if (l.type === 'scalar' && r.type === 'scalar') return { type: 'scalar', v: scalarBinop(e.op, l.v, r.v) };
    if (l.type === 'vector' && r.type === 'vector') {
      const m = e.matching!;
      const out = SET_OPS.has(e.op)
        ? setBinop(e.op as 'and' | 'or' | 'unless', l.samples, r.samples, m)
        : vectorBinop(e.op, l.samples, r.samples, m, e.returnBool);
      return { type: 'vector', samples: checkUnique(out) };
    }
    if (l.type === 'vector' && r.type === 'scalar') {
      return {
        type: 'vector',
        samples: checkUnique(vectorScalarBinop(e.op, l.samples, r.v, false, e.returnBool)),
      };
    }
    if (l.type === 'scalar' && r.type === 'vector') {
      return {
        type: 'vector',
        samples: checkUnique(vectorScalarBinop(e.op, r.samples, l.v, true, e.returnBool)),
      };
    }
    throw new PromQLError('internal', 'invalid operand types of a binary expression');
  }

  private call(func: string, args: Expr[], ts: number): Value {
    const simple = SIMPLE_FUNCTIONS[func];
    if (simple) {
      return {
        type: 'vector',
        samples: checkUnique(mapDropName(this.vector(this.eval(args[0]!, ts)), simple)),
      };
    }
    const date = DATE_FUNCTIONS[func];
    if (date) {
      if (args.length === 0)
        return { type: 'vector', samples: [{ metric: {}, v: dateOf(Math.trunc(ts / 1000), func) }] };
      const vec = this.vector(this.eval(args[0]!, ts));
      return { type: 'vector', samples: checkUnique(mapDropName(vec, (v) => dateOf(v, func))) };
    }
    const rangeFn = RANGE_FUNCTIONS[func];
    if (rangeFn) return { type: 'vector', samples: this.rangeFunction(func, args, ts, rangeFn) };
    switch (func) {
      case 'time':
        return { type: 'scalar', v: ts / 1000 };
      case 'pi':
        return { type: 'scalar', v: Math.PI };
      case 'vector':
        return { type: 'vector', samples: [{ metric: {}, v: this.scalar(this.eval(args[0]!, ts)) }] };
      case 'scalar': {
        const vec = this.vector(this.eval(args[0]!, ts));
        return { type: 'scalar', v: vec.length === 1 ? vec[0]!.v : NaN };
      }
      case 'absent': {
        const vec = this.vector(this.eval(args[0]!, ts));
        return { type: 'vector', samples: vec.length > 0 ? [] : [{ metric: absentLabels(args[0]!), v: 1 }] };
      }
      case 'absent_over_time': {
        const m = this.eval(args[0]!, ts);
        const any = m.type === 'matrix' && m.series.length > 0;
        return { type: 'vector', samples: any ? [] : [{ metric: absentLabels(args[0]!), v: 1 }] };
      }
      case 'sort':
      case 'sort_desc': {
        const vec = [...this.vector(this.eval(args[0]!, ts))];
        // Prometheus sorts NaN last in both directions.
        const asc = func === 'sort';
        vec.sort((a, b) => {
          if (Number.isNaN(a.v)) return Number.isNaN(b.v) ? 0 : 1;
          if (Number.isNaN(b.v)) return -1;
          return asc ? a.v - b.v : b.v - a.v;
        });
        return { type: 'vector', samples: checkUnique(vec.map((s) => ({ metric: s.metric, v: s.v }))) };
      }
      case 'timestamp': {
        let arg = args[0]!;
        while (arg.kind === 'paren') arg = arg.expr;
        const vec = this.vector(this.eval(arg, ts));
        const samples = vec.map((s) => ({
          metric: dropName(s.metric),
          v: (arg.kind === 'vectorSelector' ? (s.t ?? ts) : ts) / 1000,
        }));
        return { type: 'vector', samples: checkUnique(samples) };
      }
      case 'clamp':
      case 'clamp_min':
      case 'clamp_max': {
        const vec = this.vector(this.eval(args[0]!, ts));
        if (func === 'clamp') {
          const min = this.scalar(this.eval(args[1]!, ts));
          const max = this.scalar(this.eval(args[2]!, ts));
          if (max < min) return { type: 'vector', samples: [] };
          return { type: 'vector', samples: checkUnique(mapDropName(vec, (v) => goMax(min, goMin(max, v)))) };
        }
        const bound = this.scalar(this.eval(args[1]!, ts));
        const f = func === 'clamp_min' ? (v: number) => goMax(v, bound) : (v: number) => goMin(v, bound);
        return { type: 'vector', samples: checkUnique(mapDropName(vec, f)) };
      }
      case 'round': {
        const vec = this.vector(this.eval(args[0]!, ts));
        const toNearest = args[1] ? this.scalar(this.eval(args[1], ts)) : 1;
        return { type: 'vector', samples: checkUnique(mapDropName(vec, (v) => roundTo(v, toNearest))) };
      }
      case 'label_replace': {
        const vec = this.vector(this.eval(args[0]!, ts));
        const [dst, repl, src, regex] = args.slice(1).map((a) => this.str(a, ts));
        return { type: 'vector', samples: checkUnique(labelReplace(vec, dst!, repl!, src!, regex!)) };
      }
      case 'label_join': {
        const vec = this.vector(this.eval(args[0]!, ts));
        const [dst, sep, ...srcs] = args.slice(1).map((a) => this.str(a, ts));
        return { type: 'vector', samples: checkUnique(labelJoin(vec, dst!, sep!, srcs)) };
      }
      default:
        throw new PromQLError('bad_data', `function "${func}" is not supported`);
    }
  }

  private str(e: Expr, ts: number): string {
    const v = this.eval(e, ts);
    if (v.type !== 'string') throw new PromQLError('internal', 'expected a string');
    return v.s;
  }

  private rangeFunction(
    func: string,
    args: Expr[],
    ts: number,
    fn: (s: RangeSeries, ctx: RangeContext, scalars: readonly number[]) => number | undefined,
  ): Sample[] {
    // The range vector is the first argument (the second of quantile_over_time); the others are scalars.
    const matrixIndex = func === 'quantile_over_time' ? 1 : 0;
    const scalars = args.flatMap((a, i) => (i === matrixIndex ? [] : [this.scalar(this.eval(a, ts))]));
    let arg = args[matrixIndex]!;
    while (arg.kind === 'paren') arg = arg.expr;
    const m = this.eval(arg, ts);
    if (m.type !== 'matrix') throw new PromQLError('internal', 'expected a range vector');
    let ctx: RangeContext;
    if (arg.kind === 'matrixSelector') {
      ctx = {
        evalMs: this.atTime(arg.selector.at) ?? ts,
        stepMs: ts,
        rangeMs: arg.rangeMs,
        offsetMs: arg.selector.offsetMs,
      };
    } else if (arg.kind === 'subquery') {
      ctx = { evalMs: this.atTime(arg.at) ?? ts, stepMs: ts, rangeMs: arg.rangeMs, offsetMs: arg.offsetMs };
    } else throw new PromQLError('internal', 'expected a range selector or subquery');
    const keepName = func === 'last_over_time';
    // Prometheus checks the whole output matrix of a range-vector function: two input series that
    // end up with one label set fail even when they never produce a value at the same step.
    let sources = this.rangeOutputSources.get(args);
    if (!sources) {
      sources = new Map();
      this.rangeOutputSources.set(args, sources);
    }
    const out: Sample[] = [];
    for (const s of m.series) {
      const v = fn(s, ctx, scalars);
      if (v === undefined) continue;
      const metric = keepName ? s.metric : dropName(s.metric);
      if (metric !== s.metric) {
        const outKey = labelsKey(metric);
        const srcKey = labelsKey(s.metric);
        const seen = sources.get(outKey);
        if (seen === undefined) sources.set(outKey, srcKey);
        else if (seen !== srcKey) execError('vector cannot contain metrics with the same labelset');
      }
      out.push({ metric, v });
    }
    return checkUnique(out);
  }
}

/** Go's math.Max/math.Min: NaN wins, +0 > -0. */
function goMax(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return NaN;
  return Math.max(a, b);
}

function goMin(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return NaN;
  return Math.min(a, b);
}

function checkUnique(vec: Sample[]): Sample[] {
  if (hasDuplicateLabels(vec)) execError('vector cannot contain metrics with the same labelset');
  return vec;
}

export { execError };
