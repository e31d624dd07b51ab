/**
 * Vitest global setup: build the web apps (dist/web/<name>/) once before the tests, so the browser
 * tests find them on a fresh clone. scripts/build-web.mjs skips an app that is up to date (a few
 * stat calls), so this costs nothing on later runs.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/build-web.mjs', import.meta.url));

export default function setup(): void {
  const result = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8', timeout: 600_000 });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(
      `node scripts/build-web.mjs failed (exit ${result.status}):\n${result.stdout}${result.stderr}`,
    );
  }
}
