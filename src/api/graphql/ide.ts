/**
 * GraphiQL at GET /graphql: the page built from web/graphiql by Vite (`npm run build`, into
 * dist/web/graphiql; React, monaco and its workers bundled, nothing from a CDN) with the server's
 * settings injected as a JSON script tag: the guide's query and subscription for the server's
 * cluster (the starting tabs), and whether the API wants a bearer token. The hashed assets are
 * served under /graphql/assets/ (http.ts). Unbuilt: 503 saying to run `npm run build`.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** Where `npm run build` puts GraphiQL (the same from src/api/graphql and dist/api/graphql). */
export const GRAPHIQL_DIST = fileURLToPath(new URL('../../../dist/web/graphiql', import.meta.url));

/** URL prefix of GraphiQL's hashed assets (Vite's `base` is /graphql/). */
export const GRAPHIQL_ASSETS_PREFIX = '/graphql/assets/';

/** True when an Accept header names text/html (a browser navigating), not with q=0. */
export function acceptsHtml(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((range) => {
    const [type, ...params] = range.split(';').map((p) => p.trim().toLowerCase());
    return type === 'text/html' && !params.some((p) => /^q=0(\.0*)?$/.test(p));
  });
}

/** The guide's cluster query for `clusterId`, GraphiQL's starting document. */
export function guideQuery(clusterId: string): string {
  return `query {
  cluster(id: ${JSON.stringify(clusterId)}) {
    id
    name
    region
    totalHosts
    totalGPUs
    hosts {
      id
      hostname
      gpus {
        id
        deviceName
        status {
          utilizationPercent
          temperatureCelsius
          healthy
        }
      }
    }
  }
}`;
}

/** The guide's subscription for `clusterId`, GraphiQL's second tab. */
export function guideSubscription(clusterId: string): string {
  return `subscription {
  telemetryUpdates(clusterId: ${JSON.stringify(clusterId)}) {
    eventType
    timestamp
    hostId
    gpuId
    data {
      gpuUtilization
      temperature
      powerDraw
    }
  }
}`;
}

/** Content-Security-Policy of the page: its own scripts, styles, fonts and workers only. */
export const IDE_CSP =
  "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self' 'unsafe-inline'; " +
  "font-src 'self' data:; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; " +
  "form-action 'none'; frame-ancestors 'none'";

/** What the page reads from `#graphiql-config` (web/graphiql/src/main.tsx). */
export interface IdeConfig {
  query: string;
  subscription: string;
  auth: boolean;
}

/** The page's settings for `clusterId`. */
export function ideConfig(clusterId: string, auth: boolean): IdeConfig {
  return { query: guideQuery(clusterId), subscription: guideSubscription(clusterId), auth };
}

/** JSON safe inside a script element: no `<` (so no `</script>`), no U+2028/2029. */
const scriptJson = (value: unknown): string =>
  JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

/** `html` (the built index.html) with `config` injected before `</head>`. */
export function injectConfig(html: string, config: IdeConfig): string {
  const tag = `<script id="graphiql-config" type="application/json">${scriptJson(config)}</script>`;
  const at = html.indexOf('</head>');
  return at < 0 ? `${tag}${html}` : `${html.slice(0, at)}${tag}\n${html.slice(at)}`;
}

/** The built index.html in `dir`, or undefined when GraphiQL has not been built. */
export async function readIdeHtml(dir: string): Promise<string | undefined> {
  try {
    return await readFile(`${dir}/index.html`, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
