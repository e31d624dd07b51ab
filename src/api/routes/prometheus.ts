/**
 * Prometheus' HTTP query API (api/v1, as Prometheus 2.42 answers it), so Grafana can use the
 * server as a Prometheus data source: GET and POST (form-encoded) /api/v1/query, /query_range,
 * /series, /labels, /label/:name/values, plus /metadata and /status/buildinfo. Parameters, limits,
 * error types and HTTP codes follow Prometheus (docs/promql.md); bodies are Prometheus' JSON, not
 * this API's error shape, and the routes are left out of the OpenAPI document for that reason.
 * Every sample-store read goes through the app's read limiter, within the query's timeout.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { NexusError, hasCode } from '../../errors.js';
import { DCGM_FIELDS } from '../../domain/catalog.js';
import { instantQuery, parsePromQL, parseSeriesSelector, rangeQuery } from '../../promql/engine.js';
import {
  errorBody,
  formatQueryValue,
  successBody,
  ERROR_STATUS,
  type ApiErrorType,
} from '../../promql/format.js';
import { compareLabels, labelsKey } from '../../promql/labels.js';
import { StoreQueryable, selectWithLabels, type ReadRunner } from '../../promql/store-queryable.js';
import { PromQLError, type LabelMatcher, type Labels } from '../../promql/types.js';
import { ReadBudget } from '../read-limiter.js';
import type { ApiContext } from '../context.js';

/** Limits of the query endpoints (PROMQL_TIMEOUT, PROMQL_MAX_SAMPLES). */
export interface PromqlSettings {
  /** Longest one query may run, ms (Prometheus' --query.timeout, 2 min). */
  timeoutMs: number;
  /** Most samples one selector may load (Prometheus' --query.max-samples). */
  maxSamples: number;
}

/** Defaults of {@link PromqlSettings}. */
export const DEFAULT_PROMQL_SETTINGS: PromqlSettings = { timeoutMs: 120_000, maxSamples: 5_000_000 };

/** Most points per series of a range query, as Prometheus. */
export const MAX_POINTS_PER_SERIES = 11_000;

/** Options of {@link prometheusRoutes}. */
export interface PrometheusRoutesOptions {
  ctx: ApiContext;
  settings?: Partial<PromqlSettings>;
}

/** The paths of this plugin (their parameters are checked here, PromQL text may span lines). */
export const PROMETHEUS_API_PATHS: ReadonlySet<string> = new Set([
  '/api/v1/query',
  '/api/v1/query_range',
  '/api/v1/series',
  '/api/v1/labels',
  '/api/v1/label/:name/values',
  '/api/v1/metadata',
  '/api/v1/status/buildinfo',
  '/federate',
]);

/** True for a route whose parameters are PromQL text (checked by the route itself). */
export function isPrometheusApiRoute(url: string | undefined): boolean {
  return url !== undefined && PROMETHEUS_API_PATHS.has(url);
}

/** The Prometheus version whose API this one follows (Grafana reads it from buildinfo). */
export const PROMETHEUS_COMPAT_VERSION = '2.42.0';

/** Earliest and latest instants the store can hold (years 0001 and 9999), Prometheus' min/max time. */
export const EARLIEST_MS = -62_135_596_800_000; // 0001-01-01T00:00:00Z
export const LATEST_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/** Parameters of one request: the query string and, for POST, the form body (body first, like Go's FormValue). */
export type Params = Map<string, string[]>;

/** A bad parameter, reported as `bad_data`. */
function badData(message: string): PromQLError {
  return new PromQLError('bad_data', message);
}

/** Collect the query string and a form body into one {@link Params}. */
export function requestParams(request: FastifyRequest): Params {
  const params: Params = new Map();
  const add = (name: string, value: string): void => {
    const list = params.get(name);
    if (list === undefined) params.set(name, [value]);
    else list.push(value);
  };
  if (request.body instanceof URLSearchParams) for (const [k, v] of request.body) add(k, v);
  const q = request.url.indexOf('?');
  if (q >= 0) for (const [k, v] of new URLSearchParams(request.url.slice(q + 1))) add(k, v);
  for (const [name, values] of params) {
    for (const v of [name, ...values]) {
      // PromQL may span lines and use tabs; other control characters are never meaningful.
      // eslint-disable-next-line no-control-regex -- finding control characters is the point
      if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(v) || /[\ud800-\udfff]/u.test(v)) {
        throw badData(`invalid parameter ${JSON.stringify(name)}: control characters are not allowed`);
      }
    }
  }
  return params;
}

