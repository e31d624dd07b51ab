/**
 * The fleet dashboard (web/dashboard, built by `npm run build` into dist/web/dashboard): GET / and
 * /index.html answer its page (`no-cache`), /assets/* its content-hashed bundles (cached for a year,
 * immutable), and any other GET that asks for HTML outside the API's own paths answers the page too
 * (a path deep link; the app turns it into its `#/...` form). Without a build, the page answers 503
 * WEB_NOT_BUILT naming `npm run build`. The page and assets hold no data and are public
 * (auth/scopes.ts); every data call the page makes is authenticated as usual.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NexusError } from '../../errors.js';
import { toErrorResponse } from '../errors.js';

/** Where `npm run build` puts the dashboard; works from src/ (tsx) and dist/ (built) alike. */
export const DASHBOARD_DIST = fileURLToPath(new URL('../../../dist/web/dashboard', import.meta.url));

/** Paths the dashboard never answers: the API's own (their unknown paths keep the JSON 404). */
const RESERVED = [
  '/api',
  '/graphql',
  '/ws',
  '/metrics',
  '/health',
  '/ready',
  '/docs',
  '/openapi.json',
  '/federate',
];

/** The page may load only its own scripts and styles and talk only to its origin (/ws included). */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // uPlot positions its cursor and legend with style attributes.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Options of {@link dashboardPlugin}. */
export interface DashboardOptions {
  /** The built dashboard (default {@link DASHBOARD_DIST}). */
  dir?: string;
}

function reserved(path: string): boolean {
  return RESERVED.some((p) => path === p || path.startsWith(`${p}/`) || path.startsWith(`${p}?`));
}

/** Register the dashboard's routes on `app` (after every API route). */
export async function dashboardPlugin(app: FastifyInstance, options: DashboardOptions = {}): Promise<void> {
  const dir = options.dir ?? DASHBOARD_DIST;

  const sendPage = async (reply: FastifyReply): Promise<FastifyReply> => {
    let html: string;
    try {
      // Read each time: a rebuild while the server runs is served at once (the file is small).
      html = await readFile(join(dir, 'index.html'), 'utf8');
    } catch {
      const missing = new NexusError(
        'WEB_NOT_BUILT',
        `the dashboard is not built (${dir} is missing): run \`npm run build\``,
      );
      const { status, body } = toErrorResponse(missing);
      return reply.status(status).header('cache-control', 'no-cache').send(body);
    }
    return reply
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'no-cache')
      .type('text/html; charset=utf-8')
      .send(html);
  };

  const hide = { schema: { hide: true } };
  app.get('/', hide, async (_request, reply) => sendPage(reply));
  app.get('/index.html', hide, async (_request, reply) => sendPage(reply));
  await app.register(fastifyStatic, {
    root: join(dir, 'assets'),
    prefix: '/assets/',
    // Names carry a content hash: a file never changes under its name.
    maxAge: '365d',
    immutable: true,
    index: false,
    decorateReply: false,
    schemaHide: true,
  });
  // Path deep links (GET /clusters/... from a browser): the page. Anything else: the JSON 404.
  app.get('/*', hide, async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '/';
    const wantsHtml = (request.headers.accept ?? '').includes('text/html');
    if (!wantsHtml || reserved(path)) return reply.callNotFound();
    return sendPage(reply);
  });
}
