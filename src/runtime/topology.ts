/**
 * The topology of one process: which queue it publishes to, which queues it consumes, which
 * coordination store it shares (if any) and which sample store it writes, resolved once from the
 * configuration and the `--queue` / `--traditional` flags. This module is the one place that turns
 * ENABLE_NEXUS, ETCD_ENDPOINTS, REDIS_URL, DATABASE_URL / DB_HOST and those flags into a mode; the
 * composition roots (`embedded.ts`, `roles.ts`) open what the topology names and nothing else.
 *
 * | role | queue | coordination | samples |
 * |---|---|---|---|
 * | `start` | embedded (produce and consume) | embedded | PostgreSQL when DATABASE_URL or DB_HOST is set, else EMBEDDED_STORE (`auto`: PGlite for a DATA_DIR that already holds `pglite/` alone, else SQLite) |
 * | `streamer` | produce: `--queue`, else etcd in nexus mode, else Redis when REDIS_URL is set | etcd in nexus mode (service discovery) | none |
 * | `collector` | consume: `--queue`, else etcd in nexus mode plus every Redis topic when REDIS_URL is set | etcd in nexus mode | `victoria` when REMOTE_WRITE_URL is set (ledger in PostgreSQL), else PostgreSQL |
 * | `api` | none | etcd in nexus mode; none in traditional mode | as the collector |
 *
 * Nexus mode: ENABLE_NEXUS (default true) and ETCD_ENDPOINTS set, and no `--traditional`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import { NexusError } from '../errors.js';
import { coordinationBackend, queueBackend, requireNeeds, sampleStoreBackend } from './registry.js';

/** The process kinds of the CLI: `start` runs them all in one process. */
export type Role = 'start' | 'streamer' | 'collector' | 'api';

/** embedded: one process, nothing shared; nexus: etcd shared state; traditional: no shared state. */
export type Mode = 'embedded' | 'nexus' | 'traditional';

/** Command-line choices that shape the topology. */
export interface TopologyFlags {
  /** `--queue <kind>` (streamer, collector): that queue backend only. */
  queue?: string;
  /** `--traditional`: no etcd even when ETCD_ENDPOINTS is set (same as ENABLE_NEXUS=false). */
  traditional?: boolean;
}

/** What one process opens; every kind is a registry kind (`registry.ts`). */
export interface Topology {
  readonly role: Role;
  readonly mode: Mode;
  /** Queue kind this process publishes to (start, streamer), else undefined. */
  readonly produce: string | undefined;
  /** Queue kinds this process consumes, each on every topic it has (start, collector), else empty. */
  readonly consume: readonly string[];
  /**
   * Coordination kind holding the live hierarchy and service records: in-process for `start`, etcd
   * in nexus mode, undefined in traditional mode (no coordination store; the API derives the
   * hierarchy from the sample store).
   */
  readonly coordination: string | undefined;
  /** Sample store kind; undefined for the streamer, which stores nothing. */
  readonly samples: string | undefined;
}

/** CONFIG_INVALID naming the variable (or flag) to change. */
function invalid(message: string, details: { variable: string } | { flag: string }): NexusError {
  return new NexusError('CONFIG_INVALID', message, { details });
}

/** Whether PostgreSQL is configured (DATABASE_URL or DB_HOST). */
function postgresConfigured(config: Config): boolean {
  return Boolean(config.DATABASE_URL || config.DB_HOST);
}

/** A queue kind a separate process can use: registered, shared between processes, needs met. */
function sharedQueue(kind: string, role: Role, config: Config): string {
  const backend = queueBackend(kind);
  if (!backend.shared) {
    throw invalid(
      `the ${kind} queue lives inside one process; a separate ${role} needs a queue other processes reach: etcd (ETCD_ENDPOINTS) or Redis (REDIS_URL)`,
      { flag: '--queue' },
    );
  }
  requireNeeds(backend, 'queue', config);
  return kind;
}

/**
 * The store the collector and the API share samples through: `victoria` (remote-write TSDB, ledger
 * in PostgreSQL) when REMOTE_WRITE_URL is set, else PostgreSQL.
 */
function sharedSamples(config: Config): string {
  if (!postgresConfigured(config)) {
    throw invalid(
      'separate collector and API processes share samples through PostgreSQL: set DATABASE_URL or DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME',
      { variable: 'DATABASE_URL' },
    );
  }
  const kind = config.REMOTE_WRITE_URL ? 'victoria' : 'postgres';
  requireNeeds(sampleStoreBackend(kind), 'sample store', config);
  return kind;
}

