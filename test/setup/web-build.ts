/**
 * Vitest global setup: build the web apps (dist/web/<name>/) once before the tests, so the browser
 * tests find them on a fresh clone. scripts/build-web.mjs skips an app that is up to date (a few
 * stat calls), so this costs nothing on later runs.
 *
 * Also names a per-run directory for the PostgreSQL harness' initdb template
 * (NEXUS_PG_TEMPLATE_DIR, inherited by the test processes; see test/harness/postgres.ts), removed
 * at the end of the run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/build-web.mjs', import.meta.url));

export default function setup(): () => void {
  const result = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8', timeout: 600_000 });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(
      `node scripts/build-web.mjs failed (exit ${result.status}):\n${result.stdout}${result.stderr}`,
    );
  }
  const pgTemplates = mkdtempSync(join(tmpdir(), 'nexus-pg-template-'));
  process.env.NEXUS_PG_TEMPLATE_DIR = pgTemplates;
  return () => rmSync(pgTemplates, { recursive: true, force: true });
}
