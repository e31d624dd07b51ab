// Build the web apps under web/: `node scripts/build-web.mjs [name...]` runs Vite (JS API) on each
// web/<name>/vite.config.ts (every web/*/ directory holding one when no name is given) into
// dist/web/<name>/. A name whose last build is newer than every input (web/<name>/**, web/tsconfig.json,
// src/domain/ (shared code the apps may import) and package-lock.json) is skipped; FORCE_BUILD=1
// builds anyway. After a successful build the stamp dist/web/<name>/.build-stamp is written with the
// time the build started. One line per name. Runs that overlap (several test processes) take turns
// through the lock directory dist/web/.lock. Plain JavaScript: it runs before anything is compiled
// (npm run build, npm start's prestart, the tests' global setup).
/* global process, console, URL, setTimeout */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const WEB = join(root, 'web');
const SHARED_FILES = [join(root, 'package-lock.json'), join(WEB, 'tsconfig.json')];
const SHARED_DIRS = [join(root, 'src', 'domain')];
const LOCK = join(root, 'dist', 'web', '.lock');
/** A lock older than this is left over from a killed run: taken over. */
const LOCK_STALE_MS = 15 * 60_000;

/** Modification time in ms, or undefined when the path does not exist. */
function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The newest modification time of a directory tree (the directories themselves included). */
function newestIn(dir) {
  let newest = mtime(dir) ?? 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(path) : (mtime(path) ?? 0));
  }
  return newest;
}

/** Every web/<name>/ directory that holds a vite.config.ts. */
function allNames() {
  if (!existsSync(WEB)) return [];
  return readdirSync(WEB, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(WEB, e.name, 'vite.config.ts')))
    .map((e) => e.name)
    .sort();
}

/** True when dist/web/<name>/ was built after every input last changed. */
function upToDate(name) {
  if (process.env.FORCE_BUILD === '1') return false;
  const stamp = mtime(join(root, 'dist', 'web', name, '.build-stamp'));
  if (stamp === undefined) return false;
  const newest = Math.max(
    newestIn(join(WEB, name)),
    ...SHARED_FILES.map((f) => mtime(f) ?? 0),
    ...SHARED_DIRS.map((d) => (existsSync(d) ? newestIn(d) : 0)),
  );
  return newest <= stamp;
}

/** Take the lock directory (mkdir is atomic), waiting while another run holds it. */
async function lock() {
  mkdirSync(join(root, 'dist', 'web'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      return;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      const age = Date.now() - (mtime(LOCK) ?? Date.now());
      if (age > LOCK_STALE_MS) rmSync(LOCK, { recursive: true, force: true });
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

const requested = process.argv.slice(2);
const names = requested.length > 0 ? requested : allNames();
const unknown = names.filter((n) => !existsSync(join(WEB, n, 'vite.config.ts')));
if (unknown.length > 0) {
  console.error(`build-web: no web/<name>/vite.config.ts for: ${unknown.join(', ')}`);
  process.exit(2);
}

let vite;
for (const name of names) {
  if (upToDate(name)) {
    console.log(`web/${name}: up to date`);
    continue;
  }
  await lock();
  try {
    // Another run may have built it while this one waited for the lock.
    if (upToDate(name)) {
      console.log(`web/${name}: up to date`);
      continue;
    }
    // A production bundle whatever the caller's NODE_ENV (vitest's global setup runs with `test`).
    process.env.NODE_ENV = 'production';
    vite ??= await import('vite');
    const started = Date.now();
    // Vite resolves `root`/`build.outDir` from the config file itself; it empties outDir first.
    await vite.build({ configFile: join(WEB, name, 'vite.config.ts'), logLevel: 'warn', mode: 'production' });
    const outDir = join(root, 'dist', 'web', name);
    if (!existsSync(outDir))
      throw new Error(`web/${name} built, but ${outDir} does not exist (check build.outDir)`);
    const stamp = join(outDir, '.build-stamp');
    const startedAt = new Date(started);
    writeFileSync(stamp, `${startedAt.toISOString()}\n`);
    utimesSync(stamp, startedAt, startedAt);
    console.log(`web/${name}: built in ${Date.now() - started} ms`);
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
