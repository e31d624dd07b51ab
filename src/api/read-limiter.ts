/**
 * Limits on sample-store reads made for API requests (REST and GraphQL), so one heavy client cannot
 * hold the store, or the main thread the embedded store (SQLite, PGlite) runs on, for everyone:
 *
 * - {@link ReadLimiter}, one per app: at most `concurrency` store reads run at once; up to
 *   `maxQueued` more wait in a FIFO queue; a read arriving while the queue is full is refused with
 *   OVERLOADED (503, `Retry-After`). A slot is freed when the store call really ends, even when the
 *   request that made it gave up, so the bound holds for the work the store is doing.
 * - {@link ReadBudget}, one per request (a GraphQL array batch shares one): a deadline and a row
 *   allowance. Each read reserves the rows it may return before it starts (its `limit`, plus the one
 *   extra row the API asks for to learn `hasMore`), so a request over its allowance is refused
 *   before it reads (READ_BUDGET_EXCEEDED, 422); a read still waiting or running when the deadline
 *   passes, and every later read of the request, fails with READ_TIMEOUT (503, `Retry-After`).
 *
 * {@link budgetedStore} applies both to a SampleStore's read methods; writes, `ping` and the rest
 * pass through untouched (/ready's store check never waits behind reads).
 */
import { NexusError } from '../errors.js';
import {
  countSelectedSamples,
  type SampleQuery,
  type SampleStore,
  type SelectedSeries,
  type SeriesSelect,
  type StoredDeadLetter,
  type StoredGpu,
  type StoredSample,
} from '../ports/sample-store.js';

/** Settings of the read limits (READ_CONCURRENCY, READ_QUEUE, READ_TIMEOUT, READ_MAX_ROWS). */
export interface ReadLimits {
  /** Store reads running at once, per app. */
  concurrency: number;
  /** Reads waiting for a slot before more are refused with OVERLOADED. */
  maxQueued: number;
  /** Time budget of one request's store reads, waiting included, in ms; 0: none. */
  timeoutMs: number;
  /** Rows one request may read from the store; 0: no limit. */
  maxRows: number;
}

/** Defaults, also the defaults of the READ_* settings. */
export const DEFAULT_READ_LIMITS: ReadLimits = {
  concurrency: 4,
  maxQueued: 64,
  timeoutMs: 10_000,
  maxRows: 50_000,
};

/** Rows the store returns for a query without `limit` (SampleQuery's documented default). */
const STORE_DEFAULT_LIMIT = 1000;
/** Rows `listDeadLetters` returns without `limit` (the adapters' default). */
const DEAD_LETTER_DEFAULT_LIMIT = 100;

function timeoutError(timeoutMs: number): NexusError {
  return new NexusError(
    'READ_TIMEOUT',
    `the request's sample-store reads took longer than ${timeoutMs} ms (READ_TIMEOUT); try again, or ask for less`,
  );
}

/** The time and row allowance of one request. */
export class ReadBudget {
  private readonly deadline: number;
  private rowsUsed = 0;

  constructor(
    readonly limits: Pick<ReadLimits, 'timeoutMs' | 'maxRows'>,
    private readonly now: () => number = Date.now,
  ) {
    this.deadline = limits.timeoutMs > 0 ? now() + limits.timeoutMs : Infinity;
  }

  /** Rows read (or reserved by reads in flight) so far. */
  get rows(): number {
    return this.rowsUsed;
  }

  /** Milliseconds left before the deadline (Infinity without one). */
  remainingMs(): number {
    return this.deadline - this.now();
  }

  /** @throws READ_TIMEOUT once the deadline has passed */
  checkTime(): void {
    if (this.remainingMs() <= 0) throw timeoutError(this.limits.timeoutMs);
  }

  /** Reserve `rows` before a read. @throws READ_BUDGET_EXCEEDED when they do not fit */
  reserve(rows: number): void {
    const { maxRows } = this.limits;
    if (maxRows > 0 && this.rowsUsed + rows > maxRows) {
      throw new NexusError(
        'READ_BUDGET_EXCEEDED',
        `the request would read more than ${maxRows} rows from the sample store (READ_MAX_ROWS): ` +
          `${this.rowsUsed} read or reserved, ${rows} more asked for; ask for fewer samples (limit, time range) or fewer GPUs`,
      );
    }
    this.rowsUsed += rows;
  }

  /**
   * Replace a reservation by the rows actually returned (reads without one pass 0).
   * @throws READ_BUDGET_EXCEEDED when rows beyond the reservation take the request over its allowance
   */
  settle(reserved: number, actual: number): void {
    this.rowsUsed += actual - reserved;
    const { maxRows } = this.limits;
    if (actual > reserved && maxRows > 0 && this.rowsUsed > maxRows) {
      throw new NexusError(
        'READ_BUDGET_EXCEEDED',
        `the request read more than ${maxRows} rows from the sample store (READ_MAX_ROWS); ask for less`,
      );
    }
  }
}

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (error: unknown) => void;
  timer?: NodeJS.Timeout;
}

