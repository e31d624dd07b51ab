// REST client of the dashboard: same-origin fetches with the stored bearer token, typed views.
import { getToken } from './token';

/** A cluster as GET /api/v1/clusters returns it. */
export interface Cluster {
  cluster_id: string;
  cluster_name: string;
  region: string;
  metadata: { total_hosts: number; total_gpus: number; active_hosts: number; active_gpus: number };
}

/** A host as GET /api/v1/clusters/{id}/hosts returns it. */
export interface Host {
  host_id: string;
  hostname: string;
  cluster_id: string;
  gpu_count: number;
  active_gpu_count: number;
  active: boolean;
  last_seen: string;
}

/** Latest value of one DCGM field. */
export interface Latest {
  value: number;
  timestamp: string;
}

/** A MIG instance of a GPU. */
export interface MigInstance {
  instance_id: string;
  profile?: string;
  active: boolean;
  last_sample?: string;
  metrics?: Record<string, Latest>;
}

/** A GPU as GET .../hosts/{hostId}/gpus returns it. */
export interface Gpu {
  gpu_id: string;
  uuid: string;
  device: string;
  model_name: string;
  hostname: string;
  cluster_id: string;
  active: boolean;
  gone_since?: string;
  last_seen?: string;
  last_sample?: string;
  metrics?: Record<string, Latest>;
  mig_instances?: MigInstance[];
  health?: Health;
}

/** One reason of a GPU's health state (docs/alerting.md, "Health model"). */
export interface HealthReason {
  code: string;
  severity: 'warning' | 'critical';
  message: string;
  since: string;
  field?: string;
  value?: number;
}

/** A GPU's health: ok, warning or critical, since when, and why. */
export interface Health {
  state: 'ok' | 'warning' | 'critical';
  since: string;
  reasons: HealthReason[];
}

/** One GPU of `GET /api/v1/health/gpus`. */
export interface GpuHealthEntry {
  cluster_id: string;
  hostname: string;
  gpu_id: string;
  uuid: string;
  model_name: string;
  last_sample?: string;
  health: Health;
}

/** An alert instance as /ws sends it (docs/ws-protocol.md, "Alerts"). */
export interface Alert {
  id: string;
  clusterId: string;
  fingerprint: string;
  name: string;
  state: 'PENDING' | 'FIRING' | 'INACTIVE';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  value: number;
  activeAt: string;
  firedAt: string | null;
  resolvedAt: string | null;
}

/** One series in the compact telemetry shape: labels once, then ascending times (ms) and values. */
export interface CompactSeries {
  metric: string;
  labels: Record<string, string>;
  t: number[];
  v: number[];
}

/** The compact telemetry answer (`format=compact`). */
export interface CompactTelemetry {
  resolution: string;
  series: CompactSeries[];
  /** Whether the server cut the answer at `limit`. */
  hasMore: boolean;
}

/** A refused input row. */
export interface DeadLetter {
  source: string;
  line: number;
  raw: string;
  reason: string;
  detail?: string;
}

/** One scrape target (Prometheus' shape). */
export interface Target {
  scrapeUrl: string;
  health: string;
  lastError: string;
  lastScrape: string;
  lastScrapeDuration: number;
  samples?: number;
  deadLetters?: number;
}

/** An HTTP failure with the API's error code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** GET a same-origin JSON resource; throws {@link ApiError} on a non-2xx answer. */
export async function getJson<T>(path: string, signal?: AbortSignal): Promise<{ body: T; headers: Headers }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, signal });
  if (!response.ok) {
    let code = 'HTTP_' + response.status;
    let message = response.statusText;
    try {
      const error = ((await response.json()) as { error?: { code?: string; message?: string } }).error;
      code = error?.code ?? code;
      message = error?.message ?? message;
    } catch {
      // Not JSON: keep the status text.
    }
    throw new ApiError(response.status, code, message);
  }
  return { body: (await response.json()) as T, headers: response.headers };
}

const enc = encodeURIComponent;

/** Path of a host's resource. */
export function hostPath(clusterId: string, hostId: string): string {
  return `/api/v1/clusters/${enc(clusterId)}/hosts/${enc(hostId)}`;
}

