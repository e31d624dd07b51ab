/**
 * The PromQL functions of Prometheus 2.42 the engine knows: argument and return types for the
 * type checker (src/promql/parse.ts), and which of them are supported. Implementations live in
 * src/promql/functions.ts.
 */
import type { ValueType } from './ast.js';

/** A function's signature as in Prometheus' parser.Functions. */
export interface FunctionSignature {
  argTypes: ValueType[];
  /** 0: exactly argTypes; n > 0: the last argument may be omitted or repeated up to n times; -1: the last type repeats. */
  variadic: number;
  returnType: ValueType;
}

const V: ValueType = 'instant vector';
const M: ValueType = 'range vector';
const S: ValueType = 'scalar';
const STR: ValueType = 'string';

const sig = (argTypes: ValueType[], returnType: ValueType = V, variadic = 0): FunctionSignature => ({
  argTypes,
  variadic,
  returnType,
});

/** Supported functions. */
export const FUNCTIONS: Readonly<Record<string, FunctionSignature>> = {
  abs: sig([V]),
  absent: sig([V]),
  absent_over_time: sig([M]),
  acos: sig([V]),
  acosh: sig([V]),
  asin: sig([V]),
  asinh: sig([V]),
  atan: sig([V]),
  atanh: sig([V]),
  avg_over_time: sig([M]),
  ceil: sig([V]),
  changes: sig([M]),
  clamp: sig([V, S, S]),
  clamp_max: sig([V, S]),
  clamp_min: sig([V, S]),
  cos: sig([V]),
  cosh: sig([V]),
  count_over_time: sig([M]),
  day_of_month: sig([V], V, 1),
  day_of_week: sig([V], V, 1),
  days_in_month: sig([V], V, 1),
  deg: sig([V]),
  delta: sig([M]),
  deriv: sig([M]),
  exp: sig([V]),
  floor: sig([V]),
  hour: sig([V], V, 1),
  idelta: sig([M]),
  increase: sig([M]),
  irate: sig([M]),
  label_join: sig([V, STR, STR, STR], V, -1),
  label_replace: sig([V, STR, STR, STR, STR]),
  last_over_time: sig([M]),
  ln: sig([V]),
  log10: sig([V]),
  log2: sig([V]),
  max_over_time: sig([M]),
  min_over_time: sig([M]),
  minute: sig([V], V, 1),
  month: sig([V], V, 1),
  pi: sig([], S),
  predict_linear: sig([M, S]),
  holt_winters: sig([M, S, S]),
  present_over_time: sig([M]),
  quantile_over_time: sig([S, M]),
  rad: sig([V]),
  rate: sig([M]),
  resets: sig([M]),
  round: sig([V, S], V, 1),
  scalar: sig([V], S),
  sgn: sig([V]),
  sin: sig([V]),
  sinh: sig([V]),
  sort: sig([V]),
  sort_desc: sig([V]),
  sqrt: sig([V]),
  stddev_over_time: sig([M]),
  stdvar_over_time: sig([M]),
  sum_over_time: sig([M]),
  tan: sig([V]),
  tanh: sig([V]),
  time: sig([], S),
  timestamp: sig([V]),
  vector: sig([S]),
  year: sig([V], V, 1),
};

/** Functions of Prometheus 2.42 the engine refuses with 'function "x" is not supported'. */
export const UNSUPPORTED_FUNCTIONS: ReadonlySet<string> = new Set([
  'histogram_count',
  'histogram_sum',
  'histogram_fraction',
  'histogram_quantile',
]);