/** Counters of a {@link ReadLimiter}, for metrics and tests. */
export interface ReadLimiterStats {
  /** Reads running now. */
  active: number;
  /** Reads waiting for a slot. */
  queued: number;
  /** Reads refused because the queue was full (since start). */
  refused: number;
}

/** Bounded concurrency with a bounded FIFO queue for one app's store reads. */
export class ReadLimiter {
  private active = 0;
  private refused = 0;
  private readonly waiting: Waiter[] = [];

  constructor(readonly limits: ReadLimits = DEFAULT_READ_LIMITS) {}

  /** A fresh budget for one request. */
  budget(): ReadBudget {
    return new ReadBudget(this.limits);
  }

  stats(): ReadLimiterStats {
    return { active: this.active, queued: this.waiting.length, refused: this.refused };
  }

  /**
   * Run `read` in a slot, within `budget`'s deadline. The slot is held until `read` settles, even if
   * the deadline passes first (then this rejects with READ_TIMEOUT at once).
   * @throws OVERLOADED when every slot is busy and the queue is full
   * @throws READ_TIMEOUT when the deadline passes while waiting or reading
   */
  async run<T>(budget: ReadBudget, read: () => Promise<T>): Promise<T> {
    budget.checkTime();
    const release = await this.acquire(budget);
    const work = Promise.resolve().then(read);
    void work.then(release, release);
    const remaining = budget.remainingMs();
    if (!Number.isFinite(remaining)) return work;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timeoutError(budget.limits.timeoutMs)), Math.max(0, remaining));
    });
    try {
      return await Promise.race([work, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  private acquire(budget: ReadBudget): Promise<() => void> {
    if (this.active < this.limits.concurrency) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.limits.maxQueued) {
      this.refused++;
      return Promise.reject(
        new NexusError(
          'OVERLOADED',
          `too many sample-store reads waiting (${this.waiting.length} queued behind ${this.active} running); retry shortly`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      const remaining = budget.remainingMs();
      if (Number.isFinite(remaining)) {
        waiter.timer = setTimeout(
          () => {
            const i = this.waiting.indexOf(waiter);
            if (i >= 0) this.waiting.splice(i, 1);
            reject(timeoutError(budget.limits.timeoutMs));
          },
          Math.max(0, remaining),
        );
      }
      this.waiting.push(waiter);
    });
  }

  /** A release function that frees the slot once, handing it to the next waiter. */
  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) {
        clearTimeout(next.timer);
        next.resolve(this.releaser()); // the slot passes on: `active` stays the same
      } else {
        this.active--;
      }
    };
  }
}

/** The read methods {@link budgetedStore} limits. */
export type LimitedReads = 'querySamples' | 'listGpus' | 'latestSamples' | 'listDeadLetters' | 'selectSeries';

/**
 * `store` with its read methods run through `limiter` within `budget`; every other method is the
 * store's own. `selectSeries` is limited when it has a `maxSamples` bound (the compact telemetry
 * page, which reserves its `limit` like `querySamples`); without one (analytics) it is the store's
 * own, as before.
 */
export function budgetedStore(store: SampleStore, limiter: ReadLimiter, budget: ReadBudget): SampleStore {
  const reserveAndRun = async <T extends unknown[]>(
    reserve: number,
    read: () => Promise<T>,
    count: (rows: T) => number = (rows) => rows.length,
  ): Promise<T> => {
    budget.checkTime();
    budget.reserve(reserve);
    let rows: T;
    try {
      rows = await limiter.run(budget, read);
    } catch (error) {
      budget.settle(reserve, 0);
      throw error;
    }
    budget.settle(reserve, count(rows));
    return rows;
  };
  const reads: Pick<SampleStore, LimitedReads> = {
    querySamples: (query: SampleQuery): Promise<StoredSample[]> =>
      reserveAndRun(query.limit ?? STORE_DEFAULT_LIMIT, () => store.querySamples(query)),
    listGpus: (clusterId?: string): Promise<StoredGpu[]> => reserveAndRun(0, () => store.listGpus(clusterId)),
    latestSamples: (clusterId?: string): Promise<StoredSample[]> =>
      reserveAndRun(0, () => store.latestSamples(clusterId)),
    listDeadLetters: (options?: { limit?: number; source?: string }): Promise<StoredDeadLetter[]> =>
      reserveAndRun(options?.limit ?? DEAD_LETTER_DEFAULT_LIMIT, () => store.listDeadLetters(options)),
    selectSeries: (select: SeriesSelect, signal?: AbortSignal): Promise<SelectedSeries[]> =>
      select.maxSamples === undefined
        ? store.selectSeries(select, signal)
        : reserveAndRun(
            select.maxSamples + 1,
            () => store.selectSeries(select, signal),
            countSelectedSamples,
          ),
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && Object.hasOwn(reads, prop)) return reads[prop as LimitedReads];
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
