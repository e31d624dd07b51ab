/**
 * Shared by the health tests: generate DCGM CSV with injected faults, read it with the real DCGM
 * reader, and write it scrape by scrape into the live hierarchy (embedded coordination store)
 * through the collector's HierarchyWriter, reading health back after each scrape at sample time.
 */
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import type { Sample } from '../../src/domain/types.js';
import type { FaultSpec } from '../../src/generate/faults.js';
import { generateDcgmCsv, type GeneratorOptions } from '../../src/generate/generator.js';
import type { GpuHealth } from '../../src/health/types.js';
import { HierarchyReader } from '../../src/hierarchy/reader.js';
import { HierarchyWriter } from '../../src/hierarchy/writer.js';
import { readDcgm } from '../../src/ingest/dcgm-reader.js';
import type { Coordination } from '../../src/ports/coordination.js';

export const CLUSTER = 'health';
export const START = Date.UTC(2026, 0, 5, 12, 0, 0);
export const INTERVAL = 10_000;
export const STALE_AFTER = 60_000;

/** Samples of generated CSV, grouped by scrape time (ascending). */
export async function generatedScrapes(options: GeneratorOptions): Promise<Map<number, Sample[]>> {
  const text = [...generateDcgmCsv({ start: START, intervalMs: INTERVAL, ...options })].join('');
  const scrapes = new Map<number, Sample[]>();
  async function* chunks(): AsyncGenerator<string> {
    yield text;
  }
  for await (const rows of readDcgm(chunks(), {
    source: 'faults.csv',
    clusterId: CLUSTER,
    now: () => START,
  })) {
    for (const row of rows) {
      if (!row.ok) throw new Error(`dead letter: ${JSON.stringify(row.deadLetter)}`);
      let list = scrapes.get(row.sample.timestampMs);
      if (!list) scrapes.set(row.sample.timestampMs, (list = []));
      list.push(row.sample);
    }
  }
  return new Map([...scrapes.entries()].sort((a, b) => a[0] - b[0]));
}

/** A live hierarchy fed scrape by scrape, read at a chosen sample time. */
export class HealthRig {
  readonly coordination: Coordination = createEmbeddedCoordination();
  readonly writer = new HierarchyWriter({ coordination: this.coordination, now: () => this.clock });
  readonly reader = new HierarchyReader(this.coordination, STALE_AFTER, () => this.clock);
  clock = START;
  private batches = 0;

  /** Write one scrape's samples as one batch; the clock moves to the scrape's time. */
  async write(timeMs: number, samples: Sample[]): Promise<void> {
    this.clock = timeMs;
    await this.writer.apply({ id: `b${this.batches++}`, source: 'faults.csv', samples, deadLetters: [] });
  }

  /** Health of one GPU now. */
  async health(host: string, gpu: string): Promise<GpuHealth> {
    const status = await this.reader.getGpu(CLUSTER, host, gpu);
    if (!status) throw new Error(`no GPU ${host}/${gpu}`);
    return status.gpuHealth;
  }

  async close(): Promise<void> {
    await this.coordination.close();
  }
}

/** One observation: the reason codes and state of a GPU after a scrape. */
export interface Observation {
  offsetMs: number;
  state: GpuHealth['state'];
  codes: string[];
  health: GpuHealth;
}

/**
 * Generate with `faults`, write every scrape and observe `host`/`gpu` after each: the timeline of
 * its health by offset from the first scrape.
 */
export async function timeline(
  faults: FaultSpec[],
  host: string,
  gpu: string,
  options: GeneratorOptions = {},
): Promise<Observation[]> {
  const rig = new HealthRig();
  try {
    const out: Observation[] = [];
    for (const [t, samples] of await generatedScrapes({ hosts: 2, gpusPerHost: 2, faults, ...options })) {
      await rig.write(t, samples);
      const health = await rig.health(host, gpu);
      out.push({
        offsetMs: t - START,
        state: health.state,
        codes: health.reasons.map((r) => r.code),
        health,
      });
    }
    return out;
  } finally {
    await rig.close();
  }
}

/** The offsets (ms) at which `code` is among the reasons. */
export function whenPresent(obs: Observation[], code: string): number[] {
  return obs.filter((o) => o.codes.includes(code)).map((o) => o.offsetMs);
}

/** Offsets from..to (inclusive) stepping by the interval. */
export function offsets(fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  for (let t = fromMs; t <= toMs; t += INTERVAL) out.push(t);
  return out;
}
