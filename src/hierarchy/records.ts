/**
 * What the live hierarchy stores beyond the domain's GPU record: the scrape target a GPU came from
 * and whether that target's newest complete scrape left it out (gone, so inactive at once), its
 * health (GPU records), and
 * MIG instance records, which live under their GPU and never mix their values into it.
 */
import type { GpuRecord, Sample } from '../domain/types.js';
import type { StoredHealth } from '../health/types.js';

/** Label dcgm-exporter puts on the series of a MIG GPU instance: the instance id. */
export const MIG_INSTANCE_LABEL = 'GPU_I_ID';
/** Label dcgm-exporter puts on the series of a MIG GPU instance: its profile, e.g. `1g.10gb`. */
export const MIG_PROFILE_LABEL = 'GPU_I_PROFILE';

/** The MIG instance id of a sample (`GPU_I_ID`), or undefined for a sample of a whole GPU. */
export function migInstanceOf(sample: Pick<Sample, 'labels'>): string | undefined {
  const id = sample.labels[MIG_INSTANCE_LABEL];
  return id === undefined || id === '' ? undefined : id;
}

/** Scrape-presence fields of a GPU or MIG instance record. */
export interface PresenceFields {
  /** The scrape target (URL) whose samples last updated the record; absent for other sources. */
  target?: string;
  /**
   * Set (to the scrape's start, ms) when a complete scrape of `target` did not expose the GPU or
   * instance: it is inactive from then on, until a newer sample or scrape shows it again.
   */
  goneSinceMs?: number;
}

/** A GPU record as the hierarchy stores it. */
export interface LiveGpuRecord extends GpuRecord, PresenceFields {
  /** Health from the record's own values (GPU records only; see src/health/model.ts). */
  health?: StoredHealth;
}

/** A MIG instance record at /telemetry/clusters/{c}/hosts/{h}/gpus/{g}/mig/{i}. */
export interface MigRecord extends LiveGpuRecord {
  /** GPU instance id (dcgm-exporter's `GPU_I_ID`). */
  instance: string;
  /** GPU instance profile (`GPU_I_PROFILE`, e.g. `1g.10gb`); empty when not reported. */
  profile: string;
}
