/**
 * Service discovery on the coordination store: every streamer, collector and API process keeps a
 * record at /services/{type}/{id}, bound to a lease, so a process that dies disappears from the list
 * within the lease TTL. Records carry address, version, start time and health.
 */
import type { Coordination, Lease } from '../ports/coordination.js';

export const SERVICES_PREFIX = '/services/';

export type ServiceType = 'streamer' | 'collector' | 'api';

/** What a process says about itself. */
export interface ServiceRecord {
  type: ServiceType;
  id: string;
  /** Where to reach it (`http://host:port`), empty for processes without a listener. */
  address: string;
  version: string;
  /** Start time, RFC 3339. */
  startedAt: string;
  health: 'ok' | 'degraded';
  /** Process id and host name, to find it on a machine. */
  pid: number;
  hostname: string;
}

export const serviceKey = (type: ServiceType, id: string): string =>
  `${SERVICES_PREFIX}${type}/${encodeURIComponent(id)}`;

/** A registration that lives as long as its lease; `update` changes health, `close` deregisters. */
export interface Registration {
  readonly record: ServiceRecord;
  update(health: ServiceRecord['health']): Promise<void>;
  close(): Promise<void>;
}

/**
 * Register a service under a lease of `ttlSeconds`. If the lease is lost (the process was paused
 * past its TTL), the record is put again under a fresh lease.
 */
export async function registerService(
  coordination: Coordination,
  record: ServiceRecord,
  ttlSeconds = 10,
): Promise<Registration> {
  const key = serviceKey(record.type, record.id);
  let current = record;
  let lease: Lease;
  let closed = false;

  const attach = async (): Promise<void> => {
    lease = await coordination.grantLease(ttlSeconds);
    await coordination.put(key, JSON.stringify(current), { lease: lease.id });
    lease.onLost(() => {
      if (!closed) attach().catch(() => undefined);
    });
  };
  await attach();

  return {
    get record() {
      return current;
    },
    async update(health) {
      current = { ...current, health };
      await coordination.put(key, JSON.stringify(current), { lease: lease.id });
    },
    async close() {
      closed = true;
      await lease.revoke().catch(() => undefined);
    },
  };
}

/** Every registered service, by type then id. */
export async function listServices(coordination: Coordination): Promise<ServiceRecord[]> {
  const { kvs } = await coordination.range(SERVICES_PREFIX);
  const records: ServiceRecord[] = [];
  for (const kv of kvs) {
    try {
      records.push(JSON.parse(kv.value) as ServiceRecord);
    } catch {
      // A record that is not JSON was not written by us; leave it out of the list.
    }
  }
  return records;
}