/**
 * The embedded sample store `start` opens without PostgreSQL. `auto` (the default) keeps a data
 * directory on the store it already holds: PGlite when `DATA_DIR/pglite` exists and
 * `DATA_DIR/sqlite` does not (a directory written before SQLite was the default), SQLite otherwise,
 * in memory too (docs/performance.md: SQLite ingests about twice as fast and stores 3-7x fewer bytes
 * a sample).
 */
export function embeddedStoreKind(
  config: Config,
  exists: (path: string) => boolean = existsSync,
): 'pglite' | 'sqlite' {
  if (config.EMBEDDED_STORE !== 'auto') return config.EMBEDDED_STORE;
  if (config.MEMORY) return 'sqlite';
  return exists(join(config.DATA_DIR, 'pglite')) && !exists(join(config.DATA_DIR, 'sqlite'))
    ? 'pglite'
    : 'sqlite';
}

/**
 * Whether `auto` chose SQLite beside a PGlite database in the same DATA_DIR (both `pglite/` and
 * `sqlite/` there): `start` warns, since that PGlite data is then not what it serves.
 */
export function pgliteLeftBeside(config: Config, exists: (path: string) => boolean = existsSync): boolean {
  return (
    config.EMBEDDED_STORE === 'auto' &&
    !config.MEMORY &&
    exists(join(config.DATA_DIR, 'pglite')) &&
    exists(join(config.DATA_DIR, 'sqlite'))
  );
}

const NO_QUEUE =
  'no shared queue configured: set ETCD_ENDPOINTS (nexus mode) or REDIS_URL (traditional mode), or use --queue';

/**
 * Resolve the topology of a `role` process.
 * @throws NexusError CONFIG_INVALID (with `details.variable`) when the configuration cannot give the
 *   role what it needs: no shared queue or no PostgreSQL for a separate process, an unknown or
 *   in-process `--queue` kind, a backend whose variables are unset, or `start` with both MEMORY and
 *   PostgreSQL.
 */
export function resolveTopology(config: Config, role: Role, flags: TopologyFlags = {}): Topology {
  if (role === 'start') {
    if (flags.queue !== undefined || flags.traditional) {
      throw invalid(
        '`start` runs its queue and live state in process: --queue and --traditional apply to the separate streamer, collector and api',
        { flag: flags.queue !== undefined ? '--queue' : '--traditional' },
      );
    }
    const postgres = postgresConfigured(config);
    if (postgres && config.MEMORY) {
      throw invalid(
        'MEMORY (--memory) keeps samples in process memory, but DATABASE_URL / DB_HOST select PostgreSQL: unset one of them',
        { variable: 'MEMORY' },
      );
    }
    const samples = postgres ? 'postgres' : embeddedStoreKind(config);
    requireNeeds(sampleStoreBackend(samples), 'sample store', config);
    return Object.freeze({
      role,
      mode: 'embedded',
      produce: 'embedded',
      consume: Object.freeze(['embedded']),
      coordination: 'embedded',
      samples,
    });
  }

  const nexus = !flags.traditional && config.ENABLE_NEXUS && Boolean(config.ETCD_ENDPOINTS);
  const coordination = nexus ? 'etcd' : undefined;
  if (coordination) requireNeeds(coordinationBackend(coordination), 'coordination', config);
  const mode: Mode = nexus ? 'nexus' : 'traditional';
  const topology = (parts: Pick<Topology, 'produce' | 'consume' | 'samples'>): Topology =>
    Object.freeze({ role, mode, coordination, ...parts, consume: Object.freeze([...parts.consume]) });

  switch (role) {
    case 'streamer': {
      const kind = flags.queue ?? (nexus ? 'etcd' : config.REDIS_URL ? 'redis' : undefined);
      if (kind === undefined) throw invalid(NO_QUEUE, { variable: 'ETCD_ENDPOINTS' });
      return topology({ produce: sharedQueue(kind, role, config), consume: [], samples: undefined });
    }
    case 'collector': {
      const samples = sharedSamples(config);
      const kinds =
        flags.queue !== undefined
          ? [flags.queue]
          : [...(nexus ? ['etcd'] : []), ...(config.REDIS_URL ? ['redis'] : [])];
      if (kinds.length === 0) throw invalid(NO_QUEUE, { variable: 'ETCD_ENDPOINTS' });
      return topology({
        produce: undefined,
        consume: kinds.map((kind) => sharedQueue(kind, role, config)),
        samples,
      });
    }
    case 'api': {
      if (flags.queue !== undefined) {
        throw invalid('the api reads no queue: --queue applies to the streamer and the collector', {
          flag: '--queue',
        });
      }
      return topology({ produce: undefined, consume: [], samples: sharedSamples(config) });
    }
  }
}
