/**
 * Workload plans for the generator: Kubernetes-like jobs that start, run through phases (busy at a
 * steady utilization, or allocated but idle), end, and move between GPUs (a job's pod is evicted
 * and resumes on other free GPUs after a short pending time). One or two GPUs per job. The plan is
 * deterministic from the seed and exported, so tests compute expected GPU-hours, energy and idle
 * spans from the plan itself rather than from the code they check. While a planned job holds a GPU
 * the generator writes exactly the plan's utilization, power and framebuffer values.
 */
import { mulberry32, type Prng } from './prng.js';
import type { ModelProfile } from './profiles.js';

/** One stretch of a job's life with constant values (job-relative scrapes, half-open). */
export interface PlannedPhase {
  /** First scrape of the phase, counted from the job's first scrape on any GPU (run time only). */
  from: number;
  /** End (exclusive), same reckoning. */
  to: number;
  /** `DCGM_FI_DEV_GPU_UTIL` (integer %); 0 in an allocated-but-idle phase. */
  util: number;
  /** `DCGM_FI_DEV_POWER_USAGE`, W. */
  powerW: number;
}

/** One placement of a job: the GPUs it held, from one scrape to another (half-open). */
export interface PlannedPlacement {
  /** GPU slots (host index * gpusPerHost + gpu index), one per GPU of the job. */
  slots: number[];
  /** First scrape (absolute, 0-based) held. */
  fromScrape: number;
  /** First scrape no longer held. */
  toScrape: number;
  /** Job-relative scrape at `fromScrape` (the run time before this placement). */
  runOffset: number;
}

/** A planned job with its attribution, profile and placements. */
export interface PlannedJob {
  /** Job name, e.g. `train-1-3`. */
  name: string;
  /** False for jobs written without attribution (see `workloadFraction`). */
  attributed: boolean;
  namespace: string;
  pod: string;
  container: string;
  /** Extra labels written into `labels_raw` (e.g. `team`). */
  labels: Record<string, string>;
  /** `DCGM_FI_DEV_FB_USED` while the job holds a GPU, MiB. */
  fbUsedMiB: number;
  phases: PlannedPhase[];
  placements: PlannedPlacement[];
}

/** What one GPU shows at one scrape while a planned job holds it. */
export interface HeldState {
  job: PlannedJob;
  phase: PlannedPhase;
}

/** The whole plan of a generated run. */
export interface WorkloadPlan {
  hosts: number;
  gpusPerHost: number;
  startMs: number;
  intervalMs: number;
  scrapes: number;
  jobs: PlannedJob[];
}

/** Inputs of the scheduler (resolved generator options). */
export interface WorkloadPlanOptions {
  hosts: number;
  gpusPerHost: number;
  intervalMs: number;
  seed: number;
  workloadFraction: number;
  profile: ModelProfile;
}

const NAMESPACES = ['ml-training', 'research', 'inference', 'batch'];
const CONTAINERS = ['trainer', 'pytorch', 'worker', 'triton'];
const TEAMS = ['vision', 'nlp', 'speech', 'platform'];

/** Mean time a free GPU waits for a new job, and mean job run time (ms). */
const MEAN_FREE_MS = 25 * 60_000;
const MEAN_RUN_MS = 90 * 60_000;
/** Share of GPUs already running a job at the first scrape. */
const INITIAL_OCCUPANCY = 0.6;

interface Running {
  job: PlannedJob;
  placement: PlannedPlacement;
  /** Absolute scrape at which this placement ends. */
  endScrape: number;
}

interface Pending {
  job: PlannedJob;
  width: number;
  /** Run time already done (job-relative scrapes). */
  runOffset: number;
  /** Earliest absolute scrape to resume at. */
  resumeAt: number;
  /** Slots held before (a move prefers other ones). */
  previous: number[];
}

/**
 * Incremental scheduler: call {@link WorkloadScheduler.step} once per scrape, in order; `held(slot)`
 * then says which job holds the slot at that scrape. Used by the generator (which may run forever)
 * and by {@link planWorkloads}.
 */
