// Container health check of the nexus-telemetry image, for every role the one image runs:
// `api` and `start` serve HTTP, so they are healthy when GET /health on PORT answers 200 within the
// timeout; `collector` and `streamer` serve no HTTP and are healthy while their process runs (the
// orchestrator restarts them when they exit). Plain JavaScript so the runtime image needs no tsx.
/* global process, fetch, AbortSignal, console */
import { readFileSync } from 'node:fs';

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
try {
  const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(4000) });
  if (!response.ok) console.error(`GET /health answered ${response.status}`);
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  console.error(`GET /health failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
