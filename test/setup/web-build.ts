/**
 * Vitest global setup: build the project (`npm run build`: dist/ with tsc, incremental, and the web
 * apps under dist/web/<name>/) once before the tests, so the browser tests find the apps on a fresh
 * clone and the CLI processes the tests start run the compiled code (test/support/cli-process.ts:
 * NEXUS_TEST_BUILT=1), as a deployment does, instead of compiling src/ through tsx at every start
 * (about 1 CPU-second each, and the suite starts a few hundred). Both steps skip what is up to date,
 * so a later run costs a few seconds. NEXUS_TEST_TSX=1 keeps the tsx path (no tsc build; the web apps
 * are still built). A type error in src/ now stops any `vitest run`, as it stops `npm test`.
 *
 * Also names a per-run directory for the PostgreSQL harness' initdb template
 * (NEXUS_PG_TEMPLATE_DIR, inherited by the test processes; see test/harness/postgres.ts), removed
 * at the end of the run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../scripts/build-web.mjs', import.meta.url));
const TSC = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
const BUILD_INFO = fileURLToPath(new URL('../../dist/.tsbuildinfo', import.meta.url));
const BUILT_CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Run `node <args>` in the project root; a failure stops the run with its output. */
function run(args: string[], what: string): void {
  const result = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
  if (result.error) throw result.error;
  if (result.status !== 0)
    throw new Error(`${what} failed (exit ${result.status}):\n${result.stdout}${result.stderr}`);
}

export default function setup(): () => void {
  if (process.env.NEXUS_TEST_TSX !== '1') {
    // The same compile as `npm run build` (package.json), without npm's start-up.
    const tsc = [TSC, '-p', 'tsconfig.build.json', '--incremental', '--tsBuildInfoFile', BUILD_INFO];
    run(tsc, 'building dist/ (tsc -p tsconfig.build.json)');
    // An incremental build does not re-emit outputs deleted since it ran (TypeScript #30602):
    // without its entry point, dist/ is rebuilt from scratch.
    if (!existsSync(BUILT_CLI)) {
      rmSync(BUILD_INFO, { force: true });
      run(tsc, 'rebuilding dist/ (tsc -p tsconfig.build.json)');
    }
    process.env.NEXUS_TEST_BUILT = '1';
  }
  run([SCRIPT], 'node scripts/build-web.mjs');
  const pgTemplates = mkdtempSync(join(tmpdir(), 'nexus-pg-template-'));
  process.env.NEXUS_PG_TEMPLATE_DIR = pgTemplates;
  return () => rmSync(pgTemplates, { recursive: true, force: true });
}
