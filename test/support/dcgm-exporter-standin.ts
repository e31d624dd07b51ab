/**
 * A dcgm-exporter stand-in for tests: a node:http server on 127.0.0.1 (port 0) that serves an
 * exposition body at /metrics the way dcgm-exporter does (`Content-Type: text/plain; version=0.0.4;
 * charset=utf-8`), gzip-encoded when asked and the client accepts it. It can also misbehave: answer
 * late (past a scraper's timeout), serve garbage, or answer with an error status. It records the
 * headers of every request so tests can check what a scraper sent.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

/** The dcgm-exporter sample fixture (2,470 samples, 31 hosts, 247 GPUs). */
export const SAMPLE_PROM_PATH = new URL('../fixtures/dcgm-exporter/sample.prom', import.meta.url);

/** dcgm-exporter's Content-Type. */
export const DCGM_EXPORTER_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface StandinOptions {
  /** What /metrics serves (default: the sample fixture). A function is called per request. */
  body?: string | Buffer | (() => string | Buffer);
  /** Content-Type of /metrics (default dcgm-exporter's). */
  contentType?: string;
  /** gzip the body when the request accepts gzip (default false). */
  gzip?: boolean;
  /** Wait this long before answering (ms; default 0). */
  delayMs?: number;
  /** Status code of /metrics (default 200). */
  status?: number;
  /** Send the headers and only this many bytes of the (encoded) body, then stall (never end). */
  stallAfterBytes?: number;
}

export interface Standin {
  /** `http://127.0.0.1:<port>/metrics` */
  readonly url: string;
  /** Headers of every request received, in order. */
  readonly requests: IncomingHttpHeaders[];
  close(): Promise<void>;
}

/** Start a stand-in exporter on 127.0.0.1 on a free port. */
export async function startStandin(options: StandinOptions = {}): Promise<Standin> {
  const fixed =
    options.body === undefined
      ? readFileSync(SAMPLE_PROM_PATH)
      : typeof options.body === 'function'
        ? undefined
        : options.body;
  const requests: IncomingHttpHeaders[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((request, response) => {
    requests.push(request.headers);
    if (request.url !== '/metrics') {
      response.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    const answer = (): void => {
      const raw = fixed ?? (options.body as () => string | Buffer)();
      let body = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
      const headers: Record<string, string> = {
        'Content-Type': options.contentType ?? DCGM_EXPORTER_CONTENT_TYPE,
      };
      if (options.gzip === true && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) {
        body = gzipSync(body);
        headers['Content-Encoding'] = 'gzip';
      }
      headers['Content-Length'] = String(body.length);
      response.writeHead(options.status ?? 200, headers);
      if (options.stallAfterBytes !== undefined) response.write(body.subarray(0, options.stallAfterBytes));
      else response.end(body);
    };
    if ((options.delayMs ?? 0) <= 0) return answer();
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!response.destroyed) answer();
    }, options.delayMs);
    timers.add(timer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/metrics`,
    requests,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A URL on 127.0.0.1 where nothing listens (connection refused): a port bound, then released. */
export async function refusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/metrics`;
}
