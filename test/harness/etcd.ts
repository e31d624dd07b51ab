/**
 * Test harness: a throwaway etcd (Debian `etcd-server`, v3.4) of one or three members on free
 * loopback ports, data in a temp directory (on /dev/shm when present, so fsync costs nothing),
 * with kill / restart / pause (SIGSTOP) per member for fault-injection tests. stop() leaves no
 * process and no directory behind. Never skips: a missing binary is an error that says what to install.
 * With `tls`, clients speak HTTPS (optionally with client certificates); health is then checked on a
 * plain-HTTP metrics listener.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

const ETCD_BIN = '/usr/bin/etcd';

/** Options of {@link startEtcd}. */
export interface StartEtcdOptions {
  /** Cluster size (default 1). */
  members?: 1 | 3;
  /** Backend quota in bytes (default 256 MiB, far below etcd's 2 GiB so quota tests are quick). */
  quotaBackendBytes?: number;
  /** Extra flags for every member, e.g. `['--auto-compaction-mode=revision', '--auto-compaction-retention=1000']`. */
  extraArgs?: string[];
  /** How long to wait for the cluster to be healthy, in ms (default 30 000). */
  startTimeoutMs?: number;
  /** Serve clients over TLS with this server certificate (PEM files); peers stay plain HTTP. */
  tls?: {
    certFile: string;
    keyFile: string;
    /** CA that signs client certificates (`--trusted-ca-file`). */
    trustedCaFile?: string;
    /** Require a client certificate signed by `trustedCaFile` (`--client-cert-auth`). */
    clientCertAuth?: boolean;
  };
}

/** A running test etcd cluster. */
export interface EtcdHandle {
  /** Client endpoints, `127.0.0.1:port` (`https://127.0.0.1:port` with `tls`), one per member. */
  readonly endpoints: string[];
  /** `endpoints` joined with commas, as ETCD_ENDPOINTS would hold them. */
  readonly endpointList: string;
  /** The temp directory holding every member's data and log (removed by stop()). */
  readonly dir: string;
  /** SIGTERM every member (SIGKILL after 5 s), then remove the directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL member `i` (a crash); its data stays for restartMember(). */
  killMember(i: number): Promise<void>;
  /** Start member `i` again on the same ports and data; resolves when it reports healthy. */
  restartMember(i: number): Promise<void>;
  /** SIGSTOP member `i` (a hung process: connections stay open, nothing answers). */
  pauseMember(i: number): void;
  /** SIGCONT member `i`. */
  resumeMember(i: number): void;
  /** Whether member `i`'s process is running (paused counts as running). */
  isRunning(i: number): boolean;
  /** The tail of member `i`'s log, for failure messages. */
  logPath(i: number): string;
}

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  /** Plain-HTTP /health listener when clients use TLS. */
  metricsPort: number | undefined;
  dataDir: string;
  logFile: string;
  process: ChildProcess | undefined;
  exited: Promise<void> | undefined;
}

/** GET /health on a client port; true when the member has a leader and answers. */
function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', timeout: 1_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The test process's environment minus ETCD_* variables, which etcd would read as flags. */
function serverEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
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

/**
 * Start an etcd cluster of `members` members and wait until every member is healthy.
 * Throws if /usr/bin/etcd is missing ("install the Debian package etcd-server").
 */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdHandle> {
  if (!existsSync(ETCD_BIN)) {
    throw new Error(`etcd binary not found: install the Debian package etcd-server (expected ${ETCD_BIN})`);
  }
  const size = options.members ?? 1;
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(join(base, 'nexus-etcd-'));
  const members: Member[] = [];
  for (let i = 0; i < size; i++) {
    members.push({
      name: `m${i}`,
      clientPort: await freePort(),
      peerPort: await freePort(),
      metricsPort: options.tls ? await freePort() : undefined,
      dataDir: join(dir, `m${i}`),
      logFile: join(dir, `m${i}.log`),
      process: undefined,
      exited: undefined,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  const token = `nexus-${randomUUID()}`;
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const scheme = options.tls ? 'https' : 'http';
  const tlsArgs = (m: Member): string[] => {
    const tls = options.tls;
    if (!tls) return [];
    return [
      `--cert-file=${tls.certFile}`,
      `--key-file=${tls.keyFile}`,
      ...(tls.trustedCaFile ? [`--trusted-ca-file=${tls.trustedCaFile}`] : []),
      ...(tls.clientCertAuth ? ['--client-cert-auth'] : []),
      `--listen-metrics-urls=http://127.0.0.1:${m.metricsPort}`,
    ];
  };

  const launch = (m: Member, state: 'new' | 'existing'): void => {
    const log = openSync(m.logFile, 'a');
    const child = spawn(
      ETCD_BIN,
      [
        `--name=${m.name}`,
        `--data-dir=${m.dataDir}`,
        `--listen-client-urls=${scheme}://127.0.0.1:${m.clientPort}`,
        `--advertise-client-urls=${scheme}://127.0.0.1:${m.clientPort}`,
        `--listen-peer-urls=http://127.0.0.1:${m.peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${m.peerPort}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-state=${state}`,
        `--initial-cluster-token=${token}`,
        `--quota-backend-bytes=${options.quotaBackendBytes ?? 256 * 1024 * 1024}`,
        '--logger=zap',
        '--log-level=warn',
        ...tlsArgs(m),
        ...(options.extraArgs ?? []),
      ],
      { stdio: ['ignore', log, log], env: serverEnv() },
    );
    closeSync(log);
    m.process = child;
    m.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    trackForExit(child);
  };

  const waitHealthy = async (ms: Member[]): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (const m of ms) {
      while (!(await healthy(m.metricsPort ?? m.clientPort))) {
        if (m.process?.exitCode !== null || Date.now() > deadline) {
          const why =
            m.process?.exitCode !== null ? `exited with ${m.process?.exitCode}` : 'not healthy in time';
          throw new Error(`etcd member ${m.name} ${why}; log: ${m.logFile}`);
        }
        await sleep(100);
      }
    }
  };

  const terminate = async (m: Member, signal: NodeJS.Signals): Promise<void> => {
    const child = m.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGCONT'); // a paused member cannot act on SIGTERM
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await m.exited;
    clearTimeout(timer);
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(members.map((m) => terminate(m, 'SIGTERM')));
    await rm(dir, { recursive: true, force: true });
  };

  const member = (i: number): Member => {
    const m = members[i];
    if (!m) throw new Error(`no etcd member ${i} (cluster of ${members.length})`);
    return m;
  };

  try {
    for (const m of members) launch(m, 'new');
    await waitHealthy(members);
  } catch (error) {
    await stop();
    throw error;
  }

  const endpoints = members.map((m) =>
    options.tls ? `https://127.0.0.1:${m.clientPort}` : `127.0.0.1:${m.clientPort}`,
  );
  return {
    endpoints,
    endpointList: endpoints.join(','),
    dir,
    stop,
    killMember: (i) => terminate(member(i), 'SIGKILL'),
    restartMember: async (i) => {
      const m = member(i);
      await terminate(m, 'SIGTERM');
      launch(m, 'existing');
      await waitHealthy([m]);
    },
    pauseMember: (i) => void member(i).process?.kill('SIGSTOP'),
    resumeMember: (i) => void member(i).process?.kill('SIGCONT'),
    isRunning: (i) => {
      const p = member(i).process;
      return p !== undefined && p.exitCode === null && p.signalCode === null;
    },
    logPath: (i) => member(i).logFile,
  };
}
