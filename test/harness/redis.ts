/**
 * Test harness: a throwaway redis-server on a free loopback port with its own data directory,
 * with stop / kill (SIGKILL) / restart for fault-injection tests. Never skips: a missing server
 * binary is an error that says how to install it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

const REDIS_SERVER = '/usr/bin/redis-server';

/** A running test Redis. */
export interface RedisHandle {
  /** redis://127.0.0.1:<port> (rediss:// with `tls`; no credentials in it) */
  readonly url: string;
  readonly port: number;
  /** Data directory (removed by stop()). */
  readonly dir: string;
  /** Graceful shutdown (SIGTERM), then remove the data directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL the server, as a crash; the data directory stays for restart(). */
  kill(): Promise<void>;
  /** Stop the server if running (SIGTERM) and start it again on the same port and directory. */
  restart(): Promise<void>;
}

/** Options for {@link startRedis}. */
export interface StartRedisOptions {
  /** Enable the append-only file with `appendfsync always` (durable across kill()). */
  appendonly?: boolean;
  /**
   * Serve TLS only (`--port 0`, `--tls-port`) with these PEM files; clients need no certificate
   * (`--tls-auth-clients no`).
   */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /**
   * ACL rules, one user each, written as `user <rule>` lines of a config file, e.g.
   * `nexus on >secret ~* &* +@all` or `default off`.
   */
  users?: readonly string[];
}

/**
 * One PING over a raw socket (TLS without a certificate check when `tls`); true on +PONG, or on
 * -NOAUTH when the default user is off (the server is up, it wants a login).
 */
function ping(port: number, tls = false): Promise<boolean> {
  return new Promise((resolve) => {
    const socket: Socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once(tls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Start redis-server on a free 127.0.0.1 port with a temporary `--dir` and no RDB snapshots,
 * and wait until it answers PING.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisHandle> {
  if (!existsSync(REDIS_SERVER)) {
    throw new Error('redis-server not found: install the Debian package redis-server');
  }
  const dir = await mkdtemp(join(tmpdir(), 'nexus-redis-'));
  const port = await freePort();
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', ''];
  if (options.users !== undefined) {
    const conf = join(dir, 'redis.conf');
    await writeFile(conf, options.users.map((rule) => `user ${rule}\n`).join(''));
    args.unshift(conf);
  }
  if (options.tls !== undefined) {
    args.splice(args.indexOf('--port'), 2, '--port', '0', '--tls-port', String(port));
    args.push('--tls-cert-file', options.tls.certFile, '--tls-key-file', options.tls.keyFile);
    args.push('--tls-ca-cert-file', options.tls.caFile, '--tls-auth-clients', 'no');
  }
  const tls = options.tls !== undefined;
  args.push('--appendonly', options.appendonly === true ? 'yes' : 'no');
  if (options.appendonly === true) args.push('--appendfsync', 'always');
  let child: ChildProcess | undefined;
  let output = '';
  let removed = false;

  async function launch(): Promise<void> {
    output = '';
    const proc = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4000);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) break;
      if (await ping(port, tls)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    proc.kill('SIGKILL');
    await exited(proc);
    throw new Error(`redis-server on port ${port} did not answer PING:\n${output}`);
  }

  async function signal(name: NodeJS.Signals): Promise<void> {
    const proc = child;
    child = undefined;
    if (proc === undefined) return;
    proc.kill(name);
    await exited(proc);
  }

  await launch();
  return {
    url: `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    port,
    dir,
    async stop() {
      await signal('SIGTERM');
      if (!removed) {
        removed = true;
        await rm(dir, { recursive: true, force: true });
      }
    },
    async kill() {
      await signal('SIGKILL');
    },
    async restart() {
      await signal('SIGTERM');
      await launch();
    },
  };
}
