/**
 * Test harness: a throwaway NATS JetStream (Debian `nats-server`, v2.9) of one or three nodes on free
 * loopback ports, store directories in a temp directory (on /dev/shm when present), with kill (SIGKILL)
 * and restart per node for fault-injection tests. Ready means every running node answers /healthz
 * (JetStream current, meta leader known) and, for a cluster, the nodes agree on a meta leader.
 * stop() leaves no process and no directory behind. Never skips: a missing binary is an error that
 * names the Debian package.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

const NATS_SERVER = '/usr/sbin/nats-server';

/** Options of {@link startNatsCluster}. */
export interface StartNatsOptions {
  /** Cluster size (default 1). */
  nodes?: 1 | 3;
  /** Require this user and password from clients (default: no authentication). */
  auth?: { user: string; password: string };
  /** How long to wait for readiness, in ms (default 30 000). */
  startTimeoutMs?: number;
}

/** A running test NATS (JetStream) server or cluster. */
export interface NatsHandle {
  /** Client URLs, `nats://127.0.0.1:port`, one per node (no credentials in them). */
  readonly urls: string[];
  /** `urls` joined with commas, as NATS_URL would hold them. */
  readonly url: string;
  /** Monitoring URLs, `http://127.0.0.1:port`, one per node (`/jsz`, `/healthz`). */
  readonly monitorUrls: string[];
  /** The temp directory holding every node's store, config and log (removed by stop()). */
  readonly dir: string;
  /** SIGKILL node `i` (a crash); its store stays for restart(). */
  kill(i: number): Promise<void>;
  /**
   * Stop node `i` if running (SIGTERM) and start it again on the same ports and store; resolves when
   * it is back in the JetStream meta group (its stream replicas may still be catching up).
   */
  restart(i: number): Promise<void>;
  /** SIGTERM every node (SIGKILL after 5 s), then remove the directory. Idempotent. */
  stop(): Promise<void>;
  /** Whether node `i`'s process is running. */
  isRunning(i: number): boolean;
  /** Path of node `i`'s log file, for failure messages. */
  logPath(i: number): string;
}

interface Node {
  name: string;
  clientPort: number;
  clusterPort: number;
  httpPort: number;
  configFile: string;
  logFile: string;
  process: ChildProcess | undefined;
  exited: Promise<void> | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** GET a monitoring path; the status code and body, or undefined when nothing answers. */
function httpGet(port: number, path: string): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 1_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** What a node's monitoring port says: its meta leader when healthy, else why it is not ready. */
async function probe(
  port: number,
  clustered: boolean,
  serverOnly: boolean,
): Promise<{ leader?: string; why: string }> {
  const health = await httpGet(port, serverOnly ? '/healthz?js-server-only=true' : '/healthz');
  if (health?.status !== 200)
    return { why: `/healthz: ${health ? `${health.status} ${health.body}` : 'no answer'}` };
  if (!clustered) return { leader: 'self', why: 'ready' };
  const jsz = await httpGet(port, '/jsz');
  if (jsz?.status !== 200) return { why: `/jsz: ${jsz ? jsz.status : 'no answer'}` };
  try {
    const parsed = JSON.parse(jsz.body) as { meta_cluster?: { leader?: string } };
    const leader = parsed.meta_cluster?.leader || undefined;
    return leader ? { leader, why: `meta leader ${leader}` } : { why: 'no meta leader' };
  } catch {
    return { why: '/jsz: unreadable' };
  }
}

/** Every harness process still running, killed if the test process exits without stop(). */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackForExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

/** A node exited while the cluster was starting; `message` ends with the tail of its log. */
class EarlyExit extends Error {}

/**
 * Start `nodes` nats-server processes with JetStream (a cluster with routes when 3) and wait until
 * JetStream is ready. Throws if /usr/sbin/nats-server is missing ("install the Debian package nats-server").
 * A node that exits while starting has most often lost one of its ports (picked free, then bound
 * by another test's server before it) and is the reason a start is tried again on new ports, up
 * to 3 times; the error then carries the node's log.
 */
export async function startNatsCluster(options: StartNatsOptions = {}): Promise<NatsHandle> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNatsClusterOnce(options);
    } catch (error) {
      if (!(error instanceof EarlyExit) || attempt >= 3) throw error;
    }
  }
}

