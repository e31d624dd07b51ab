/**
 * PromQL engine: parses a query with the Prometheus project's grammar (@prometheus-io/lezer-promql,
 * see src/promql/parse.ts) and evaluates it over a {@link Queryable} with Prometheus 2.42's
 * semantics (src/promql/evaluator.ts): instant queries at one time, range queries at every step.
 */
import { typeOf } from './parse.js';
import { parsePromQL } from './parse.js';
import { Evaluator, TOO_MANY_SAMPLES } from './evaluator.js';
import { compareLabels, labelsKey } from './labels.js';
import {
  PromQLError,
  type Labels,
  type Point,
  type Queryable,
  type QueryOptions,
  type QueryValue,
} from './types.js';

export { parsePromQL, parseSeriesSelector } from './parse.js';
export type { Expr } from './ast.js';

/** Engine settings beyond {@link QueryOptions}. */
export interface EngineOptions extends QueryOptions {
  /** Step of subqueries written without one (`x[5m:]`): Prometheus' global evaluation interval. Default 1 minute. */
  subqueryStepMs?: number;
}

const DEFAULT_LOOKBACK_MS = 5 * 60_000;
const DEFAULT_MAX_SAMPLES = 50_000_000;
/** Steps evaluated between two yields to the event loop (lets a timeout signal fire). */
const STEPS_PER_YIELD = 64;

function settings(startMs: number, endMs: number, options: EngineOptions) {
  return {
    startMs,
    endMs,
    lookbackMs: options.lookbackMs ?? DEFAULT_LOOKBACK_MS,
    defaultSubqueryStepMs: options.subqueryStepMs ?? 60_000,
    maxSamples: options.maxSamples ?? DEFAULT_MAX_SAMPLES,
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Evaluate `query` at one instant (`timeMs`), as GET /api/v1/query does. */
export async function instantQuery(
  query: string,
  timeMs: number,
  queryable: Queryable,
  options: EngineOptions = {},
): Promise<QueryValue> {
  const expr = parsePromQL(query);
  const ev = new Evaluator(settings(timeMs, timeMs, options));
  await ev.load(expr, queryable, { lo: timeMs, hi: timeMs });
  ev.checkAborted();
  const v = ev.eval(expr, timeMs);
  switch (v.type) {
    case 'scalar':
      return { resultType: 'scalar', result: { t: timeMs, v: v.v } };
    case 'string':
      return { resultType: 'string', result: { t: timeMs, v: v.s } };
    case 'vector':
      return {
        resultType: 'vector',
        result: v.samples.map((s) => ({ metric: s.metric, point: { t: timeMs, v: s.v } })),
      };
    case 'matrix': {
      let total = 0;
      const result = v.series.map((s) => {
        const points: Point[] = [];
        for (let i = s.lo; i < s.hi; i++) points.push({ t: s.t[i]!, v: s.v[i]! });
        total += points.length;
        return { metric: s.metric, points };
      });
      if (total > (options.maxSamples ?? DEFAULT_MAX_SAMPLES))
        throw new PromQLError('execution', TOO_MANY_SAMPLES);
      return { resultType: 'matrix', result };
    }
  }
}

/** Evaluate `query` at every step from `startMs` to `endMs`, as GET /api/v1/query_range does (a matrix). */
export async function rangeQuery(
  query: string,
  startMs: number,
  endMs: number,
  stepMs: number,
  queryable: Queryable,
  options: EngineOptions = {},
): Promise<QueryValue> {
  if (!(stepMs > 0)) {
    throw new PromQLError(
      'bad_data',
      'zero or negative query resolution step widths are not accepted. Try a positive integer',
    );
  }
  if (endMs < startMs) throw new PromQLError('bad_data', 'end timestamp must not be before start time');
  const expr = parsePromQL(query);
  const type = typeOf(expr);
  if (type !== 'scalar' && type !== 'instant vector') {
    throw new PromQLError(
      'bad_data',
      `invalid expression type "${type}" for range query, must be Scalar or instant Vector`,
    );
  }
  const maxSamples = options.maxSamples ?? DEFAULT_MAX_SAMPLES;
  const ev = new Evaluator(settings(startMs, endMs, options));
  await ev.load(expr, queryable, { lo: startMs, hi: endMs });
  const series = new Map<string, { metric: Labels; points: Point[] }>();
  let produced = 0;
  let step = 0;
  for (let ts = startMs; ts <= endMs; ts += stepMs, step++) {
    if (step % STEPS_PER_YIELD === STEPS_PER_YIELD - 1) await yieldToLoop();
    ev.checkAborted();
    const vec = ev.stepVector(expr, ts);
    produced += vec.length;
    for (const s of vec) {
      const key = labelsKey(s.metric);
      let ser = series.get(key);
      if (!ser) {
        ser = { metric: s.metric, points: [] };
        series.set(key, ser);
      }
      ser.points.push({ t: ts, v: s.v });
    }
    if (produced + ev.samplesLoaded > maxSamples) throw new PromQLError('execution', TOO_MANY_SAMPLES);
  }
  const result = [...series.values()].sort((a, b) => compareLabels(a.metric, b.metric));
  return { resultType: 'matrix', result };
}
