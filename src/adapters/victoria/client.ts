/**
 * HTTP client of a Prometheus-compatible TSDB as the remote-write sample store uses it
 * (VictoriaMetrics is the reference): remote write 1.0 (snappy-compressed protobuf WriteRequest),
 * `/internal/force_flush` (VictoriaMetrics buffers about a second of ingested samples before they
 * can be searched), `/snapshot/create` (to persist what it holds in memory), `/api/v1/export` (raw samples as JSON lines), `/api/v1/query`, `/health` and
 * `/flags`. Connection failures and 5xx answers are retryable BACKEND_UNAVAILABLE; 4xx answers
 * are BAD_REQUEST. Reads are POSTed forms, so long selectors fit.
 */
import snappy from 'snappyjs';
import { NexusError } from '../../errors.js';
import { WriteRequestType } from '../../ingest/remote-write.js';
import type { PromLabels } from './labels.js';

/** One series to write: its labels and samples (ms timestamps), any order. */
export interface WriteSeries {
  labels: PromLabels;
  timestamps: number[];
  values: number[];
}

/** One exported series: labels and raw samples, ascending. */
export interface ExportedSeries {
  metric: PromLabels;
  values: number[];
  timestamps: number[];
}

/** Settings of {@link RemoteTsdbClient}. */
export interface RemoteTsdbClientOptions {
  /** The remote write endpoint, e.g. `http://vm:8428/api/v1/write`. */
  writeUrl: string;
  /** Base URL of the Prometheus read API (`${readUrl}/api/v1/export`), e.g. `http://vm:8428`. */
  readUrl: string;
  /** Sent as `Authorization: Bearer ...` on every request. */
  bearerToken?: string;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
}

/** The read base URL a write URL implies: the write URL without its `/api/v1/write` suffix. */
export function readUrlOf(writeUrl: string): string {
  return writeUrl.replace(/\/+$/, '').replace(/\/api\/v1\/write$/, '');
}

/** Where a URL points, without credentials or query, for messages. */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** HTTP client of the TSDB (see the module comment). */
export class RemoteTsdbClient {
  readonly #writeUrl: string;
  readonly #readUrl: string;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  /** False once force_flush answered 404 (not VictoriaMetrics single node): reads then lag ~1 s. */
  #flushable = true;
  /** False once /snapshot/create answered 404: acknowledged writes are then only as durable as the TSDB makes them. */
  #snapshots = true;