/** First value of a parameter, or undefined. */
function first(params: Params, name: string): string | undefined {
  return params.get(name)?.[0];
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * A time parameter as Prometheus reads it: unix seconds as a float (ms precision), or RFC 3339.
 * @returns ms since the epoch, or undefined when the text is neither
 */
export function parseTimeParam(text: string): number | undefined {
  if (FLOAT.test(text)) {
    const seconds = Number(text);
    if (!Number.isFinite(seconds)) return undefined;
    const whole = Math.trunc(seconds);
    return whole * 1000 + Math.round((seconds - whole) * 1000);
  }
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  // Go keeps nanoseconds; Prometheus truncates them to ms.
  const fraction = (m[2] ?? '').slice(0, 4);
  const ms = Date.parse(`${m[1]}${fraction}${m[3]}`);
  return Number.isNaN(ms) ? undefined : ms;
}

const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const DURATION_UNITS_MS = [365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1];

/**
 * A duration parameter as Prometheus reads it: float seconds, or a Prometheus duration (`1h30m`,
 * `5m`, `500ms`, `1d`, `1w`, `1y`). @returns ms, or undefined when the text is neither
 */
export function parseDurationParam(text: string): number | undefined {
  if (FLOAT.test(text)) {
    const ms = Number(text) * 1000;
    // Prometheus refuses what overflows int64 nanoseconds.
    return Number.isFinite(ms) && Math.abs(ms) < 9.2e15 ? ms : undefined;
  }
  if (text === '0') return 0;
  const m = DURATION.exec(text);
  if (m === null || text === '') return undefined;
  let ms = 0;
  for (let i = 0; i < DURATION_UNITS_MS.length; i++) {
    if (m[i + 1] !== undefined) ms += Number(m[i + 1]) * DURATION_UNITS_MS[i]!;
  }
  return ms;
}

function timeParam(params: Params, name: string, fallback: number | undefined): number {
  const text = first(params, name) ?? '';
  if (text === '' && fallback !== undefined) return fallback;
  const ms = parseTimeParam(text);
  if (ms === undefined) {
    throw badData(
      `invalid parameter ${JSON.stringify(name)}: cannot parse ${JSON.stringify(text)} to a valid timestamp`,
    );
  }
  return ms;
}

function durationParam(params: Params, name: string, required = false): number | undefined {
  const text = first(params, name) ?? '';
  if (text === '' && !required) return undefined;
  const ms = parseDurationParam(text);
  if (ms === undefined) {
    throw badData(
      `invalid parameter ${JSON.stringify(name)}: cannot parse ${JSON.stringify(text)} to a valid duration`,
    );
  }
  return ms;
}

/** `limit`: absent or 0 -> no limit; else a positive integer. */
function limitParam(params: Params): number | undefined {
  const text = first(params, 'limit');
  if (text === undefined || text === '' || text === '0') return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw badData(`invalid parameter "limit": cannot parse ${JSON.stringify(text)} to a valid limit`);
  }
  return n;
}

/** `match[]` selectors, each parsed to matchers. */
export function matchParams(params: Params): LabelMatcher[][] {
  return (params.get('match[]') ?? []).map((text) => parseSeriesSelector(text));
}

/**
 * Refuse a query that does not parse before evaluating it, worded as Prometheus words it
 * (`invalid parameter "query": ...`).
 */
export function checkQuerySyntax(query: string): void {
  try {
    parsePromQL(query);
  } catch (error) {
    if (error instanceof PromQLError && error.errorType === 'bad_data') {
      throw badData(`invalid parameter "query": ${error.message}`);
    }
    throw error;
  }
}

