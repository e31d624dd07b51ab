/**
 * etcd over TLS with client certificates, then with etcd auth on top: the test makes a CA, a server
 * and a client certificate with openssl, starts etcd with `--client-cert-auth`, and drives the
 * project's etcd queue and coordination, and a streamer CLI publishing the bundled sample, through
 * the ETCD_* TLS variables. Then it enables etcd auth (a root user and a `nexus` user whose role
 * covers `/telemetry/` and `/services/`) and checks that a wrong password is refused at once and
 * the right one works.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient, etcdConnectionOptions, parseEndpoints } from '../../src/adapters/etcd/client.js';
import { createEtcdQueue } from '../../src/adapters/etcd/queue.js';
import { batchSizeFor, loadConfig } from '../../src/config/config.js';
import { decodeBatch } from '../../src/domain/batch-codec.js';
import { NexusError } from '../../src/errors.js';
import type { Queue } from '../../src/ports/queue.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import { openCoordination, openQueue } from '../../src/runtime/registry.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { freePort } from '../harness/free-port.js';
import { startPostgres } from '../harness/postgres.js';
import { killAll, spawnCli } from '../support/cli-process.js';
import { until } from '../support/until.js';

/** Batches the bundled sample (2,470 rows) makes at the shared mode's default BATCH_SIZE (2,000: 2). */
const SAMPLE_BATCHES = Math.ceil(2_470 / batchSizeFor(loadConfig({}), 'shared'));

let dir: string;
let etcd: EtcdHandle;
/** ETCD_* variables of a client with the CA and the client certificate. */
let tlsEnv: Record<string, string>;

const pem = (name: string): string => join(dir, name);

/** Run openssl in the certificate directory. */
function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT')
      throw new Error('openssl not found: install the Debian package openssl', { cause: error });
    throw error;
  }
}

/** Make a P-256 key and a certificate for `cn` signed by the test CA, with extensions `ext`. */
function issue(name: string, cn: string, ext: string): void {
  writeFileSync(pem(`${name}.ext`), ext);
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${cn}`,
    ]),
  );
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial'].concat([
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ]),
  );
}

/** etcdctl over TLS with the client certificate (and `user` when auth is on). */
function etcdctl(args: string[], user?: string): string {
  return execFileSync(
    'etcdctl',
    [
      `--endpoints=${etcd.endpointList}`,
      `--cacert=${pem('ca.crt')}`,
      `--cert=${pem('client.crt')}`,
      `--key=${pem('client.key')}`,
      ...(user ? [`--user=${user}`] : []),
      ...args,
    ],
    { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8', stdio: 'pipe' },
  );
}

/** Claim every item in `queue`, ack it, and return the rows (samples plus dead letters) they held. */
async function drainRows(queue: Queue): Promise<{ rows: number; batches: number }> {
  let rows = 0;
  let batches = 0;
  for (;;) {
    const items = await queue.claim('tls-test', { max: 50, waitMs: 500 });
    if (items.length === 0) return { rows, batches };
    for (const item of items) {
      const batch = decodeBatch(item.payload);
      rows += batch.samples.length + batch.deadLetters.length;
      batches++;
      expect(await queue.ack(item)).toBe(true);
    }
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nexus-etcd-tls-'));
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=nexus-test-ca',
    ]),
  );
  issue('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  // The CN is no etcd user: with auth on, the client must still log in with a password.
  issue('client', 'nexus-test-client', 'extendedKeyUsage=clientAuth\n');
  etcd = await startEtcd({
    tls: {
      certFile: pem('server.crt'),
      keyFile: pem('server.key'),
      trustedCaFile: pem('ca.crt'),
      clientCertAuth: true,
    },
  });
  tlsEnv = {
    ETCD_ENDPOINTS: etcd.endpointList,
    ETCD_CA_FILE: pem('ca.crt'),
    ETCD_CERT_FILE: pem('client.crt'),
    ETCD_KEY_FILE: pem('client.key'),
  };
}, 60_000);

afterAll(async () => {
  killAll();
  await etcd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('etcd TLS settings', () => {
  it('refuses a client certificate without its key, and an unreadable CA file', () => {
    expect(() => loadConfig({ ETCD_CERT_FILE: pem('client.crt') })).toThrow(
      /ETCD_CERT_FILE and ETCD_KEY_FILE: set both or neither/,
    );
    const config = loadConfig({ ETCD_ENDPOINTS: etcd.endpointList, ETCD_CA_FILE: pem('missing.crt') });
    let caught: unknown;
    try {
      etcdConnectionOptions(config);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(NexusError);
    expect((caught as NexusError).code).toBe('CONFIG_INVALID');
    expect((caught as NexusError).message).toContain(
      `ETCD_CA_FILE: cannot read ${pem('missing.crt')} (ENOENT)`,
    );
  });

  it('refuses a user without a password, and an http:// endpoint with TLS configured', () => {
    expect(() => loadConfig({ ETCD_USERNAME: 'nexus' })).toThrow(
      /ETCD_USERNAME and ETCD_PASSWORD: set both or neither/,
    );
    const port = etcd.endpoints[0]!.split(':').pop()!;
    const config = loadConfig({ ...tlsEnv, ETCD_ENDPOINTS: `http://127.0.0.1:${port}` });
    expect(() =>
      createEtcdClient({ ...etcdConnectionOptions(config), endpoints: config.ETCD_ENDPOINTS! }),
    ).toThrow(/is http:\/\/ but TLS is configured/);
    // With TLS configured, a bare host:port is dialled as https://.
    expect(parseEndpoints(`127.0.0.1:${port}`, true)).toEqual([`https://127.0.0.1:${port}`]);
  });

  it('reads ETCD_PASSWORD from ETCD_PASSWORD_FILE', () => {
    writeFileSync(pem('password'), 's3cret\n');
    const config = loadConfig({ ETCD_USERNAME: 'nexus', ETCD_PASSWORD_FILE: pem('password') });
    expect(config.ETCD_PASSWORD).toBe('s3cret');
    expect(etcdConnectionOptions(config).auth).toEqual({ username: 'nexus', password: 's3cret' });
  });
});

