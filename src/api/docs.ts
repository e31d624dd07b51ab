/**
 * API documentation: @fastify/swagger collects every route schema into an OpenAPI 3 document,
 * served at GET /openapi.json; @fastify/swagger-ui serves an explorer at /docs.
 * Register before the routes so their schemas are collected.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/** Options of {@link registerDocs}. */
export interface DocsOptions {
  /** Version reported in the OpenAPI `info`. */
  version: string;
  /** Also serve Swagger UI at /docs. */
  ui: boolean;
  /** Declare the bearer security scheme (authentication on; each route's rule comes from src/api/auth/). */
  security?: boolean;
}

/** Register the OpenAPI generator, GET /openapi.json and (optionally) Swagger UI at /docs. */
export async function registerDocs(app: FastifyInstance, options: DocsOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'nexus-telemetry API',
        description:
          'GPU telemetry: the live Cluster -> Host -> GPU hierarchy and the DCGM time series. ' +
          'Errors share one shape: { "error": { "code", "message", "parameter"? } }.',
        version: options.version,
        license: { name: 'MIT' },
      },
      // Relative: every path is served by the API this document came from (HTTP or HTTPS).
      servers: [{ url: '/', description: 'this API' }],
      tags: [
        { name: 'clusters', description: 'Clusters and hosts of the live hierarchy' },
        { name: 'gpus', description: 'GPUs and their latest metrics' },
        { name: 'telemetry', description: 'Time series of DCGM samples' },
        { name: 'dead-letters', description: 'Input rows the pipeline refused' },
        { name: 'health', description: 'Liveness and readiness' },
        { name: 'metrics', description: 'Prometheus metrics' },
        { name: 'services', description: 'Registered pipeline processes (service discovery)' },
        { name: 'targets', description: 'Scrape targets and their health (while scraping)' },
        { name: 'ingest', description: 'Ingest endpoints: Prometheus remote write (embedded mode)' },
        { name: 'tokens', description: 'API tokens (admin scope; with authentication on)' },
      ],
      ...(options.security
        ? {
            components: {
              securitySchemes: {
                bearerAuth: {
                  type: 'http' as const,
                  scheme: 'bearer',
                  description:
                    'An API token (nxt_...) or an OIDC JWT. Scopes: read (queries, streams), write ' +
                    '(remote write), admin (services, dead letters, tokens; grants every scope). See docs/security.md.',
                },
              },
            },
          }
        : {}),
    },
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  if (options.ui) await app.register(swaggerUi, { routePrefix: '/docs' });
}