/** Map any failure to Prometheus' error type and a client-safe message. */
export function toPromError(error: unknown): { type: ApiErrorType; message: string } {
  if (error instanceof PromQLError) return { type: error.errorType, message: error.message };
  if (hasCode(error, 'READ_TIMEOUT'))
    return { type: 'timeout', message: 'query timed out in query execution' };
  if (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')) {
    return { type: 'timeout', message: 'query timed out in query execution' };
  }
  if (error instanceof NexusError) {
    if (error.status === 503) return { type: 'unavailable', message: error.message };
    if (error.status === 422) return { type: 'execution', message: error.message };
    if (error.status === 400) return { type: 'bad_data', message: error.message };
  }
  return { type: 'internal', message: 'internal error' };
}

/** Send a Prometheus error body with its status. */
export function sendPromError(reply: FastifyReply, error: unknown): FastifyReply {
  const { type, message } = toPromError(error);
  if (type === 'internal') reply.log.error({ err: error }, 'Prometheus API request failed');
  if (type === 'unavailable' || type === 'timeout') void reply.header('retry-after', '1');
  return reply.code(ERROR_STATUS[type]).send(errorBody(type, message));
}

/** A label set with its names in sorted order (Prometheus writes them so). */
export function sortedLabels(labels: Labels): Labels {
  const out: Labels = {};
  for (const k of Object.keys(labels).sort()) {
    Object.defineProperty(out, k, { value: labels[k], enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Form bodies (`application/x-www-form-urlencoded`), as POST of the query API sends them. */
function formParser(
  _request: FastifyRequest,
  body: string,
  done: (error: Error | null, body?: URLSearchParams) => void,
): void {
  done(null, new URLSearchParams(body));
}

/** Register the Prometheus query API. */
export const prometheusRoutes: FastifyPluginAsync<PrometheusRoutesOptions> = async (app, options) => {
  const { ctx } = options;
  const settings: PromqlSettings = { ...DEFAULT_PROMQL_SETTINGS, ...options.settings };
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, formParser);
  }
  const now = ctx.deps.now ?? Date.now;

  /** The read runner and abort signal of one request, bounded by `timeoutMs`. */
  const session = (timeoutMs: number): { run: ReadRunner; signal: AbortSignal } => {
    const budget = new ReadBudget({ timeoutMs, maxRows: 0 });
    return {
      run: (read) => ctx.reads.run(budget, read),
      signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
    };
  };

  const queryTimeout = (params: Params): number => {
    const asked = durationParam(params, 'timeout');
    return asked === undefined || asked <= 0 ? settings.timeoutMs : Math.min(asked, settings.timeoutMs);
  };

  const route = (
    path: string,
    handler: (params: Params, request: FastifyRequest) => Promise<{ data: unknown; warnings?: string[] }>,
  ): void => {
    const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      try {
        const { data, warnings } = await handler(requestParams(request), request);
        return reply.send(successBody(data, warnings));
      } catch (error) {
        return sendPromError(reply, error);
      }
    };
    app.get(path, { schema: { hide: true } }, handle);
    app.post(path, { schema: { hide: true } }, handle);
  };

  route('/api/v1/query', async (params) => {
    const query = first(params, 'query') ?? '';
    const timeMs = timeParam(params, 'time', now());
    const timeoutMs = queryTimeout(params);
    checkQuerySyntax(query);
    const { run, signal } = session(timeoutMs);
    const queryable = new StoreQueryable(ctx.deps.store, { maxSamples: settings.maxSamples, run });
    const value = await instantQuery(query, timeMs, queryable, { maxSamples: settings.maxSamples, signal });
    return { data: formatQueryValue(value) };
  });

  route('/api/v1/query_range', async (params) => {
    const query = first(params, 'query') ?? '';
    const startMs = timeParam(params, 'start', undefined);
    const endMs = timeParam(params, 'end', undefined);
    if (endMs < startMs) throw badData('end timestamp must not be before start time');
    const stepMs = durationParam(params, 'step', true)!;
    if (!(stepMs > 0)) {
      throw badData('zero or negative query resolution step widths are not accepted. Try a positive integer');
    }
    if (Math.floor((endMs - startMs) / stepMs) > MAX_POINTS_PER_SERIES) {
      throw badData(
        'exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)',
      );
    }
    const timeoutMs = queryTimeout(params);
    checkQuerySyntax(query);
    const { run, signal } = session(timeoutMs);
    const queryable = new StoreQueryable(ctx.deps.store, { maxSamples: settings.maxSamples, run });
    const value = await rangeQuery(query, startMs, endMs, stepMs, queryable, {
      maxSamples: settings.maxSamples,
      signal,
    });
    return { data: formatQueryValue(value) };
  });

  /** Label views of every series matching any selector (all series without one) in the window. */
  const matchingSeries = async (params: Params, selectors: LabelMatcher[][]): Promise<Labels[]> => {
    const startMs = Math.max(EARLIEST_MS, timeParam(params, 'start', EARLIEST_MS));
    const endMs = Math.min(LATEST_MS, timeParam(params, 'end', LATEST_MS));
    if (endMs < startMs) throw badData('end timestamp must not be before start time');
    const { run, signal } = session(settings.timeoutMs);
    const found = new Map<string, Labels>();
    for (const matchers of selectors.length > 0 ? selectors : [[]]) {
      const series = await selectWithLabels(
        ctx.deps.store,
        { matchers, startMs, endMs, latestOnly: true },
        { run },
        signal,
      );
      for (const s of series) found.set(labelsKey(s.labels), s.labels);
    }
    return [...found.values()];
  };

  const truncate = <T>(items: T[], limit: number | undefined): { data: T[]; warnings?: string[] } =>
    limit !== undefined && items.length > limit
      ? { data: items.slice(0, limit), warnings: ['results truncated due to limit'] }
      : { data: items };

  route('/api/v1/series', async (params) => {
    const selectors = matchParams(params);
    if (selectors.length === 0) throw badData('no match[] parameter provided');
    const limit = limitParam(params);
    const series = (await matchingSeries(params, selectors)).sort(compareLabels).map(sortedLabels);
    return truncate(series, limit);
  });

  route('/api/v1/labels', async (params) => {
    const limit = limitParam(params);
    const names = new Set<string>();
    for (const labels of await matchingSeries(params, matchParams(params))) {
      for (const name of Object.keys(labels)) names.add(name);
    }
    return truncate([...names].sort(), limit);
  });

  route('/api/v1/label/:name/values', async (params, request) => {
    const { name } = request.params as { name: string };
    if (!LABEL_NAME.test(name)) throw badData(`invalid label name: ${JSON.stringify(name)}`);
    const limit = limitParam(params);
    const values = new Set<string>();
    for (const labels of await matchingSeries(params, matchParams(params))) {
      if (Object.hasOwn(labels, name)) values.add(labels[name]!);
    }
    return truncate([...values].sort(), limit);
  });

  route('/api/v1/metadata', async (params) => {
    const limit = limitParam(params);
    const metric = first(params, 'metric');
    const data: Record<string, { type: string; help: string; unit: string }[]> = {};
    let n = 0;
    for (const field of DCGM_FIELDS) {
      if (metric !== undefined && metric !== '' && field.field !== metric) continue;
      if (limit !== undefined && n >= limit) break;
      data[field.field] = [{ type: field.kind, help: metricHelp(field.description, field.unit), unit: '' }];
      n++;
    }
    return { data };
  });

  route('/api/v1/status/buildinfo', async () => ({
    data: {
      version: PROMETHEUS_COMPAT_VERSION,
      revision: '',
      branch: '',
      buildUser: 'nexus-telemetry',
      buildDate: '',
      goVersion: '',
    },
  }));
};

/** dcgm-exporter's HELP text style: `GPU utilization (in %).` */
export function metricHelp(description: string, unit: string): string {
  return unit === '' || unit === 'count' || unit === 'code'
    ? `${description}.`
    : `${description} (in ${unit}).`;
}