async function startNatsClusterOnce(options: StartNatsOptions): Promise<NatsHandle> {
  if (!existsSync(NATS_SERVER)) {
    throw new Error(
      `nats-server not found: install the Debian package nats-server (expected ${NATS_SERVER})`,
    );
  }
  const size = options.nodes ?? 1;
  const clustered = size > 1;
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(join(base, 'nexus-nats-'));
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const nodes: Node[] = [];
  for (let i = 0; i < size; i++) {
    nodes.push({
      name: `n${i}`,
      clientPort: await freePort(),
      clusterPort: await freePort(),
      httpPort: await freePort(),
      configFile: join(dir, `n${i}.conf`),
      logFile: join(dir, `n${i}.log`),
      process: undefined,
      exited: undefined,
    });
  }
  for (const n of nodes) {
    const lines = [
      `server_name: ${n.name}`,
      `listen: "127.0.0.1:${n.clientPort}"`,
      `http: "127.0.0.1:${n.httpPort}"`,
      `jetstream { store_dir: ${JSON.stringify(join(dir, n.name))}, max_memory_store: 64MB, max_file_store: 1GB }`,
    ];
    if (options.auth) {
      lines.push(
        `authorization { user: ${JSON.stringify(options.auth.user)}, password: ${JSON.stringify(options.auth.password)} }`,
      );
    }
    if (clustered) {
      const routes = nodes.map((o) => `"nats-route://127.0.0.1:${o.clusterPort}"`).join(', ');
      lines.push(`cluster { name: nexus, listen: "127.0.0.1:${n.clusterPort}", routes: [ ${routes} ] }`);
    }
    await writeFile(n.configFile, lines.join('\n') + '\n');
  }

  const launch = (n: Node): void => {
    const log = openSync(n.logFile, 'a');
    const child = spawn(NATS_SERVER, ['-c', n.configFile], { stdio: ['ignore', log, log] });
    closeSync(log);
    n.process = child;
    n.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    trackForExit(child);
  };

  const running = (n: Node): boolean =>
    n.process !== undefined && n.process.exitCode === null && n.process.signalCode === null;

  /**
   * Wait until every running node is healthy and all of them name the same meta leader. With
   * `serverOnly`, a node's own JetStream and the meta group count, not whether its stream replicas
   * caught up (after a kill -9, nats-server 2.9 can take long to call a replica current).
   */
  const waitReady = async (serverOnly = false): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const up = nodes.filter(running);
      const probes = await Promise.all(up.map((n) => probe(n.httpPort, clustered, serverOnly)));
      const leaders = probes.map((p) => p.leader);
      if (leaders.every((l) => l !== undefined) && new Set(leaders).size === 1) return;
      const dead = nodes.find((n) => n.process !== undefined && n.process.exitCode !== null);
      if (dead) {
        const log = await readFile(dead.logFile, 'utf8').catch(() => '');
        throw new EarlyExit(
          `nats-server ${dead.name} exited with ${dead.process?.exitCode}; log ${dead.logFile} ends:\n${log.split('\n').slice(-8).join('\n')}`,
        );
      }
      if (Date.now() > deadline) {
        const states = up.map((n, i) => `${n.name}: ${probes[i]?.why ?? '?'}`).join('; ');
        throw new Error(
          `NATS JetStream not ready in ${timeoutMs} ms (${states}); logs: ${nodes.map((n) => n.logFile).join(', ')}`,
        );
      }
      await sleep(100);
    }
  };

  const terminate = async (n: Node, signal: NodeJS.Signals): Promise<void> => {
    const child = n.process;
    if (!child || !running(n)) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await n.exited;
    clearTimeout(timer);
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(nodes.map((n) => terminate(n, 'SIGTERM')));
    await rm(dir, { recursive: true, force: true });
  };

  const node = (i: number): Node => {
    const n = nodes[i];
    if (!n) throw new Error(`no nats node ${i} (cluster of ${nodes.length})`);
    return n;
  };

  try {
    for (const n of nodes) launch(n);
    await waitReady();
  } catch (error) {
    await stop();
    throw error;
  }

  const urls = nodes.map((n) => `nats://127.0.0.1:${n.clientPort}`);
  return {
    urls,
    url: urls.join(','),
    monitorUrls: nodes.map((n) => `http://127.0.0.1:${n.httpPort}`),
    dir,
    stop,
    kill: (i) => terminate(node(i), 'SIGKILL'),
    restart: async (i) => {
      const n = node(i);
      await terminate(n, 'SIGTERM');
      launch(n);
      await waitReady(true);
    },
    isRunning: (i) => running(node(i)),
    logPath: (i) => node(i).logFile,
  };
}
