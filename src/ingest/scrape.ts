/**
 * Scrape source: pulls Prometheus exposition text (dcgm-exporter's `/metrics`) from HTTP targets on an
 * interval, the way Prometheus does, and yields each scrape's rows named by its target URL so the
 * streamer batches them exactly like CSV rows.
 *
 * Every target runs its own loop (a slow target never delays the others). One scrape is one GET with
 * Prometheus' Accept header and `Accept-Encoding: gzip`, bounded by a timeout and a body size limit
 * (decoded bytes). A scrape that fails (connection refused, HTTP error status, timeout, body too
 * large, body cut) yields nothing and marks the target down with the reason; a body that parses to
 * no sample at all (garbage) yields its dead letters and marks the target down too. Samples without
 * a timestamp take the scrape's start time. The health of every target is kept in a
 * {@link ScrapeTargetBoard} (served at GET /api/v1/targets and as `up` / `scrape_*` gauges).
 *
 * The target set can change while scraping: {@link ScrapeTargetBoard.setTargets} (a reloaded targets
 * file, src/ingest/targets-file.ts) starts loops for new targets and stops those of removed ones;
 * unchanged targets keep their loop, phase and state.
 *
 * Targets are spread over the interval as Prometheus spreads them: a target's first scrape is at
 * once, and from the next one on (0.5 to 1.5 intervals later) it is scraped at a fixed phase of the
 * wall clock derived from its URL ({@link scrapePhaseMs}). So many targets are not scraped in the
 * same instant (a burst through queue, store, hierarchy and subscribers once per interval), and
 * every streamer that takes the target over scrapes it at the same phase.
 *
 * Memory is bounded: each target holds at most one scrape's rows until the consumer has taken them,
 * so a slow consumer (queue backpressure) delays the next scrape instead of piling scrapes up.
 */
import { createHash } from 'node:crypto';
import type { PresentGpu, ScrapePresence } from '../domain/types.js';
import { readExposition } from './exposition.js';
import type { RowResult } from './validate.js';

/** The Accept header Prometheus sends: classic text first, then OpenMetrics, then anything. */
export const SCRAPE_ACCEPT =
  'text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,*/*;q=0.1';

/** Default scrape interval (ms). */
export const DEFAULT_SCRAPE_INTERVAL_MS = 10_000;
/** Default scrape timeout (ms). */
export const DEFAULT_SCRAPE_TIMEOUT_MS = 5_000;
/** Default largest decoded body of one scrape (bytes). */
export const DEFAULT_SCRAPE_BODY_LIMIT = 32 * 1024 * 1024;

/** Health of a target as Prometheus reports it. */
export type TargetHealth = 'up' | 'down' | 'unknown';

/** What is known about one target after its last scrape. */
export interface TargetState {
  /** The URL scraped. */
  url: string;
  health: TargetHealth;
  /** Why the last scrape failed (or which lines it refused); empty when it was clean. */
  lastError: string;
  /** Start of the last scrape, ISO 8601; null before the first one. */
  lastScrape: string | null;
  /** How long the last scrape took, seconds (0 before the first one). */
  lastScrapeDurationSeconds: number;
  /** Samples the last scrape yielded. */
  samples: number;
  /** Lines the last scrape refused (dead letters). */
  deadLetters: number;
  /** Scrapes done so far. */
  scrapes: number;
}

/** The outcome of one scrape of one target. */
export interface ScrapeOutcome {
  url: string;
  /** Scrape start, ms since the epoch (the time of samples that carry none). */
  startedMs: number;
  durationSeconds: number;
  /** Rows to publish: empty when the scrape failed. */
  rows: RowResult[];
  samples: number;
  deadLetters: number;
  health: 'up' | 'down';
  /** Empty when the scrape was clean. */
  error: string;
  /** True when the scrape was cut by the run's stop signal: nothing is recorded for it. */
  stopped: boolean;
}

/**
 * Per-target health, as of the last scrape of each target. Targets are listed in the order they
 * were configured; a target not scraped yet is `unknown`.
 */
