/**
 * Liveness and readiness: GET /health answers while the process serves HTTP; GET /ready runs every
 * dependency check (in parallel, each with a timeout) and answers 503 naming the ones that failed.
 * Check errors are logged, not returned, so backend details (hosts, users) stay out of responses.
 */
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyPluginAsync } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import type { ApiContext } from '../context.js';
import { errorSchema, noQuerySchema, responseSchema } from '../schemas.js';

const checksSchema = {
  type: 'object',
  additionalProperties: { type: 'string', enum: ['ok', 'failed', 'timeout'] },
} as const;

/** The outcome of one readiness check. */
type CheckState = FromSchema<typeof checksSchema>[string];

/** Run one check; a check that neither resolves nor rejects within `timeoutMs` counts as timed out. */
async function runCheck(
  check: () => Promise<void>,
  timeoutMs: number,
): Promise<{ state: CheckState; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ state: CheckState }>((resolve) => {
    timer = setTimeout(() => resolve({ state: 'timeout' }), timeoutMs);
  });
  const outcome = Promise.resolve()
    .then(check)
    .then(
      () => ({ state: 'ok' as const }),
      (error: unknown) => ({ state: 'failed' as const, error }),
    );
  try {
    return await Promise.race([outcome, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Routes GET /health and GET /ready. */
export const healthRoutes: FastifyPluginAsync<ApiContext> = async (app, ctx) => {
  const api = app.withTypeProvider<JsonSchemaToTsProvider>();
  api.get(
    '/health',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness',
        querystring: noQuerySchema,
        response: {
          200: responseSchema({
            type: 'object',
            required: ['status'],
            properties: { status: { type: 'string', enum: ['ok'] } },
          }),
        },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  api.get(
    '/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: every dependency check passes',
        querystring: noQuerySchema,
        response: {
          200: responseSchema({
            type: 'object',
            required: ['status', 'checks'],
            properties: { status: { type: 'string', enum: ['ready'] }, checks: checksSchema },
          }),
          503: responseSchema({
            description: 'A dependency check failed; `checks` says which',
            type: 'object',
            required: ['status', 'checks', 'error'],
            properties: {
              status: { type: 'string', enum: ['unavailable'] },
              checks: checksSchema,
              error: errorSchema.properties.error,
            },
          }),
        },
      },
    },
    async (request, reply) => {
      const names = Object.keys(ctx.deps.readiness).sort();
      const results = await Promise.all(
        names.map((name) => runCheck(ctx.deps.readiness[name]!, ctx.readinessTimeoutMs)),
      );
      const checks: Record<string, CheckState> = {};
      const failed: string[] = [];
      results.forEach(({ state, error }, i) => {
        const name = names[i]!;
        checks[name] = state;
        if (state === 'ok') return;
        failed.push(name);
        request.log.warn({ check: name, state, err: error }, 'readiness check failed');
      });
      if (failed.length === 0) return { status: 'ready' as const, checks };
      return reply.status(503).send({
        status: 'unavailable' as const,
        checks,
        error: {
          code: 'BACKEND_UNAVAILABLE',
          message: `Not ready: ${failed.map((n) => `${n} ${checks[n]}`).join(', ')}`,
        },
      });
    },
  );
};
