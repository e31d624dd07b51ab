/**
 * Exclusive lock on an embedded data directory, so two `start` processes never open one store.
 *
 * On Linux the lock is a listening socket in the abstract namespace named after the directory's real
 * path: binding it is atomic, and the kernel releases it when the process dies (even by SIGKILL),
 * so a crash never leaves a stale lock behind. Elsewhere it is a `nexus.lock` file created
 * exclusively, taken over only when the process it names is gone. Either way `nexus.lock` in the
 * directory records who holds it (pid, host, start time), for the error the next process prints.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, realpathSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { NexusError } from '../errors.js';

/** Name of the file that records the holder, inside the data directory. */
export const LOCK_FILE = 'nexus.lock';

/** A held lock; `release()` is idempotent. */
export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  hostname: string;
  startedAt: string;
}

/**
 * Take the exclusive lock on `dir` (created if missing).
 * @throws NexusError `DATA_DIR_LOCKED` when another live process holds it
 */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  mkdirSync(dir, { recursive: true });
  const real = realpathSync(dir);
  const file = join(real, LOCK_FILE);
  const me: Holder = { pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString() };
  if (process.platform === 'linux') {
    const server = await bindAbstract(`\0nexus-telemetry:${createHash('sha256').update(real).digest('hex')}`);
    if (!server) throw locked(dir, readHolder(file));
    writeFileSync(file, `${JSON.stringify(me)}\n`);
    return {
      path: real,
      release: async () => {
        if (!server.listening) return;
        removeIfOurs(file);
        await new Promise<void>((done) => server.close(() => done()));
      },
    };
  }
  takeLockFile(dir, file, me);
  let released = false;
  return {
    path: real,
    release: () => {
      if (!released) removeIfOurs(file);
      released = true;
      return Promise.resolve();
    },
  };
}

/** Listen on an abstract socket; undefined when another process has it. */
function bindAbstract(name: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    // Nobody is meant to connect; anything that does is dropped at once.
    const server = createServer((socket) => socket.destroy());
    server.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EADDRINUSE' ? resolve(undefined) : reject(error),
    );
    server.listen(name, () => {
      server.unref(); // the lock must not keep the process alive
      resolve(server);
    });
  });
}

/** Portable fallback: create the file exclusively; replace it only when its holder is dead. */
function takeLockFile(dir: string, file: string, me: Holder): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeFileSync(fd, `${JSON.stringify(me)}\n`);
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readHolder(file);
    if (holder && holder.hostname === me.hostname && !isAlive(holder.pid)) {
      rmSync(file, { force: true }); // stale: its process is gone
      continue;
    }
    throw locked(dir, holder);
  }
  throw locked(dir, readHolder(file));
}

function readHolder(file: string): Holder | undefined {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<Holder>;
    if (typeof value.pid === 'number' && typeof value.hostname === 'string')
      return { pid: value.pid, hostname: value.hostname, startedAt: String(value.startedAt ?? '') };
  } catch {
    // missing or unreadable: the holder is unknown
  }
  return undefined;
}

function removeIfOurs(file: string): void {
  if (readHolder(file)?.pid === process.pid) rmSync(file, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function locked(dir: string, holder: Holder | undefined): NexusError {
  const who = holder
    ? `process ${holder.pid} on ${holder.hostname}${holder.startedAt ? ` (since ${holder.startedAt})` : ''}`
    : 'another process';
  return new NexusError(
    'DATA_DIR_LOCKED',
    `data directory ${dir} is in use by ${who}; stop it first, or give this one another --data-dir (DATA_DIR)`,
    { details: { dataDir: dir, ...(holder ? { pid: holder.pid, hostname: holder.hostname } : {}) } },
  );
}