export class ScrapeTargetBoard {
  private readonly states = new Map<string, TargetState>();
  /** The target set given by {@link setTargets} (undefined: the scrape's own `targets`). */
  private desired: string[] | undefined;
  private readonly targetListeners = new Set<(urls: readonly string[]) => void>();
  /** Called when a target's health changes (unknown -> up, up -> down, ...). */
  onHealthChange: ((state: TargetState, previous: TargetHealth) => void) | undefined;

  constructor(
    urls: readonly string[],
    /** Scrape interval and timeout (ms), reported with each target. */
    readonly intervalMs: number = DEFAULT_SCRAPE_INTERVAL_MS,
    readonly timeoutMs: number = DEFAULT_SCRAPE_TIMEOUT_MS,
  ) {
    for (const url of urls) this.add(url);
  }

  /** Start tracking `url` (no-op when it is tracked already). */
  add(url: string): void {
    if (this.states.has(url)) return;
    this.states.set(url, {
      url,
      health: 'unknown',
      lastError: '',
      lastScrape: null,
      lastScrapeDurationSeconds: 0,
      samples: 0,
      deadLetters: 0,
      scrapes: 0,
    });
  }

  /**
   * Replace the target set (a reloaded targets file): targets not in `urls` are forgotten, new ones
   * start `unknown`, kept ones keep their state. A running {@link scrapeTargets} given this board
   * starts and stops its loops to match; one started later scrapes this set instead of its `targets`.
   */
  setTargets(urls: readonly string[]): void {
    const next = [...new Set(urls)];
    for (const url of [...this.states.keys()]) if (!next.includes(url)) this.states.delete(url);
    for (const url of next) this.add(url);
    this.desired = next;
    for (const listener of this.targetListeners) listener(next);
  }

  /** The set given by {@link setTargets}, or undefined when it was never called. */
  get targets(): readonly string[] | undefined {
    return this.desired;
  }

  /** Follow {@link setTargets} calls; returns the function that stops following. */
  onTargets(listener: (urls: readonly string[]) => void): () => void {
    this.targetListeners.add(listener);
    return () => this.targetListeners.delete(listener);
  }

  /** Record the outcome of one scrape. */
  record(outcome: ScrapeOutcome): void {
    this.add(outcome.url);
    const state = this.states.get(outcome.url)!;
    const previous = state.health;
    state.health = outcome.health;
    state.lastError = outcome.error;
    state.lastScrape = new Date(outcome.startedMs).toISOString();
    state.lastScrapeDurationSeconds = outcome.durationSeconds;
    state.samples = outcome.samples;
    state.deadLetters = outcome.deadLetters;
    state.scrapes += 1;
    if (state.health !== previous) this.onHealthChange?.({ ...state }, previous);
  }

  /** A snapshot of every target's state. */
  list(): TargetState[] {
    return [...this.states.values()].map((s) => ({ ...s }));
  }

  get(url: string): TargetState | undefined {
    const state = this.states.get(url);
    return state === undefined ? undefined : { ...state };
  }
}

