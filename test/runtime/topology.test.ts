/**
 * The topology of each process kind, resolved from configuration and flags: which queues, which
 * coordination store, which sample store, and the CONFIG_INVALID errors when the configuration
 * cannot give a process what it needs.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { NexusError } from '../../src/errors.js';
import {
  embeddedStoreKind,
  pgliteLeftBeside,
  resolveTopology,
  type Role,
  type TopologyFlags,
} from '../../src/runtime/topology.js';

const ETCD = '127.0.0.1:2379';
const REDIS = 'redis://127.0.0.1:6379';
const PG = 'postgres://u:p@127.0.0.1:5432/db';

// An empty data directory, so the embedded store `auto` picks does not depend on the working directory.
const dataDir = mkdtempSync(join(tmpdir(), 'nexus-topology-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function config(env: Record<string, string>) {
  return loadConfig({ DATA_DIR: join(dataDir, 'empty'), ...env });
}

function errorOf(
  env: Record<string, string>,
  role: Role,
  flags?: TopologyFlags,
): { code: string; message: string; details: unknown } {
  try {
    resolveTopology(config(env), role, flags);
  } catch (error) {
    expect(error).toBeInstanceOf(NexusError);
    const e = error as NexusError;
    return { code: e.code, message: e.message, details: e.details };
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('resolveTopology', () => {
  it('start: in-process queue and coordination, SQLite unless PostgreSQL is configured', () => {
    expect(resolveTopology(config({}), 'start')).toEqual({
      role: 'start',
      mode: 'embedded',
      produce: 'embedded',
      consume: ['embedded'],
      coordination: 'embedded',
      samples: 'sqlite',
    });
    // etcd and Redis settings do not pull `start` out of embedded mode.
    expect(
      resolveTopology(config({ ETCD_ENDPOINTS: ETCD, REDIS_URL: REDIS, DATABASE_URL: PG }), 'start'),
    ).toEqual({
      role: 'start',
      mode: 'embedded',
      produce: 'embedded',
      consume: ['embedded'],
      coordination: 'embedded',
      samples: 'postgres',
    });
    expect(resolveTopology(config({ DB_HOST: 'db.internal' }), 'start').samples).toBe('postgres');
  });

  it('start: EMBEDDED_STORE=auto keeps a data directory on the store it holds; pglite and sqlite are obeyed', () => {
    const dir = (name: string, ...subdirs: string[]): string => {
      const path = join(dataDir, name);
      for (const sub of subdirs) mkdirSync(join(path, sub), { recursive: true });
      return path;
    };
    const kind = (env: Record<string, string>): string | undefined =>
      resolveTopology(config(env), 'start').samples;
    expect(kind({ DATA_DIR: dir('fresh') })).toBe('sqlite');
    expect(kind({ DATA_DIR: dir('old', 'pglite') })).toBe('pglite');
    expect(kind({ DATA_DIR: dir('old', 'pglite'), EMBEDDED_STORE: 'auto' })).toBe('pglite');
    // Both present: SQLite was opened there since PGlite was, by choice.
    expect(kind({ DATA_DIR: dir('both', 'pglite', 'sqlite') })).toBe('sqlite');
    expect(pgliteLeftBeside(config({ DATA_DIR: dir('both', 'pglite', 'sqlite') }))).toBe(true);
    expect(pgliteLeftBeside(config({ DATA_DIR: dir('old', 'pglite') }))).toBe(false);
    expect(
      pgliteLeftBeside(config({ DATA_DIR: dir('both', 'pglite', 'sqlite'), EMBEDDED_STORE: 'sqlite' })),
    ).toBe(false);
    expect(kind({ DATA_DIR: dir('old', 'pglite'), MEMORY: 'true' })).toBe('sqlite');
    expect(kind({ DATA_DIR: dir('fresh'), EMBEDDED_STORE: 'pglite' })).toBe('pglite');
    expect(kind({ DATA_DIR: dir('old', 'pglite'), EMBEDDED_STORE: 'sqlite' })).toBe('sqlite');
    expect(kind({ DATA_DIR: dir('fresh'), DATABASE_URL: PG })).toBe('postgres');
    // The choice reads the directory, nothing else: a file system where nothing exists gives SQLite.
    expect(embeddedStoreKind(config({ DATA_DIR: dir('old', 'pglite') }), () => false)).toBe('sqlite');
    expect(() => loadConfig({ EMBEDDED_STORE: 'duckdb' })).toThrow(/EMBEDDED_STORE/);
  });

  it('start: refuses MEMORY with PostgreSQL, and the flags of the separate processes', () => {
    expect(errorOf({ MEMORY: 'true', DATABASE_URL: PG }, 'start')).toEqual({
      code: 'CONFIG_INVALID',
      message:
        'MEMORY (--memory) keeps samples in process memory, but DATABASE_URL / DB_HOST select PostgreSQL: unset one of them',
      details: { variable: 'MEMORY' },
    });
    expect(errorOf({}, 'start', { queue: 'redis' }).details).toEqual({ flag: '--queue' });
    expect(errorOf({}, 'start', { traditional: true }).details).toEqual({ flag: '--traditional' });
  });

  it('nexus mode: etcd queue and coordination; a collector also consumes every Redis topic', () => {
    const env = { ETCD_ENDPOINTS: ETCD, REDIS_URL: REDIS, REDIS_TOPICS: 'a,b', DATABASE_URL: PG };
    expect(resolveTopology(config(env), 'streamer')).toEqual({
      role: 'streamer',
      mode: 'nexus',
      produce: 'etcd',
      consume: [],
      coordination: 'etcd',
      samples: undefined,
    });
    expect(resolveTopology(config(env), 'collector')).toEqual({
      role: 'collector',
      mode: 'nexus',
      produce: undefined,
      consume: ['etcd', 'redis'],
      coordination: 'etcd',
      samples: 'postgres',
    });
    expect(resolveTopology(config(env), 'api')).toEqual({
      role: 'api',
      mode: 'nexus',
      produce: undefined,
      consume: [],
      coordination: 'etcd',
      samples: 'postgres',
    });
    // --queue picks one backend; the coordination store stays.
    expect(resolveTopology(config(env), 'collector', { queue: 'redis' }).consume).toEqual(['redis']);
    expect(resolveTopology(config(env), 'streamer', { queue: 'redis' })).toMatchObject({
      produce: 'redis',
      coordination: 'etcd',
    });
  });

  it('traditional mode: ENABLE_NEXUS=false or --traditional drops etcd; Redis is the queue', () => {
    const env = { ETCD_ENDPOINTS: ETCD, REDIS_URL: REDIS, DATABASE_URL: PG, ENABLE_NEXUS: 'false' };
    expect(resolveTopology(config(env), 'streamer')).toMatchObject({
      mode: 'traditional',
      produce: 'redis',
      coordination: undefined,
    });
    expect(resolveTopology(config(env), 'collector')).toMatchObject({
      mode: 'traditional',
      consume: ['redis'],
      coordination: undefined,
    });
    const nexusEnv = { ETCD_ENDPOINTS: ETCD, DATABASE_URL: PG };
    expect(resolveTopology(config(nexusEnv), 'api', { traditional: true })).toEqual({
      role: 'api',
      mode: 'traditional',
      produce: undefined,
      consume: [],
      coordination: undefined,
      samples: 'postgres',
    });
    // Without ETCD_ENDPOINTS there is no nexus mode, whatever ENABLE_NEXUS says.
    expect(resolveTopology(config({ REDIS_URL: REDIS, DATABASE_URL: PG }), 'api').mode).toBe('traditional');
  });

  it('names what is missing with CONFIG_INVALID', () => {
    const noQueue =
      'no shared queue configured: set ETCD_ENDPOINTS (nexus mode) or REDIS_URL (traditional mode), or use --queue';
    expect(errorOf({}, 'streamer')).toEqual({
      code: 'CONFIG_INVALID',
      message: noQueue,
      details: { variable: 'ETCD_ENDPOINTS' },
    });
    expect(errorOf({ DATABASE_URL: PG }, 'collector').message).toBe(noQueue);
    for (const role of ['collector', 'api'] as const) {
      expect(errorOf({ ETCD_ENDPOINTS: ETCD }, role)).toEqual({
        code: 'CONFIG_INVALID',
        message:
          'separate collector and API processes share samples through PostgreSQL: set DATABASE_URL or DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME',
        details: { variable: 'DATABASE_URL' },
      });
    }
    expect(errorOf({ REDIS_URL: REDIS }, 'streamer', { queue: 'etcd' })).toEqual({
      code: 'CONFIG_INVALID',
      message: 'the etcd queue needs ETCD_ENDPOINTS',
      details: { variable: 'ETCD_ENDPOINTS', kind: 'etcd' },
    });
    expect(errorOf({ DATABASE_URL: PG }, 'collector', { queue: 'redis' })).toMatchObject({
      message: 'the redis queue needs REDIS_URL',
      details: { variable: 'REDIS_URL', kind: 'redis' },
    });
    expect(errorOf({ ETCD_ENDPOINTS: ETCD }, 'streamer', { queue: 'embedded' })).toEqual({
      code: 'CONFIG_INVALID',
      message:
        'the embedded queue lives inside one process; a separate streamer needs a queue other processes reach: etcd (ETCD_ENDPOINTS) or Redis (REDIS_URL)',
      details: { flag: '--queue' },
    });
    expect(errorOf({ ETCD_ENDPOINTS: ETCD }, 'streamer', { queue: 'kafka' })).toEqual({
      code: 'CONFIG_INVALID',
      message: 'unknown queue backend "kafka" (registered: embedded, etcd, redis, nats)',
      details: { kind: 'kafka' },
    });
    expect(errorOf({ DATABASE_URL: PG }, 'api', { queue: 'redis' }).details).toEqual({ flag: '--queue' });
  });

  it('returns a frozen topology', () => {
    const topology = resolveTopology(config({}), 'start');
    expect(Object.isFrozen(topology)).toBe(true);
    expect(Object.isFrozen(topology.consume)).toBe(true);
  });
});
