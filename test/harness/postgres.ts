/**
 * Test harness: a real, throw-away PostgreSQL 15 server in a temp directory on a free loopback
 * port. PostgreSQL refuses to run as root, so when the tests run as root the directory is handed
 * to the `postgres` user and initdb/pg_ctl run through `runuser`. Password auth (scram) on TCP so
 * adapters are exercised with a real password; trust on the unix socket inside the temp dir.
 *
 * initdb takes about 2 s. Under Vitest, the global setup (test/setup/web-build.ts) names a per-run
 * directory in NEXUS_PG_TEMPLATE_DIR: the first server of the run initdb's a template there and
 * every server (of any test file) starts on a copy of it (`cp -a`, a fraction of a second), which
 * is what initdb would have made. Without the variable (benchmarks), each server runs initdb.
 */
import { execFile, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './free-port.js';

const execFileAsync = promisify(execFile);

/** Where Debian's postgresql-15 package puts its server binaries. */
export const POSTGRES_BIN_DIR = process.env.NEXUS_PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin';

/** Superuser password of the test server (test-only; used to check it never leaks). */
export const TEST_PG_PASSWORD = 'nexus-test-Secr3t-pw';

/** A running test server. */
export interface PostgresHarness {
  /** postgres://postgres:<password>@127.0.0.1:<port>/postgres */
  readonly connectionString: string;
  readonly port: number;
  readonly host: string;
  readonly user: string;
  readonly password: string;
  /** Fast shutdown, then remove the data directory. Idempotent. */
  stop(): Promise<void>;
  /** Crash-like stop (`pg_ctl stop -m immediate`); the directory stays, `start()` restarts it. */
  stopImmediate(): Promise<void>;
  /** Start again on the same directory and port (after `stopImmediate`). */
  start(): Promise<void>;
  /** Create a database; resolves to its connection string. */
  createDatabase(name: string): Promise<string>;
  /** Connection string of an existing database. */
  connectionStringFor(database: string): string;
}

/** Options of {@link startPostgres}; without any, a plain-TCP server with scram passwords. */
export interface StartPostgresOptions {
  /**
   * Serve TLS with this PEM certificate and key (copied into the server's directory). TCP logins
   * then need TLS: pg_hba.conf has one `hostssl ... scram-sha-256` line and no plain `host` line.
   * The harness' own connections (createDatabase) use TLS without checking the certificate.
   */
  tls?: { certFile: string; keyFile: string };
}

function postgresUid(): { uid: number; gid: number } {
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0) {
    throw new Error('running as root but there is no `postgres` user to run PostgreSQL as');
  }
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

const asRoot = process.getuid?.() === 0;

/** argv that runs a PostgreSQL binary, as the postgres user when we are root. */
function command(binary: string, args: string[]): [string, string[]] {
  const path = join(POSTGRES_BIN_DIR, binary);
  return asRoot ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

async function run(binary: string, args: string[]): Promise<void> {
  const [file, argv] = command(binary, args);
  try {
    await execFileAsync(file, argv, { timeout: 60_000 });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${binary} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: error });
  }
}

/** initdb of a new cluster at `dataDir`, superuser password from `pwFile` (both the postgres user's). */
async function initdb(dataDir: string, pwFile: string): Promise<void> {
  await run('initdb', [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '--pwfile',
    pwFile,
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '-E',
    'UTF8',
    '--no-locale',
    '--no-sync',
  ]);
}

/**
 * The run's initdb template (see the header), made on first use: initdb into a staging directory,
 * renamed into place, so a second test process (`--maxWorkers=2`) racing it uses the first one's.
 * Undefined without NEXUS_PG_TEMPLATE_DIR.
 */
