/**
 * Sample store port: durable time series of GPU samples, the batch ledger that makes writes
 * idempotent, and the dead-letter list.
 *
 * Contract, for every adapter:
 * - `writeBatch` is atomic: the ledger entry, the samples and the dead letters of one batch commit
 *   together or not at all. A batch id already in the ledger writes nothing and returns
 *   `{ duplicate: true }`. A sample whose natural key (series, time) is already stored is skipped,
 *   so replaying the same input under other batch ids adds nothing either.
 * - When `writeBatch` resolves, the data is durable (as durable as the backend is).
 * - Queries return samples ordered by time (newest first unless `order: 'asc'`).
 * - After `close()`, every method rejects with `STORE_CLOSED`.
 */
import type { Batch, DeadLetter, Sample } from '../domain/types.js';

export interface WriteResult {
  /** True when the batch id was already in the ledger and nothing was written. */
  duplicate: boolean;
  /** Samples newly stored (duplicates by natural key excluded). */
  inserted: number;
  /** Dead letters stored. */
  deadLetters: number;
}

/** Which GPU: by cluster + host + index, or by UUID. */
export type GpuSelector = { clusterId: string; hostname: string; gpuId: string } | { uuid: string };

export interface SampleQuery {
  gpu: GpuSelector;
  /** Inclusive bounds in ms since epoch. */
  startMs?: number;
  endMs?: number;
  /** Only these DCGM field names. */
  metrics?: string[];
  /** Most samples to return (default 1000). */
  limit?: number;
  order?: 'asc' | 'desc';
}

/** A stored sample as returned by queries. */
export type StoredSample = Sample;

/** A stored dead letter with its storage id and receive time. */
export interface StoredDeadLetter extends DeadLetter {
  id: number;
  receivedAtMs: number;
}

/** One GPU known to the store (derived from its series). */
export interface StoredGpu {
  clusterId: string;
  hostname: string;
  gpuId: string;
  uuid: string;
  device: string;
  modelName: string;
}

export interface SampleStore {
  /** Create or upgrade the schema; safe to call from several processes at once. */
  migrate(): Promise<void>;
  /** Write one batch atomically and idempotently (see the module contract). */
  writeBatch(batch: Batch): Promise<WriteResult>;
  /** Samples of one GPU, filtered and ordered by time. */
  querySamples(query: SampleQuery): Promise<StoredSample[]>;
  /** Every GPU with at least one stored series, optionally in one cluster. */
  listGpus(clusterId?: string): Promise<StoredGpu[]>;
  /** The newest sample of every series, optionally in one cluster (traditional mode's hierarchy). */
  latestSamples(clusterId?: string): Promise<StoredSample[]>;
  /** Dead letters, newest first. */
  listDeadLetters(options?: { limit?: number; source?: string }): Promise<StoredDeadLetter[]>;
  /** Total number of stored samples (tests and stats). */
  countSamples(): Promise<number>;
  /** Cheap liveness check of the backend; throws when it cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
