// `npm start`'s prestart: run `npm run build` only when dist/ is older than its inputs. The inputs
// are every file and directory under src/ and web/ (a directory's time changes when a file is added,
// removed or renamed; web/ holds the web apps that scripts/build-web.mjs bundles), the tsconfig files,
// package.json and the installed dependency tree (node_modules/.package-lock.json, rewritten by every
// npm ci/install). After a successful build the stamp dist/.build-stamp is written; a later start
// with nothing newer than the stamp skips the build.
// `npm run build` itself always compiles (incrementally: dist/.tsbuildinfo), so it stays the way to
// force a build; FORCE_BUILD=1 does the same here. Plain JavaScript: it runs before anything is built.
/* global process, console, URL */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const STAMP = join(root, 'dist', '.build-stamp');
const ENTRY = join(root, 'dist', 'cli', 'main.js');
const FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'node_modules/.package-lock.json'];

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
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(path) : (mtime(path) ?? 0));
  }
  return newest;
}

/** Why a build is needed, or undefined when dist/ is up to date. */
function staleReason() {
  if (process.env.FORCE_BUILD === '1') return 'FORCE_BUILD=1';
  const stamp = mtime(STAMP);
  if (stamp === undefined || mtime(ENTRY) === undefined) return 'no complete build in dist/';
  if (newestIn(join(root, 'src')) > stamp) return 'src/ changed since the last build';
  if (existsSync(join(root, 'web')) && newestIn(join(root, 'web')) > stamp)
    return 'web/ changed since the last build';
  const changed = FILES.find((f) => (mtime(join(root, f)) ?? 0) > stamp);
  return changed ? `${changed} changed since the last build` : undefined;
}

const reason = staleReason();
if (reason === undefined) {
  console.log('build: dist/ is up to date with src/, skipping tsc (npm run build forces a build)');
} else {
  console.log(`build: ${reason}; running npm run build`);
  const started = Date.now();
  // Stamp the time the build started: a source saved during the build is newer, so it rebuilds next time.
  const startedAt = new Date(started);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  if (result.error) throw result.error;
  if (result.status !== 0) process.exit(result.status ?? 1);
  writeFileSync(STAMP, `${startedAt.toISOString()}\n`);
  utimesSync(STAMP, startedAt, startedAt);
  console.log(`build: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