async function initdbTemplate(): Promise<string | undefined> {
  const dir = process.env.NEXUS_PG_TEMPLATE_DIR;
  if (!dir || !existsSync(dir)) return undefined;
  const template = join(dir, 'data');
  if (existsSync(template)) return template;
  const staging = mkdtempSync(join(dir, 'staging-'));
  const pwFile = join(staging, 'pw');
  writeFileSync(pwFile, `${TEST_PG_PASSWORD}\n`, { mode: 0o600 });
  if (asRoot) {
    const { uid, gid } = postgresUid();
    for (const p of [dir, staging, pwFile]) chownSync(p, uid, gid);
  }
  try {
    await initdb(join(staging, 'data'), pwFile);
    if (!existsSync(template)) renameSync(join(staging, 'data'), template);
  } catch (error) {
    if (!existsSync(template)) throw error;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return template;
}

const running = new Set<{ dataDir: string; root: string }>();
let exitHookInstalled = false;

/** If a test process dies without stop(), do not leave servers and directories behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const s of running) {
      const [file, argv] = command('pg_ctl', ['stop', '-D', s.dataDir, '-m', 'immediate']);
      spawnSync(file, argv, { stdio: 'ignore', timeout: 10_000 });
      rmSync(s.root, { recursive: true, force: true });
    }
  });
}

/**
 * Start a PostgreSQL 15 server for tests. Throws, naming the Debian package `postgresql`, when the
 * server binaries are missing.
 */
export async function startPostgres(startOptions: StartPostgresOptions = {}): Promise<PostgresHarness> {
  if (!existsSync(join(POSTGRES_BIN_DIR, 'initdb')) || !existsSync(join(POSTGRES_BIN_DIR, 'pg_ctl'))) {
    throw new Error(
      `PostgreSQL server binaries not found in ${POSTGRES_BIN_DIR}: install the Debian package \`postgresql\` ` +
        '(apt-get install postgresql) or set NEXUS_PG_BIN_DIR',
    );
  }
  const root = mkdtempSync(join(tmpdir(), 'nexus-pg-'));
  const dataDir = join(root, 'data');
  const socketDir = join(root, 'sock');
  const pwFile = join(root, 'pw');
  const logFile = join(root, 'postgres.log');
  writeFileSync(pwFile, `${TEST_PG_PASSWORD}\n`, { mode: 0o600 });
  mkdirSync(socketDir);
  if (asRoot) {
    const { uid, gid } = postgresUid();
    for (const p of [root, socketDir, pwFile]) chownSync(p, uid, gid);
  }
  const port = await freePort();
  const entry = { dataDir, root };
  running.add(entry);
  installExitHook();
  try {
    const template = await initdbTemplate();
    // -a keeps the owner (postgres, when running as root) and the data directory's mode 0700.
    if (template) await execFileAsync('cp', ['-a', template, dataDir], { timeout: 60_000 });
    else await initdb(dataDir, pwFile);
  } catch (error) {
    running.delete(entry);
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  const tlsArgs: string[] = [];
  if (startOptions.tls !== undefined) {
    const certFile = join(root, 'server.crt');
    const keyFile = join(root, 'server.key');
    copyFileSync(startOptions.tls.certFile, certFile);
    copyFileSync(startOptions.tls.keyFile, keyFile);
    if (asRoot) {
      const { uid, gid } = postgresUid();
      for (const p of [certFile, keyFile]) chownSync(p, uid, gid);
    }
    chmodSync(keyFile, 0o600);
    // Overwriting keeps the file's owner (postgres when initdb ran through runuser).
    writeFileSync(
      join(dataDir, 'pg_hba.conf'),
      'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n',
    );
    tlsArgs.push('-c ssl=on', `-c ssl_cert_file=${certFile}`, `-c ssl_key_file=${keyFile}`);
  }
  const options = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${socketDir}`,
    // fsync=off survives a killed server (only an OS crash loses data); synchronous_commit=off
    // would lose committed transactions on stopImmediate(), which the crash tests rely on.
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c max_connections=100',
    ...tlsArgs,
  ].join(' ');

  let stopped = false;
  const start = async (): Promise<void> => {
    await run('pg_ctl', ['start', '-D', dataDir, '-w', '-t', '60', '-l', logFile, '-o', options]);
  };
  const host = '127.0.0.1';
  const connectionStringFor = (database: string): string =>
    `postgres://postgres:${encodeURIComponent(TEST_PG_PASSWORD)}@${host}:${port}/${encodeURIComponent(database)}`;

  try {
    await start();
  } catch (error) {
    running.delete(entry);
    rmSync(root, { recursive: true, force: true });
    throw error;
  }

  return {
    connectionString: connectionStringFor('postgres'),
    port,
    host,
    user: 'postgres',
    password: TEST_PG_PASSWORD,
    connectionStringFor,
    start,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await run('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w']);
      } catch {
        // Already stopped (e.g. after stopImmediate); removing the directory is what matters.
      }
      running.delete(entry);
      rmSync(root, { recursive: true, force: true });
    },
    async stopImmediate() {
      await run('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w']);
    },
    async createDatabase(name: string) {
      const client = new pg.Client({
        connectionString: connectionStringFor('postgres'),
        ssl: startOptions.tls === undefined ? undefined : { rejectUnauthorized: false },
      });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
      return connectionStringFor(name);
    },
  };
}