/** Options of {@link scrapeOnce}. */
export interface ScrapeOnceOptions {
  clusterId: string;
  /** Time budget of the whole scrape (request, body, parse), ms. */
  timeoutMs: number;
  /** Largest decoded body, bytes; more fails the scrape. */
  bodyLimitBytes: number;
  /** Stops the scrape (the run is shutting down). */
  signal?: AbortSignal;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/** Options of {@link scrapeTargets}. */
export interface ScrapeOptions extends ScrapeOnceOptions {
  /** Target URLs (http or https). */
  targets: readonly string[];
  intervalMs: number;
  /** Where each scrape's outcome is recorded. Default: a private board. */
  board?: ScrapeTargetBoard;
  /** Scrape each target this many times, then end (default: until `signal` aborts). */
  rounds?: number;
  /** Called after each scrape is recorded (logging). */
  onScrape?: (outcome: ScrapeOutcome) => void;
}

/** One scrape's rows, named by the target. */
export interface ScrapeResult {
  /** The target URL: the batch source and the dead letters' `source`. */
  source: string;
  rows: RowResult[];
  /**
   * Which GPUs the scrape exposed (none when it failed), to publish with its last batch: the
   * hierarchy marks the target's other GPUs inactive at once, as Prometheus marks their series stale.
   */
  presence: ScrapePresence;
}

/**
 * The GPUs (and MIG instances, by dcgm-exporter's `GPU_I_ID`) that a scrape's samples belong to, in
 * first-seen order; no GPU at all for a scrape that failed.
 */
export function presenceOf(outcome: ScrapeOutcome, clusterId: string): ScrapePresence {
  const gpus: PresentGpu[] = [];
  if (outcome.health === 'up') {
    const seen = new Set<string>();
    for (const row of outcome.rows) {
      if (!row.ok) continue;
      const { hostname, gpuId, uuid, labels } = row.sample;
      const migInstance =
        labels.GPU_I_ID !== undefined && labels.GPU_I_ID !== '' ? labels.GPU_I_ID : undefined;
      const key = `${hostname}\u0000${gpuId}\u0000${uuid}\u0000${migInstance ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      gpus.push(
        migInstance === undefined ? { hostname, gpuId, uuid } : { hostname, gpuId, uuid, migInstance },
      );
    }
  }
  return { target: outcome.url, clusterId, scrapeMs: outcome.startedMs, gpus };
}

/** A scrape failure with the reason reported as the target's lastError. */
class ScrapeFailure extends Error {}

/** Parser format from a Content-Type header (Prometheus falls back to the classic text format). */
export function formatOf(contentType: string | null): 'text' | 'openmetrics' {
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return mediaType === 'application/openmetrics-text' ? 'openmetrics' : 'text';
}

/** The host to file samples under when the exposition names none: the target URL's host name. */
export function defaultHostnameOf(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '');
}

/**
 * The body as Buffers, failing once more than `limit` decoded bytes arrived. Each read races the
 * signal: Node 20's fetch never settles a pending read of a gzip-decoded body that is aborted, so
 * the abort is not left to the stream (its cancel is not awaited either).
 */
async function* limitedBody(
  body: ReadableStream<Uint8Array>,
  limit: number,
  signal: AbortSignal,
): AsyncGenerator<Buffer> {
  const reader = body.getReader();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted');
    if (signal.aborted) resolve('aborted');
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  let finished = false;
  try {
    let total = 0;
    for (;;) {
      const next = await Promise.race([reader.read(), aborted]);
      if (next === 'aborted') throw signal.reason ?? new Error('aborted');
      if (next.done) {
        finished = true;
        return;
      }
      const chunk = next.value;
      total += chunk.byteLength;
      if (total > limit) throw new ScrapeFailure(`body size limit exceeded: more than ${limit} bytes`);
      yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
  } finally {
    signal.removeEventListener('abort', onAbort!);
    if (!finished) reader.cancel().catch(() => undefined);
  }
}

/** A readable reason for a fetch or body failure. */
function reasonOf(error: unknown, url: string, timeoutMs: number, timedOut: boolean): string {
  if (timedOut) return `scrape timed out after ${timeoutMs / 1000}s`;
  if (error instanceof ScrapeFailure) return error.message;
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    if (e instanceof ScrapeFailure) return e.message;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED') return `connection refused (${new URL(url).host})`;
    if (code === 'ENOTFOUND') return `host not found (${new URL(url).hostname})`;
    if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return `connection reset: ${e.message}`;
    if (typeof code === 'string' && e.cause === undefined) return `${e.message} (${code})`;
    if (e.cause === undefined) return e.message;
    e = e.cause;
  }
  return String(error);
}

/**
 * Scrape `url` once. Never throws: a failure is a `down` outcome with its reason. A scrape cut by
 * `options.signal` is marked `stopped` (its rows are dropped).
 */
export async function scrapeOnce(url: string, options: ScrapeOnceOptions): Promise<ScrapeOutcome> {
  const now = options.now ?? Date.now;
  const startedMs = now();
  const t0 = performance.now();
  // One controller per scrape (not AbortSignal.any on the run's long-lived signal): stopped by the
  // timeout or by the run's signal; its listener is removed when the scrape ends.
  const controller = new AbortController();
  const signal = controller.signal;
  const timeout = { aborted: false };
  const timer = setTimeout(() => {
    timeout.aborted = true;
    controller.abort(new DOMException('scrape timed out', 'TimeoutError'));
  }, options.timeoutMs);
  const onStop = (): void => controller.abort(options.signal?.reason);
  if (options.signal?.aborted === true) controller.abort(options.signal.reason);
  else options.signal?.addEventListener('abort', onStop, { once: true });
  const outcome = (
    rest: Pick<ScrapeOutcome, 'rows' | 'samples' | 'deadLetters' | 'health' | 'error'>,
  ): ScrapeOutcome => ({
    url,
    startedMs,
    durationSeconds: (performance.now() - t0) / 1000,
    stopped: options.signal?.aborted === true,
    ...rest,
  });
  const failed = (error: string): ScrapeOutcome =>
    outcome({ rows: [], samples: 0, deadLetters: 0, health: 'down', error });
  try {
    const response = await fetch(url, {
      headers: {
        Accept: SCRAPE_ACCEPT,
        'Accept-Encoding': 'gzip',
        'User-Agent': 'nexus-telemetry',
        'X-Prometheus-Scrape-Timeout-Seconds': String(options.timeoutMs / 1000),
      },
      signal,
      redirect: 'follow',
    });
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      return failed(`server returned HTTP status ${response.status} ${response.statusText}`.trimEnd());
    }
    if (response.body === null)
      return outcome({ rows: [], samples: 0, deadLetters: 0, health: 'up', error: '' });
    const rows: RowResult[] = [];
    let samples = 0;
    let deadLetters = 0;
    let firstRefusal = '';
    const body = limitedBody(response.body, options.bodyLimitBytes, signal);
    for await (const batch of readExposition(body, {
      source: url,
      clusterId: options.clusterId,
      scrapeStartMs: startedMs,
      defaultHostname: defaultHostnameOf(url),
      signal,
      format: formatOf(response.headers.get('content-type')),
    })) {
      for (const row of batch) {
        rows.push(row);
        if (row.ok) samples += 1;
        else {
          deadLetters += 1;
          if (firstRefusal === '')
            firstRefusal = `line ${row.deadLetter.line}: ${row.deadLetter.reason}: ${row.deadLetter.detail}`;
        }
      }
    }
    // The parser ends quietly when the signal aborted mid-body: that scrape is incomplete.
    if (timeout.aborted) return failed(reasonOf(undefined, url, options.timeoutMs, true));
    if (options.signal?.aborted === true) return failed('stopped');
    if (samples === 0 && deadLetters > 0) {
      return outcome({
        rows,
        samples,
        deadLetters,
        health: 'down',
        error: `no valid sample: ${deadLetters} line(s) refused (first: ${firstRefusal})`,
      });
    }
    return outcome({
      rows,
      samples,
      deadLetters,
      health: 'up',
      error: deadLetters === 0 ? '' : `${deadLetters} line(s) refused (first: ${firstRefusal})`,
    });
  } catch (error) {
    return failed(reasonOf(error, url, options.timeoutMs, timeout.aborted));
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onStop);
  }
}

/** Wait `ms` or until the signal aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (signal.aborted || ms <= 0) return done();
    const finish = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', finish);
      done();
    };
    const timer = setTimeout(finish, ms);
    signal.addEventListener('abort', finish, { once: true });
  });
}

/**
 * A target's phase within the interval (ms, 0 <= phase < intervalMs): scrapes after its first are at
 * wall-clock times `t` with `t % intervalMs === phase`. Derived from the URL, so it is the same in
 * every process and across restarts.
 */
export function scrapePhaseMs(url: string, intervalMs: number): number {
  return createHash('sha1').update(url).digest().readUInt32BE(0) % intervalMs;
}

/** The first time at or after `fromMs` on `url`'s phase of the interval. */
function nextPhaseTick(fromMs: number, url: string, intervalMs: number): number {
  const wait = (scrapePhaseMs(url, intervalMs) - (fromMs % intervalMs) + intervalMs) % intervalMs;
  return fromMs + wait;
}

/**
 * Scrape every target on the interval until `options.signal` aborts (or `rounds` scrapes each), and
 * yield each scrape's rows and presence (a failed scrape yields no row and an empty presence); every
 * outcome is also recorded on the board. Ends once every target loop has stopped; results already scraped when the
 * stop came are still yielded.
 */
export async function* scrapeTargets(options: ScrapeOptions): AsyncGenerator<ScrapeResult> {
  const board =
    options.board ?? new ScrapeTargetBoard(options.targets, options.intervalMs, options.timeoutMs);
  // Not AbortSignal.any: on Node 20 a derived signal can be garbage-collected with its listeners
  // during a long run, and the stop would never arrive. One controller, fed by the run's signal.
  const stop = new AbortController();
  const signal = stop.signal;
  const onStop = (): void => {
    stop.abort(options.signal?.reason);
    wake?.();
  };
  let consumerGone = false;
  const pending: { result: ScrapeResult; taken: () => void }[] = [];
  let wake: (() => void) | null = null;
  let running = 0;
  const rounds = options.rounds ?? Number.POSITIVE_INFINITY;
  // A board whose target set is managed (setTargets: a targets file) keeps the run going with no
  // target at all: targets may come back.
  const dynamic = (): boolean => board.targets !== undefined;

  const hand = (result: ScrapeResult): Promise<void> =>
    new Promise<void>((taken) => {
      // The consumer has gone: nobody will take it.
      if (consumerGone) return taken();
      pending.push({ result, taken });
      wake?.();
    });

  const loop = async (url: string, own: AbortSignal): Promise<void> => {
    board.add(url);
    const started = Date.now();
    let next = started;
    for (let round = 0; round < rounds && !own.aborted; round++) {
      const outcome = await scrapeOnce(url, { ...options, signal: own });
      // Stopped by the run, or the target was removed while it was scraped: nothing is recorded.
      if (outcome.stopped || own.aborted) break;
      board.record(outcome);
      options.onScrape?.(outcome);
      await hand({ source: url, rows: outcome.rows, presence: presenceOf(outcome, options.clusterId) });
      if (round + 1 >= rounds) break;
      // Keep the phase: the next scrape starts one interval after this one did (missed ticks skipped);
      // the first one is followed by the target's own phase, half an interval to one and a half later
      // (never so late that a long interval leaves the target's GPUs stale after a start).
      next =
        round === 0
          ? nextPhaseTick(started + options.intervalMs / 2, url, options.intervalMs)
          : next + options.intervalMs;
      const nowMs = Date.now();
      if (next < nowMs) next += Math.ceil((nowMs - next) / options.intervalMs) * options.intervalMs;
      await pause(next - nowMs, own);
    }
  };

  // One controller per target loop, fed by the run's stop: removing a target stops its loop only.
  const active = new Map<string, AbortController>();
  const loops = new Set<Promise<void>>();
  const startLoop = (url: string): void => {
    if (active.has(url) || signal.aborted) return;
    const own = new AbortController();
    active.set(url, own);
    running += 1;
    const done = loop(url, own.signal).finally(() => {
      running -= 1;
      if (active.get(url) === own) active.delete(url);
      loops.delete(done);
      wake?.();
    });
    loops.add(done);
  };
  const follow = (urls: readonly string[]): void => {
    for (const [url, own] of active) {
      if (!urls.includes(url)) {
        active.delete(url);
        own.abort();
      }
    }
    for (const url of urls) startLoop(url);
    wake?.();
  };
  signal.addEventListener('abort', () => {
    for (const own of active.values()) own.abort();
  });
  if (options.signal?.aborted === true) stop.abort(options.signal.reason);
  else options.signal?.addEventListener('abort', onStop, { once: true });
  const unfollow = board.onTargets(follow);
  for (const url of board.targets ?? options.targets) startLoop(url);

  try {
    for (;;) {
      const item = pending.shift();
      if (item !== undefined) {
        yield item.result;
        item.taken();
        continue;
      }
      if (running === 0 && (signal.aborted || !dynamic() || rounds !== Number.POSITIVE_INFINITY)) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = null;
    }
  } finally {
    // Done, or the consumer stopped early: stop the loops and release any waiting hand-off.
    options.signal?.removeEventListener('abort', onStop);
    unfollow();
    consumerGone = true;
    stop.abort();
    for (const item of pending.splice(0)) item.taken();
    await Promise.allSettled([...loops]);
  }
}
