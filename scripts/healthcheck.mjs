// Container health check of the nexus-telemetry image, for every role the one image runs:
// `api` and `start` serve HTTP (HTTPS with TLS_CERT_FILE), so they are healthy when GET /health on
// PORT answers 200 within the timeout; `collector` and `streamer` serve no HTTP and are healthy while their process runs (the
// orchestrator restarts them when they exit). Plain JavaScript so the runtime image needs no tsx.
/* global process, console */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const ROLES = ['start', 'api', 'collector', 'streamer', 'generate'];

/** The CLI subcommand of the container's main process (PID 1, or the child of an init). */
function role() {
  for (const pid of ['1', String(process.ppid)]) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const found = argv.find((arg) => ROLES.includes(arg));
      if (found) return found;
    } catch {
      // not readable: try the next candidate
    }
  }
  return 'api';
}

const current = role();
if (current !== 'api' && current !== 'start') process.exit(0);

const port = process.env.PORT || '8080';
// With TLS_CERT_FILE the API serves HTTPS only. The check asks its own process over loopback, so it
// does not verify the certificate (whose name is the service's, not 127.0.0.1); it checks liveness.
const tls = Boolean(process.env.TLS_CERT_FILE);
const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}/health`;
try {
  const status = await get(url);
  if (status !== 200) console.error(`GET /health answered ${status}`);
  process.exit(status === 200 ? 0 : 1);
} catch (error) {
  console.error(`GET ${url} failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

/** The status code of GET `target`, within 4 s. */
function get(target) {
  return new Promise((resolve, reject) => {
    const request = (tls ? https : http).get(
      target,
      { timeout: 4000, ...(tls ? { rejectUnauthorized: false } : {}) },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out after 4 s')));
    request.on('error', reject);
  });
}
