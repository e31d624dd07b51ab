/**
 * PromQL engine: parses a query with the Prometheus project's grammar (@prometheus-io/lezer-promql)
 * and evaluates it over a {@link Queryable}. Placeholder until the evaluator lands.
 */
import { PromQLError, type Queryable, type QueryOptions, type QueryValue } from './types.js';

/** Evaluate `query` at one instant (`timeMs`), as GET /api/v1/query does. */
export function instantQuery(
  query: string,
  timeMs: number,
  queryable: Queryable,
  options: QueryOptions = {},
): Promise<QueryValue> {
  void query;
  void timeMs;
  void queryable;
  void options;
  return Promise.reject(new PromQLError('internal', 'PromQL evaluation is not implemented yet'));
}

/** Evaluate `query` at every step from `startMs` to `endMs`, as GET /api/v1/query_range does (a matrix). */
export function rangeQuery(
  query: string,
  startMs: number,
  endMs: number,
  stepMs: number,
  queryable: Queryable,
  options: QueryOptions = {},
): Promise<QueryValue> {
  void query;
  void startMs;
  void endMs;
  void stepMs;
  void queryable;
  void options;
  return Promise.reject(new PromQLError('internal', 'PromQL evaluation is not implemented yet'));
}
