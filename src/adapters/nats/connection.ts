/**
 * NATS connection helpers for the JetStream queue adapter: the server list of NATS_URL, a client
 * connection that keeps reconnecting across the cluster, the stream and subject names of a topic,
 * and error mapping to NexusError at the adapter edge.
 */
import { createHash } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import { NexusError } from '../../errors.js';

/** How to reach NATS: NATS_URL's servers plus optional credentials. */
export interface NatsConnectionOptions {
  /** Server URLs (`nats://host:port`), as an array or NATS_URL's comma-separated list. */
  servers: string | readonly string[];
  user?: string;
  password?: string;
  /** How long the first connection may take, in ms (default 5 000). */
  connectTimeoutMs?: number;
  /** Client name the server shows in its connection list. */
  name?: string;
}

/** NATS_URL's comma-separated servers, blanks dropped; CONFIG_INVALID on an empty list or a bad URL. */
export function natsServers(servers: string | readonly string[]): string[] {
  const list = (typeof servers === 'string' ? servers.split(',') : [...servers])
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) throw new NexusError('CONFIG_INVALID', 'NATS_URL names no server');
  for (const server of list) {
    const withScheme = server.includes('://') ? server : `nats://${server}`;
    let parsed: URL;
    try {
      parsed = new URL(withScheme);
    } catch (cause) {
      throw new NexusError(
        'CONFIG_INVALID',
        `NATS_URL has an invalid server URL: ${JSON.stringify(server)}`,
        {
          cause,
        },
      );
    }
    if (!['nats:', 'tls:'].includes(parsed.protocol)) {
      throw new NexusError(
        'CONFIG_INVALID',
        `NATS_URL servers must be nats:// or tls:// URLs, got ${server}`,
      );
    }
  }
  return list;
}

/** Server URLs without passwords, for messages. */
export function redactServers(servers: readonly string[]): string {
  return servers.map((s) => s.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')).join(',');
}

/**
 * Connect to the first reachable server of the list; the client then reconnects forever, to any
 * server of the cluster, while the handle is open. BACKEND_UNAVAILABLE when none answers.
 */
export async function connectNats(options: NatsConnectionOptions): Promise<NatsConnection> {
  const servers = natsServers(options.servers);
  try {
    return await connect({
      servers,
      user: options.user,
      pass: options.password,
      name: options.name ?? 'nexus-telemetry',
      timeout: options.connectTimeoutMs ?? 5_000,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 10_000,
    });
  } catch (error) {
    throw toNexusError(error, `cannot connect to NATS at ${redactServers(servers)}`);
  }
}

/** A token made of the letters stream names and subjects allow; a hash suffix keeps mapped topics apart. */
function nameToken(topic: string): string {
  const safe = topic.replace(/[^A-Za-z0-9_-]/g, '_');
  if (safe === topic) return topic;
  return `${safe}_${createHash('sha256').update(topic).digest('hex').slice(0, 8)}`;
}

/** The JetStream stream holding `topic`: `NEXUS_<topic>` (`nats stream info NEXUS_telemetry`). */
export function streamName(topic: string): string {
  return `NEXUS_${nameToken(topic)}`;
}

/** The subject the items of `topic` are published on: `nexus.queue.<topic>`. */
export function itemSubject(topic: string): string {
  return `nexus.queue.${nameToken(topic)}`;
}

/** Core-NATS subject on which acks announce freed space to producers held by backpressure. */
export function freedSubject(topic: string): string {
  return `nexus.freed.${nameToken(topic)}`;
}

/** JetStream API error code of `error`, or undefined. */
export function apiCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined;
}

/** Map a client error to NexusError('BACKEND_UNAVAILABLE'); NexusErrors pass through. */
export function toNexusError(error: unknown, message: string): NexusError {
  if (error instanceof NexusError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new NexusError('BACKEND_UNAVAILABLE', `${message}: ${detail}`, { cause: error });
}
