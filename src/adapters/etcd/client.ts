/**
 * Shared etcd3 client factory for the etcd adapters (coordination, queue): parses ETCD_ENDPOINTS-style
 * endpoint lists, sets per-call deadlines, and turns off etcd3's blind global retry, because a
 * write retried after a lost response can apply twice (a put, or a create-if-absent txn that then
 * "fails" against its own write). Callers retry through {@link withRetry}, which only repeats
 * reads, or writes that never reached a server. {@link toNexusError} maps etcd3/gRPC errors to
 * NexusError codes at this edge. {@link etcdConnectionOptions} turns the ETCD_* TLS and auth
 * settings into client options.
 */
import { readFileSync } from 'node:fs';
import {
  ClientClosedError,
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCInvalidArgumentError,
  GRPCUnavailableError,
  isRecoverableError,
  type IOptions,
} from 'etcd3';
import type { Config } from '../../config/config.js';
import { NexusError } from '../../errors.js';

/** Options of {@link createEtcdClient}. */
export interface EtcdClientOptions {
  /** `host:port,host:port` (as in ETCD_ENDPOINTS), or a list; `http(s)://` prefixes are allowed. */
  endpoints: string | string[];
  /** Deadline of each unary call in ms (default 5 000). Streams (watch, keep-alive) have none. */
  requestTimeoutMs?: number;
  /** How long to wait for a connection in ms (default 5 000). */
  dialTimeoutMs?: number;
  /** Username and password when etcd auth is on. */
  auth?: { username: string; password: string };
  /**
   * TLS to etcd (PEM contents): `ca` checks the server certificate (system CAs when absent), `cert`
   * and `key` are the client certificate for `--client-cert-auth`. Set, it makes bare `host:port`
   * endpoints `https://`.
   */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

/** The ETCD_* settings {@link etcdConnectionOptions} reads. */
export type EtcdConnectionConfig = Pick<
  Config,
  'ETCD_ENDPOINTS' | 'ETCD_CA_FILE' | 'ETCD_CERT_FILE' | 'ETCD_KEY_FILE' | 'ETCD_USERNAME' | 'ETCD_PASSWORD'
>;

/** Read the PEM file named by `variable`; throws CONFIG_INVALID naming the variable when unreadable. */
function readPem(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new NexusError(
      'CONFIG_INVALID',
      `invalid configuration: ${variable}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      { details: { variable, problems: [variable] } },
    );
  }
}

/**
 * Client options (TLS, auth) from the ETCD_* settings, certificate files read now, so a bad path
 * stops start-up with CONFIG_INVALID. TLS is on when a CA or client certificate is given or an
 * endpoint starts with `https://`.
 */
export function etcdConnectionOptions(config: EtcdConnectionConfig): Omit<EtcdClientOptions, 'endpoints'> {
  const options: Omit<EtcdClientOptions, 'endpoints'> = {};
  if ((config.ETCD_CERT_FILE === undefined) !== (config.ETCD_KEY_FILE === undefined)) {
    throw new NexusError(
      'CONFIG_INVALID',
      'invalid configuration: ETCD_CERT_FILE and ETCD_KEY_FILE: set both or neither',
      { details: { problems: ['ETCD_CERT_FILE', 'ETCD_KEY_FILE'] } },
    );
  }
  if (config.ETCD_CA_FILE !== undefined || config.ETCD_CERT_FILE !== undefined) {
    options.tls = {
      ca: config.ETCD_CA_FILE === undefined ? undefined : readPem('ETCD_CA_FILE', config.ETCD_CA_FILE),
      cert:
        config.ETCD_CERT_FILE === undefined ? undefined : readPem('ETCD_CERT_FILE', config.ETCD_CERT_FILE),
      key: config.ETCD_KEY_FILE === undefined ? undefined : readPem('ETCD_KEY_FILE', config.ETCD_KEY_FILE),
    };
  }
  if (config.ETCD_USERNAME !== undefined) {
    options.auth = { username: config.ETCD_USERNAME, password: config.ETCD_PASSWORD ?? '' };
  }
  return options;
}

/**
 * Parse an endpoint list (`"10.0.0.1:2379, 10.0.0.2:2379"` or an array) into etcd3 host URLs.
 * Throws CONFIG_INVALID for an empty list or an entry without a port.
 */
export function parseEndpoints(endpoints: string | string[], tls = false): string[] {
  const list = (Array.isArray(endpoints) ? endpoints : endpoints.split(','))
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (list.length === 0) {
    throw new NexusError('CONFIG_INVALID', 'ETCD_ENDPOINTS is empty', {
      details: { variable: 'ETCD_ENDPOINTS' },
    });
  }
  return list.map((entry) => {
    const url = /^https?:\/\//.test(entry) ? entry : `${tls ? 'https' : 'http'}://${entry}`;
    if (tls && url.startsWith('http://')) {
      throw new NexusError(
        'CONFIG_INVALID',
        `ETCD_ENDPOINTS entry "${entry}" is http:// but TLS is configured`,
        {
          details: { variable: 'ETCD_ENDPOINTS', value: entry },
        },
      );
    }
    if (!/^https?:\/\/[^/:]+:\d+\/?$/.test(url) && !/^https?:\/\/\[[^\]]+\]:\d+\/?$/.test(url)) {
      throw new NexusError('CONFIG_INVALID', `ETCD_ENDPOINTS entry "${entry}" is not host:port`, {
        details: { variable: 'ETCD_ENDPOINTS', value: entry },
      });
    }
    return url.replace(/\/$/, '');
  });
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type GlobalPolicy = NonNullable<FaultHandling['global']>;

/** A pass-through policy for etcd3's global slot: run once, never retry. */
const noRetry: GlobalPolicy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
  execute: async (fn, signal) => fn({ signal: signal ?? new AbortController().signal }),
};

/** Largest response accepted from etcd (a range over a big prefix): 256 MiB. */
export const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

/** Create an etcd3 client for `options.endpoints`. Connecting is lazy; the first call dials. */
export function createEtcdClient(options: EtcdClientOptions): Etcd3 {
  const hosts = parseEndpoints(options.endpoints, options.tls !== undefined);
  const requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
  const tls = options.tls;
  return new Etcd3({
    hosts,
    dialTimeout: options.dialTimeoutMs ?? 5_000,
    auth: options.auth,
    // gRPC's createSsl takes null for "system CAs"; etcd3's type insists on a Buffer.
    credentials: tls && {
      rootCertificate: tls.ca ?? (null as unknown as Buffer),
      privateKey: tls.key,
      certChain: tls.cert,
    },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
    faultHandling: { global: noRetry },
    grpcOptions: {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      // A prefix listing (hierarchy snapshot, resync) can exceed gRPC's 4 MiB default; etcd itself
      // sends responses of any size.
      'grpc.max_receive_message_length': MAX_RESPONSE_BYTES,
    },
  });
}

const unavailableMessages = [
  'etcdserver: request timed out',
  'etcdserver: leader changed',
  'etcdserver: no leader',
  'etcdserver: too many requests',
  'etcdserver: server stopped',
  'etcdserver: request cancelled',
  'etcdserver: not capable',
];

/** True when the error shows the call never reached a server, so even a write may be retried. */
export function neverSent(error: unknown): boolean {
  if (error instanceof NexusError) return error.details.neverSent === true;
  if (!(error instanceof Error)) return false;
  if ((error as { isBrokenCircuitError?: boolean }).isBrokenCircuitError) return true;
  return /No connection established|ECONNREFUSED|Failed to connect|connection refused/i.test(error.message);
}

/**
 * Map an etcd3 or gRPC error to a NexusError: closed client -> COORDINATION_CLOSED, missing lease ->
 * LEASE_LOST, compacted revision -> COMPACTED, invalid request -> BAD_REQUEST, network/server
 * trouble -> BACKEND_UNAVAILABLE (retryable), anything else -> INTERNAL. `what` names the call.
 */
export function toNexusError(error: unknown, what: string): NexusError {
  if (error instanceof NexusError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const text = `etcd ${what}: ${message}`;
  if (error instanceof EtcdAuthenticationFailedError || message.includes('authentication failed')) {
    return new NexusError('CONFIG_INVALID', `${text} (check ETCD_USERNAME and ETCD_PASSWORD)`, {
      cause: error,
      details: { problems: ['ETCD_USERNAME', 'ETCD_PASSWORD'] },
    });
  }
  if (error instanceof EtcdPermissionDeniedError || message.includes('permission denied')) {
    return new NexusError('CONFIG_INVALID', `${text} (the etcd user's role does not cover this key)`, {
      cause: error,
      details: { problems: ['ETCD_USERNAME'] },
    });
  }
  if (error instanceof ClientClosedError) {
    return new NexusError('COORDINATION_CLOSED', text, { cause: error });
  }
  if (error instanceof EtcdLeaseInvalidError || message.includes('requested lease not found')) {
    return new NexusError('LEASE_LOST', text, { cause: error });
  }
  if (message.includes('required revision has been compacted')) {
    return new NexusError('COMPACTED', text, { cause: error });
  }
  if (message.includes('database space exceeded')) {
    return new NexusError('BACKEND_UNAVAILABLE', text, { cause: error, details: { reason: 'quota' } });
  }
  if (
    error instanceof GRPCInvalidArgumentError ||
    message.includes('duplicate key given in txn request') ||
    message.includes('too many operations in txn request') ||
    message.includes('request is too large') ||
    message.includes('larger than max') ||
    message.includes('required revision is a future revision')
  ) {
    return new NexusError('BAD_REQUEST', text, { cause: error });
  }
  if (
    error instanceof GRPCUnavailableError ||
    error instanceof GRPCDeadlineExceededError ||
    (error instanceof Error && isRecoverableError(error)) ||
    (error as { isBrokenCircuitError?: boolean } | undefined)?.isBrokenCircuitError === true ||
    unavailableMessages.some((m) => message.includes(m))
  ) {
    return new NexusError('BACKEND_UNAVAILABLE', text, {
      cause: error,
      details: { neverSent: neverSent(error) },
    });
  }
  return new NexusError('INTERNAL', text, { cause: error });
}

/** Options of {@link withRetry}. */
export interface RetryOptions {
  /** Names the call in errors. */
  what: string;
  /** Safe to repeat after an unknown outcome (reads). Writes are repeated only if never sent. */
  idempotent: boolean;
  /** Give up after this many ms (default 10 000). */
  deadlineMs?: number;
  /** Stop retrying when this returns true (e.g. the adapter was closed). */
  stopped?: () => boolean;
}

/**
 * Run `fn`, retrying retryable failures with capped exponential backoff and full jitter until the
 * deadline; errors come out mapped by {@link toNexusError}.
 */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const deadline = Date.now() + (options.deadlineMs ?? 10_000);
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (raw) {
      const error = toNexusError(raw, options.what);
      const again =
        error.code === 'BACKEND_UNAVAILABLE' &&
        (options.idempotent || error.details.neverSent === true) &&
        !options.stopped?.();
      if (!again) throw error;
      const backoff = Math.random() * Math.min(1_000, 50 * 2 ** attempt);
      if (Date.now() + backoff > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, backoff));
    }
  }
}