export const listClusters = (signal?: AbortSignal) =>
  getJson<Cluster[]>('/api/v1/clusters', signal).then((r) => r.body);
export const listHosts = (clusterId: string, signal?: AbortSignal) =>
  getJson<Host[]>(`/api/v1/clusters/${enc(clusterId)}/hosts`, signal).then((r) => r.body);
export const listHostGpus = (clusterId: string, hostId: string, signal?: AbortSignal) =>
  getJson<Gpu[]>(`${hostPath(clusterId, hostId)}/gpus`, signal).then((r) => r.body);
export const getGpu = (clusterId: string, hostId: string, gpuId: string, signal?: AbortSignal) =>
  getJson<Gpu>(`${hostPath(clusterId, hostId)}/gpus/${enc(gpuId)}`, signal).then((r) => r.body);
export const listDeadLetters = (limit: number, signal?: AbortSignal) =>
  getJson<DeadLetter[]>(`/api/v1/dead-letters?limit=${limit}`, signal).then((r) => r.body);

/** The fleet's GPUs whose health is one of `states`, most severe first. */
export const listGpuHealth = (states: string[], signal?: AbortSignal) =>
  getJson<GpuHealthEntry[]>(`/api/v1/health/gpus?state=${enc(states.join(','))}`, signal).then((r) => r.body);

/** A row of an analytics answer (docs/analytics.md): field names as the REST API gives them. */
export type AnalyticsRow = Record<string, string | number>;

/** An answer of `GET /api/v1/analytics/{kind}`. */
export interface AnalyticsAnswer {
  start: string;
  end: string;
  resolution: string;
  rows: AnalyticsRow[];
}

/** The analytics kinds the API answers. */
export type AnalyticsKind = 'attribution' | 'idle' | 'outliers';

/** Path of an analytics query. */
export const analyticsPath = (kind: AnalyticsKind, params: Record<string, string>) =>
  `/api/v1/analytics/${kind}?${new URLSearchParams(params)}`;

/** Ask an analytics route (JSON). */
export const getAnalytics = (kind: AnalyticsKind, params: Record<string, string>, signal?: AbortSignal) =>
  getJson<AnalyticsAnswer>(analyticsPath(kind, params), signal).then((r) => r.body);

/** The same answer as CSV text (`Accept: text/csv`), for a download. */
export async function getAnalyticsCsv(kind: AnalyticsKind, params: Record<string, string>): Promise<string> {
  const headers: Record<string, string> = { accept: 'text/csv' };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(analyticsPath(kind, params), { headers });
  if (!response.ok) throw new ApiError(response.status, `HTTP_${response.status}`, response.statusText);
  return response.text();
}

/** Scrape targets, or undefined when the server does not scrape (404). */
export async function listTargets(signal?: AbortSignal): Promise<Target[] | undefined> {
  try {
    const { body } = await getJson<{ data: { activeTargets: Target[] } }>('/api/v1/targets', signal);
    return body.data.activeTargets;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return undefined;
    throw error;
  }
}

/** Query of a telemetry read. */
export interface TelemetryQuery {
  start: Date;
  end: Date;
  resolution: 'raw' | 'auto';
  limit: number;
}

/**
 * Samples of one GPU over a range in the telemetry API's compact form (`format=compact`: labels once
 * per series, then ascending times and values), oldest first.
 */
export async function getTelemetry(
  clusterId: string,
  hostId: string,
  gpuId: string,
  q: TelemetryQuery,
  signal?: AbortSignal,
): Promise<CompactTelemetry> {
  const params = new URLSearchParams({
    format: 'compact',
    start_time: q.start.toISOString(),
    end_time: q.end.toISOString(),
    order: 'asc',
    limit: String(q.limit),
    resolution: q.resolution,
  });
  const { body, headers } = await getJson<Omit<CompactTelemetry, 'hasMore'>>(
    `${hostPath(clusterId, hostId)}/gpus/${enc(gpuId)}/telemetry?${params}`,
    signal,
  );
  return { resolution: body.resolution, series: body.series, hasMore: headers.get('x-has-more') === 'true' };
}