export class WorkloadScheduler {
  readonly jobs: PlannedJob[] = [];
  private readonly rng: Prng;
  private readonly holders: (Running | undefined)[];
  private readonly pending: Pending[] = [];
  private readonly runScrapes: number;
  private readonly pArrive: number;
  private scrape = -1;
  private counter = 0;

  constructor(private readonly o: WorkloadPlanOptions) {
    this.rng = mulberry32((o.seed ^ 0x5eed_1ab5) >>> 0);
    this.holders = new Array<Running | undefined>(o.hosts * o.gpusPerHost).fill(undefined);
    this.runScrapes = Math.max(4, Math.round(MEAN_RUN_MS / o.intervalMs));
    this.pArrive = 1 - Math.exp(-o.intervalMs / MEAN_FREE_MS);
  }

  /** Advance to the next scrape: end placements, resume moved jobs, start new ones. */
  step(): void {
    const s = ++this.scrape;
    for (let slot = 0; slot < this.holders.length; slot++) {
      const h = this.holders[slot];
      if (h !== undefined && h.endScrape <= s) this.holders[slot] = undefined;
    }
    // Resume moved jobs first (oldest first), on free slots other than the ones they left.
    for (let i = 0; i < this.pending.length;) {
      const p = this.pending[i]!;
      const slots = p.resumeAt <= s ? this.freeSlots(p.width, p.previous) : undefined;
      if (slots === undefined) {
        i++;
        continue;
      }
      this.pending.splice(i, 1);
      this.place(p.job, slots, s, p.runOffset);
    }
    if (s === 0) {
      // The data starts on a busy fleet: jobs already part way through their run.
      for (let slot = 0; slot < this.holders.length; slot++) {
        if (!this.rng.chance(INITIAL_OCCUPANCY)) continue;
        const job = this.newJob();
        this.place(job, [slot], s, this.rng.int(0, job.phases[job.phases.length - 1]!.to - 2));
      }
      return;
    }
    for (let slot = 0; slot < this.holders.length; slot++) {
      if (this.holders[slot] !== undefined || !this.rng.chance(this.pArrive)) continue;
      const width = this.rng.chance(0.25) ? 2 : 1;
      const slots = width === 1 ? [slot] : this.freeSlots(2, [], slot);
      if (slots === undefined) continue;
      this.place(this.newJob(), slots, s, 0);
    }
  }

  /** Which job holds `slot` at the current scrape, and in which phase; undefined when free. */
  held(slot: number): HeldState | undefined {
    const h = this.holders[slot];
    if (h === undefined) return undefined;
    const t = h.placement.runOffset + (this.scrape - h.placement.fromScrape);
    return { job: h.job, phase: phaseAt(h.job, t) };
  }

  /** `width` free slots on one host, avoiding `avoid`; starting with `first` when given. */
  private freeSlots(width: number, avoid: number[], first?: number): number[] | undefined {
    const g = this.o.gpusPerHost;
    const hosts = this.o.hosts;
    const startHost = first === undefined ? this.rng.int(0, hosts - 1) : Math.floor(first / g);
    for (let k = 0; k < hosts; k++) {
      const host = (startHost + k) % hosts;
      const out = first !== undefined && k === 0 ? [first] : [];
      for (let i = 0; i < g && out.length < width; i++) {
        const slot = host * g + i;
        if (slot === first || this.holders[slot] !== undefined || avoid.includes(slot)) continue;
        out.push(slot);
      }
      if (out.length === width) return out;
      if (first !== undefined) return undefined;
    }
    return undefined;
  }