  constructor(options: RemoteTsdbClientOptions) {
    this.#writeUrl = options.writeUrl;
    this.#readUrl = options.readUrl.replace(/\/+$/, '');
    this.#headers = options.bearerToken ? { authorization: `Bearer ${options.bearerToken}` } : {};
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Where writes go (no credentials), for messages. */
  get target(): string {
    return where(this.#writeUrl);
  }

  async #fetch(url: string, init: RequestInit, operation: string, signal?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    let response: Response;
    try {
      response = await fetch(url, {
        ...init,
        headers: { ...this.#headers, ...(init.headers as Record<string, string> | undefined) },
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw new NexusError('BACKEND_UNAVAILABLE', `${operation}: ${where(url)} did not answer`, {
        cause: error,
        details: { url: where(url) },
      });
    }
    if (response.ok) return response;
    const body = (await response.text().catch(() => '')).slice(0, 500);
    const code = response.status >= 500 || response.status === 429 ? 'BACKEND_UNAVAILABLE' : 'BAD_REQUEST';
    throw new NexusError(code, `${operation}: ${where(url)} answered ${response.status}: ${body}`, {
      details: { url: where(url), status: response.status },
    });
  }

  /** Remote-write `series` in one request. */
  async write(series: readonly WriteSeries[]): Promise<void> {
    const request = WriteRequestType.encode({
      timeseries: series.map((s) => ({
        labels: Object.entries(s.labels).map(([name, value]) => ({ name, value })),
        samples: s.timestamps.map((timestamp, i) => ({ value: s.values[i], timestamp })),
      })),
    }).finish();
    await this.#fetch(
      this.#writeUrl,
      {
        method: 'POST',
        body: snappy.compress(request),
        headers: {
          'content-encoding': 'snappy',
          'content-type': 'application/x-protobuf',
          'x-prometheus-remote-write-version': '0.1.0',
        },
      },
      'remote write',
    );
  }

  /** Make what was written searchable now (VictoriaMetrics single node); a no-op elsewhere. */
  async flush(): Promise<void> {
    if (!this.#flushable) return;
    try {
      await this.#fetch(`${this.#readUrl}/internal/force_flush`, { method: 'GET' }, 'force flush');
    } catch (error) {
      if (error instanceof NexusError && error.details.status === 404) this.#flushable = false;
      else throw error;
    }
  }

  /**
   * Make everything written so far durable: VictoriaMetrics keeps freshly ingested samples in
   * memory for about 5 s (a SIGKILL loses them, searchable or not); creating a snapshot writes them
   * to disk first. The snapshot (hard links) is deleted at once.
   * @returns false when the server has no snapshot API (then nothing was done)
   */
  async persist(): Promise<boolean> {
    if (!this.#snapshots) return false;
    let name: string | undefined;
    try {
      const response = await this.#fetch(`${this.#readUrl}/snapshot/create`, { method: 'GET' }, 'snapshot');
      name = ((await response.json()) as { snapshot?: string }).snapshot;
    } catch (error) {
      if (error instanceof NexusError && error.details.status === 404) {
        this.#snapshots = false;
        return false;
      }
      throw error;
    }
    if (name !== undefined) {
      const query = new URLSearchParams({ snapshot: name });
      await this.#fetch(`${this.#readUrl}/snapshot/delete?${query}`, { method: 'GET' }, 'snapshot delete');
    }
    return true;
  }

  #form(params: Record<string, string | string[]>): URLSearchParams {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      for (const one of Array.isArray(v) ? v : [v]) form.append(k, one);
    }
    return form;
  }

  /** Raw samples of the series matching `match` in [startMs, endMs] (inclusive). */
  async export(
    match: string,
    startMs: number,
    endMs: number,
    signal?: AbortSignal,
  ): Promise<ExportedSeries[]> {
    const response = await this.#fetch(
      `${this.#readUrl}/api/v1/export`,
      {
        method: 'POST',
        body: this.#form({ 'match[]': match, start: seconds(startMs), end: seconds(endMs) }),
      },
      'export',
      signal,
    );
    const text = await response.text();
    const out: ExportedSeries[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const s = JSON.parse(line) as ExportedSeries;
      // Bounds are exact to the ms; the API takes seconds with a fraction, so filter again.
      const keep = s.timestamps.flatMap((t, i) => (t >= startMs && t <= endMs ? [i] : []));
      if (keep.length === s.timestamps.length) out.push(s);
      else if (keep.length > 0) {
        out.push({
          metric: s.metric,
          timestamps: keep.map((i) => s.timestamps[i]!),
          values: keep.map((i) => s.values[i]!),
        });
      }
    }
    return out;
  }

  /** An instant query at `timeMs`: each result's labels and value. */
  async query(promql: string, timeMs: number): Promise<{ metric: PromLabels; value: number }[]> {
    const response = await this.#fetch(
      `${this.#readUrl}/api/v1/query`,
      { method: 'POST', body: this.#form({ query: promql, time: seconds(timeMs), nocache: '1' }) },
      'query',
    );
    const body = (await response.json()) as {
      data?: { result?: { metric: PromLabels; value: [number, string] }[] };
    };
    return (body.data?.result ?? []).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** Resolves when the TSDB answers its health check. */
  async health(): Promise<void> {
    await this.#fetch(`${this.#readUrl}/health`, { method: 'GET' }, 'health');
  }

  /** The server's command-line flags (VictoriaMetrics `/flags`), or undefined when it has none. */
  async flags(): Promise<Record<string, string> | undefined> {
    try {
      const response = await this.#fetch(`${this.#readUrl}/flags`, { method: 'GET' }, 'flags');
      const out: Record<string, string> = {};
      for (const m of (await response.text()).matchAll(/^-([\w.]+)="(.*)"$/gm)) out[m[1]!] = m[2]!;
      return out;
    } catch (error) {
      if (error instanceof NexusError && error.code === 'BAD_REQUEST') return undefined;
      throw error;
    }
  }
}

/** ms as the seconds-with-fraction text the Prometheus API takes. */
function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}