describe('etcd over TLS with client certificates', () => {
  it('refuses a client without a client certificate (an error, not a hang)', async () => {
    const started = Date.now();
    const config = loadConfig({ ETCD_ENDPOINTS: etcd.endpointList, ETCD_CA_FILE: pem('ca.crt') });
    await expect(
      createEtcdQueue({
        topic: 'batches',
        clusterId: 'tls',
        endpoints: config.ETCD_ENDPOINTS!,
        client: { ...etcdConnectionOptions(config), dialTimeoutMs: 2_000, requestTimeoutMs: 2_000 },
        retryDeadlineMs: 3_000,
      }),
    ).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it('refuses a server certificate from another CA', async () => {
    openssl(
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
        '-keyout',
        'other-ca.key',
        '-out',
        'other-ca.crt',
        '-days',
        '2',
        '-subj',
        '/CN=other-ca',
      ]),
    );
    const config = loadConfig({ ...tlsEnv, ETCD_CA_FILE: pem('other-ca.crt') });
    await expect(
      createEtcdQueue({
        topic: 'batches',
        clusterId: 'tls',
        endpoints: config.ETCD_ENDPOINTS!,
        client: { ...etcdConnectionOptions(config), dialTimeoutMs: 2_000, requestTimeoutMs: 2_000 },
        retryDeadlineMs: 3_000,
      }),
    ).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
  }, 60_000);

  it('runs the etcd queue and coordination over TLS', async () => {
    const config = loadConfig({ ...tlsEnv, CLUSTER_ID: 'tls' });
    const queue = await openQueue('etcd', config, { topic: 'batches' });
    const coordination = await openCoordination('etcd', config);
    try {
      const ids = [];
      for (const text of ['a', 'b', 'c']) ids.push(await queue.enqueue(new TextEncoder().encode(text)));
      const items = await queue.claim('tls-test', { max: 10 });
      expect(items.map((i) => new TextDecoder().decode(i.payload))).toEqual(['a', 'b', 'c']);
      for (const item of items) expect(await queue.ack(item)).toBe(true);
      expect(await queue.depth()).toBe(0);

      await coordination.put('/telemetry/tls-test/key', 'value');
      expect((await coordination.get('/telemetry/tls-test/key'))?.value).toBe('value');
    } finally {
      await queue.close();
      await coordination.close();
    }
  }, 60_000);

  it('a streamer publishes the bundled sample into the etcd queue over TLS', async () => {
    const streamer = spawnCli(['streamer', bundledSamplePath()], {
      ...tlsEnv,
      CLUSTER_ID: 'tls-sample',
      SERVICE_ID: 'streamer-tls',
      LOG_LEVEL: 'warn',
    });
    await streamer.waitFor(/published 2,470 rows \(0 bad\)/, 120_000);
    expect(await streamer.exited).toBe(0);
    const queue = await openQueue('etcd', loadConfig({ ...tlsEnv, CLUSTER_ID: 'tls-sample' }), {
      topic: 'batches',
    });
    try {
      const { rows, batches } = await drainRows(queue);
      expect(rows).toBe(2_470);
      expect(batches).toBe(SAMPLE_BATCHES);
      expect(await queue.depth()).toBe(0);
    } finally {
      await queue.close();
    }
  }, 180_000);
});

