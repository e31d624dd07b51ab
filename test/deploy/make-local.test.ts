/**
 * The Makefile without Docker (MODE=local), as the guide's quick start: `make quick-start-nexus`
 * brings up etcd, PostgreSQL, Redis, two collectors, the API and the streamer on the bundled sample
 * from the installed binaries; `make health-nexus`, `validate-nexus`, `test-graphql` and
 * `test-websocket` pass against it, `make load-test-nexus` (bounded) reports no errors; `make stop-nexus`
 * leaves no process. Free ports and a temporary
 * run directory, so it never collides with a pipeline on the guide's ports.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READ_VARIABLES, ROOT } from './support.js';
import { freePort } from '../harness/free-port.js';

let runDir: string;
let env: NodeJS.ProcessEnv;
const pidsSeen = new Set<number>();

function make(
  target: string,
  timeoutMs = 120_000,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('make', ['--no-print-directory', target], {
      cwd: ROOT,
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    // 'close' comes once stdout and stderr are drained ('exit' may come before the last lines); a
    // background process that kept the pipe open would hold 'close' back, hence the fallback.
    let fallback: NodeJS.Timeout | undefined;
    const done = (code: number | null): void => {
      clearTimeout(timer);
      clearTimeout(fallback);
      resolve({ code, output });
    };
    child.on('exit', (code) => {
      fallback = setTimeout(() => done(code), 3_000);
    });
    child.on('close', (code) => done(code));
  });
}

/** Pids of everything the run directory started: pid files and PostgreSQL's postmaster.pid. */
function runPids(): number[] {
  const pids: number[] = [];
  const dir = join(runDir, 'pids');
  if (existsSync(dir)) {
    for (const f of readdirSync(dir)) pids.push(Number(readFileSync(join(dir, f), 'utf8').trim()));
  }
  const postmaster = join(runDir, 'postgres', 'data', 'postmaster.pid');
  if (existsSync(postmaster)) pids.push(Number(readFileSync(postmaster, 'utf8').split('\n')[0]));
  return pids.filter((p) => Number.isInteger(p) && p > 0);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  runDir = mkdtempSync(join(tmpdir(), 'nexus-make-'));
  chmodSync(runDir, 0o755); // PostgreSQL runs as user postgres and must reach its directory
  // The caller's application settings must not leak into the local processes.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !READ_VARIABLES.has(k)));
  env = {
    ...inherited,
    MODE: 'local',
    RUN_DIR: runDir,
    ETCD_PORT: String(await freePort()),
    ETCD_PEER_PORT: String(await freePort()),
    PG_PORT: String(await freePort()),
    REDIS_PORT: String(await freePort()),
    API_PORT: String(await freePort()),
    CLUSTER_ID: 'make-test',
    LOG_LEVEL: 'warn',
  };
});

afterAll(async () => {
  if (runDir === undefined) return;
  if (runPids().some(alive)) await make('stop-nexus');
  rmSync(runDir, { recursive: true, force: true });
}, 120_000);

describe('make targets without Docker', () => {
  it('make quick-start-nexus brings the pipeline up from local binaries', async () => {
    const { code, output } = await make('quick-start-nexus', 300_000);
    expect(code, output).toBe(0);
    expect(output).toContain('"total_hosts":31,"total_gpus":247');
    for (const pid of runPids()) pidsSeen.add(pid);
    const pidFiles = readdirSync(join(runDir, 'pids')).sort();
    expect(pidFiles).toEqual(
      expect.arrayContaining(['api.pid', 'collector-1.pid', 'collector-2.pid', 'etcd.pid', 'redis.pid']),
    );
  }, 320_000);

  // The checks and the bounded load test only read from the pipeline (no rate limit by default), so
  // they run against it concurrently; the tests before and after them still run alone, in order.
  it.concurrent.for(['health-nexus', 'validate-nexus', 'test-graphql', 'test-websocket'])(
    'make %s passes against it',
    { timeout: 130_000 },
    async (target, { expect }) => {
      const { code, output } = await make(target);
      expect(code, output).toBe(0);
    },
  );

  it.concurrent(
    'make load-test-nexus prints REST, GraphQL and WebSocket figures without errors',
    async ({ expect }) => {
      // Bounded: 40 requests per endpoint, 10 /ws clients for 2 s.
      const { code, output } = await make('load-test-nexus', 120_000, {
        LOAD_REQUESTS: '40',
        LOAD_CONNECTIONS: '4',
        LOAD_DURATION: '2',
        LOAD_WS_CLIENTS: '10',
      });
      expect(code, output).toBe(0);
      for (const endpoint of ['GET /health', 'GET /api/v1/clusters/{id}', 'POST /graphql (cluster)'])
        expect(output).toContain(endpoint);
      expect(output).toMatch(/WebSocket fan-out, 10 \/ws clients/);
      expect(output).toContain('load-test: no errors');
    },
    130_000,
  );

  it('make stop-nexus leaves no process', async () => {
    expect(pidsSeen.size).toBeGreaterThanOrEqual(6);
    const { code, output } = await make('stop-nexus');
    expect(code, output).toBe(0);
    expect(output).toContain('no process left');
    expect([...pidsSeen].filter(alive)).toEqual([]);
    expect(readdirSync(join(runDir, 'pids'))).toEqual([]);
  }, 130_000);
});