  private newJob(): PlannedJob {
    const r = this.rng;
    const p = this.o.profile;
    const id = ++this.counter;
    const name = `train-${this.o.seed.toString(36)}-${id.toString(36)}`;
    const total = Math.max(4, Math.round(this.runScrapes * r.range(0.3, 1.7)));
    const powerScale = r.range(0.6, 0.95);
    const busy = (util: number): number =>
      Math.round((p.idlePowerW * 1.5 + (p.maxPowerW - p.idlePowerW * 1.5) * (util / 100) * powerScale) * 10) /
      10;
    const idlePower = Math.round(p.idlePowerW * 1.3 * 10) / 10;
    const phases: PlannedPhase[] = [];
    // A short start-up (allocated, idle), then busy stretches; one job in three sits idle for a
    // long stretch (a stuck or forgotten job), the kind the idle report finds.
    const startup = Math.min(total - 1, r.int(1, 3));
    phases.push({ from: 0, to: startup, util: 0, powerW: idlePower });
    let t = startup;
    const stall = r.chance(1 / 3) ? Math.round(r.range(0.3, 0.6) * (total - t)) : 0;
    const stallAt = stall > 0 ? t + Math.floor((total - t - stall) * r.next()) : -1;
    while (t < total) {
      if (t === stallAt) {
        phases.push({ from: t, to: t + stall, util: 0, powerW: idlePower });
        t += stall;
        continue;
      }
      const end = Math.min(
        total,
        stallAt > t ? stallAt : total,
        t + Math.max(1, Math.round(r.range(0.2, 0.6) * total)),
      );
      const util = r.int(35, 100);
      phases.push({ from: t, to: end, util, powerW: busy(util) });
      t = end;
    }
    const job: PlannedJob = {
      name,
      attributed: r.chance(this.o.workloadFraction),
      namespace: NAMESPACES[r.int(0, NAMESPACES.length - 1)]!,
      pod: `${name}-0`,
      container: CONTAINERS[r.int(0, CONTAINERS.length - 1)]!,
      labels: { team: TEAMS[r.int(0, TEAMS.length - 1)]! },
      fbUsedMiB: r.int(2_000, p.fbTotalMiB - 4_000),
      phases,
      placements: [],
    };
    this.jobs.push(job);
    return job;
  }

  /** Put `job` on `slots` from scrape `s`; it runs to its end or is evicted part way (a move). */
  private place(job: PlannedJob, slots: number[], s: number, runOffset: number): void {
    const total = job.phases[job.phases.length - 1]!.to;
    const left = total - runOffset;
    const moves = left >= 8 && this.rng.chance(0.3);
    const run = moves ? this.rng.int(Math.floor(left / 4), Math.floor((3 * left) / 4)) : left;
    const placement: PlannedPlacement = { slots, fromScrape: s, toScrape: s + run, runOffset };
    job.placements.push(placement);
    for (const slot of slots) this.holders[slot] = { job, placement, endScrape: s + run };
    if (moves)
      this.pending.push({
        job,
        width: slots.length,
        runOffset: runOffset + run,
        resumeAt: s + run + this.rng.int(1, 3),
        previous: slots,
      });
  }
}

/**
 * The plan of `scrapes` scrapes: every job with its phases and placements. Placements that run past
 * the last scrape are cut there (`toScrape` <= `scrapes`).
 */
export function planWorkloads(o: WorkloadPlanOptions & { startMs: number; scrapes: number }): WorkloadPlan {
  const scheduler = new WorkloadScheduler(o);
  for (let s = 0; s < o.scrapes; s++) scheduler.step();
  const jobs = scheduler.jobs.map((job) => ({
    ...job,
    placements: job.placements
      .filter((p) => p.fromScrape < o.scrapes)
      .map((p) => ({ ...p, toScrape: Math.min(p.toScrape, o.scrapes) })),
  }));
  return {
    hosts: o.hosts,
    gpusPerHost: o.gpusPerHost,
    startMs: o.startMs,
    intervalMs: o.intervalMs,
    scrapes: o.scrapes,
    jobs,
  };
}

/** Phase of `job` at job-relative scrape `t`. */
export function phaseAt(job: PlannedJob, t: number): PlannedPhase {
  return job.phases.find((p) => t >= p.from && t < p.to) ?? job.phases[job.phases.length - 1]!;
}