describe('etcd auth over TLS', () => {
  let authEnv: Record<string, string>;

  beforeAll(() => {
    etcdctl(['user', 'add', 'root', '--new-user-password=root-pw']);
    etcdctl(['user', 'grant-role', 'root', 'root']);
    etcdctl(['role', 'add', 'nexus']);
    // Every key the project writes lives under these two prefixes (hierarchy, queue, election; service discovery).
    etcdctl(['role', 'grant-permission', 'nexus', '--prefix=true', 'readwrite', '/telemetry/']);
    etcdctl(['role', 'grant-permission', 'nexus', '--prefix=true', 'readwrite', '/services/']);
    etcdctl(['user', 'add', 'nexus', '--new-user-password=nexus-pw']);
    etcdctl(['user', 'grant-role', 'nexus', 'nexus']);
    etcdctl(['auth', 'enable']);
    writeFileSync(pem('nexus-password'), 'nexus-pw\n');
    authEnv = { ...tlsEnv, ETCD_USERNAME: 'nexus', ETCD_PASSWORD_FILE: pem('nexus-password') };
  }, 60_000);

  it('refuses a wrong password with CONFIG_INVALID at once, not after retries', async () => {
    const started = Date.now();
    const config = loadConfig({
      ...tlsEnv,
      ETCD_USERNAME: 'nexus',
      ETCD_PASSWORD: 'wrong',
      CLUSTER_ID: 'auth',
    });
    const error = await openQueue('etcd', config, { topic: 'batches' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NexusError);
    expect((error as NexusError).code).toBe('CONFIG_INVALID');
    expect((error as NexusError).message).toMatch(
      /etcdserver: authentication failed, invalid user ID or password \(check ETCD_USERNAME and ETCD_PASSWORD\)$/,
    );
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 60_000);

  it('refuses a client certificate alone once auth is on (its CN is no etcd user)', async () => {
    const config = loadConfig({ ...tlsEnv, CLUSTER_ID: 'auth' });
    const error = await openQueue('etcd', config, { topic: 'batches' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NexusError);
    expect((error as NexusError).code).toBe('CONFIG_INVALID');
  }, 60_000);

  it('works with the right password (from ETCD_PASSWORD_FILE) inside the role, and not outside it', async () => {
    const config = loadConfig({ ...authEnv, CLUSTER_ID: 'auth' });
    const queue = await openQueue('etcd', config, { topic: 'batches' });
    const coordination = await openCoordination('etcd', config);
    try {
      await queue.enqueue(new TextEncoder().encode('with-auth'));
      const [item] = await queue.claim('auth-test', { max: 1 });
      expect(new TextDecoder().decode(item!.payload)).toBe('with-auth');
      expect(await queue.ack(item!)).toBe(true);
      await coordination.put('/telemetry/auth-test', 'ok');
      expect((await coordination.get('/telemetry/auth-test'))?.value).toBe('ok');
      await expect(coordination.put('/elsewhere/key', 'no')).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('permission denied'),
      });
    } finally {
      await queue.close();
      await coordination.close();
    }
  }, 60_000);

  it('a streamer with ETCD_USERNAME and ETCD_PASSWORD_FILE publishes the bundled sample', async () => {
    const streamer = spawnCli(['streamer', bundledSamplePath()], {
      ...authEnv,
      CLUSTER_ID: 'auth-sample',
      SERVICE_ID: 'streamer-auth',
      LOG_LEVEL: 'warn',
    });
    await streamer.waitFor(/published 2,470 rows \(0 bad\)/, 120_000);
    expect(await streamer.exited).toBe(0);
    const queue = await openQueue('etcd', loadConfig({ ...authEnv, CLUSTER_ID: 'auth-sample' }), {
      topic: 'batches',
    });
    try {
      expect(await drainRows(queue)).toEqual({ rows: 2_470, batches: SAMPLE_BATCHES });
    } finally {
      await queue.close();
    }
  }, 180_000);

  it('a collector ingests the sample from the etcd queue into PostgreSQL over TLS with auth', async () => {
    const postgres = await startPostgres();
    const metricsPort = await freePort();
    const env = { ...authEnv, CLUSTER_ID: 'auth-pg', LOG_LEVEL: 'warn', POLL_INTERVAL: '200ms' };
    const collector = spawnCli(['collector'], {
      ...env,
      DATABASE_URL: await postgres.createDatabase('tls_etcd'),
      COLLECTOR_ID: 'collector-tls',
      METRICS_PORT: String(metricsPort),
    });
    const queue = await openQueue('etcd', loadConfig(env), { topic: 'batches' });
    try {
      await collector.waitFor(/consuming/, 120_000);
      const streamer = spawnCli(['streamer', bundledSamplePath()], { ...env, SERVICE_ID: 'streamer-pg' });
      await streamer.waitFor(/published 2,470 rows \(0 bad\)/, 120_000);
      expect(await streamer.exited).toBe(0);
      const written = async (): Promise<number> => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return Number(/^nexus_samples_written_total (\d+)/m.exec(text)?.[1] ?? 0);
      };
      await until(
        'the collector to write the sample and ack every batch',
        120_000,
        async () => (await written()) === 2_470 && (await queue.depth()) === 0,
        () => collector.output().slice(-2_000),
      );
      expect(await written()).toBe(2_470);
    } finally {
      await queue.close();
      collector.kill('SIGTERM');
      await Promise.race([collector.exited, new Promise((r) => setTimeout(r, 10_000))]);
      await postgres.stop();
    }
  }, 300_000);
});
