/**
 * GET /api/v1/alerts and GET /api/v1/rules in Prometheus' shapes, read from the alert state the
 * evaluating process keeps in the coordination store (`/telemetry/alerts/{cluster}/...`): the
 * embedded process itself in `start`, the collectors' maintenance leader in nexus mode. Every
 * cluster with alert state is listed. Like the other Prometheus API routes they are not in
 * /openapi.json.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { RulesSnapshot, StoredAlert } from '../../alerting/state-store.js';
import type { ApiContext } from '../context.js';

const PREFIX = '/telemetry/alerts/';

interface Read {
  alerts: StoredAlert[];
  rules: RulesSnapshot[];
}

async function readAll(ctx: ApiContext): Promise<Read> {
  const { kvs } = await ctx.deps.coordination.range(PREFIX);
  const out: Read = { alerts: [], rules: [] };
  for (const kv of kvs) {
    const rest = kv.key.slice(PREFIX.length).split('/');
    try {
      if (rest[1] === 'active') out.alerts.push(JSON.parse(kv.value) as StoredAlert);
      else if (rest[1] === 'rules' && rest.length === 2)
        out.rules.push(JSON.parse(kv.value) as RulesSnapshot);
    } catch {
      // A value that does not parse is skipped (it is rewritten on the next change).
    }
  }
  return out;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Go's strconv.FormatFloat(v, 'e', -1, 64), as Prometheus writes an alert's value (`9.5e+01`). */
export function formatAlertValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  const [mantissa, exponent] = v.toExponential().split('e') as [string, string];
  const e = Number(exponent);
  return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}

/** One alert as Prometheus' /api/v1/alerts and /api/v1/rules list it. */
function alertView(a: StoredAlert) {
  return {
    labels: a.labels,
    annotations: a.annotations,
    state: a.state,
    activeAt: iso(a.activeAt),
    ...(a.keepFiringSince === undefined ? {} : { keepFiringSince: iso(a.keepFiringSince) }),
    value: formatAlertValue(a.value),
  };
}

const shown = (a: StoredAlert): boolean => a.state !== 'inactive';

/** The two routes. */
export const alertRoutes: FastifyPluginAsync<{ ctx: ApiContext }> = async (app, { ctx }) => {
  app.get('/api/v1/alerts', { schema: { hide: true } }, async () => {
    const { alerts } = await readAll(ctx);
    return {
      status: 'success',
      data: {
        alerts: alerts
          .filter(shown)
          .sort((a, b) => a.activeAt - b.activeAt)
          .map(alertView),
      },
    };
  });

  app.get('/api/v1/rules', { schema: { hide: true } }, async (request) => {
    const type = (request.query as Record<string, unknown>).type;
    const { alerts, rules } = await readAll(ctx);
    const byRule = new Map<string, StoredAlert[]>();
    for (const a of alerts.filter(shown)) {
      const list = byRule.get(a.rule) ?? [];
      list.push(a);
      byRule.set(a.rule, list);
    }
    const groups = rules.flatMap((snapshot) =>
      snapshot.groups.map((g) => ({
        name: g.name,
        file: g.file,
        interval: g.interval,
        limit: g.limit,
        evaluationTime: g.evaluationTime,
        lastEvaluation: g.lastEvaluation,
        rules: g.rules
          .filter((r) => type === undefined || (type === 'alert') === (r.type === 'alerting'))
          .map((r) => {
            const active = byRule.get(r.key) ?? [];
            const state = active.some((a) => a.state === 'firing')
              ? 'firing'
              : active.length > 0
                ? 'pending'
                : 'inactive';
            return {
              state,
              name: r.name,
              query: r.query,
              duration: r.duration,
              keepFiringFor: r.keepFiringFor,
              labels: r.labels,
              annotations: r.annotations,
              alerts: active.map(alertView),
              health: r.health,
              ...(r.lastError === '' ? {} : { lastError: r.lastError }),
              evaluationTime: r.evaluationTime,
              lastEvaluation: r.lastEvaluation,
              type: r.type,
            };
          }),
      })),
    );
    // A refused reload (the previous rules stay in force) shows as a warning, Prometheus' way.
    const warnings = rules.flatMap((r) => {
      const e = r.reloadError;
      if (e === undefined) return [];
      const where = e.file === undefined ? '' : `${e.file}:${e.line ?? 0}:${e.column ?? 0}: `;
      return [`rule reload refused at ${e.at}: ${where}${e.reason}`];
    });
    return { status: 'success', data: { groups }, ...(warnings.length > 0 ? { warnings } : {}) };
  });
};
