/**
 * A comparable picture of what the REST API says about the bundled sample: cluster, hosts, every
 * GPU's record and telemetry, the GPU list. Times of processing (`last_seen`) are left out, since
 * they differ between runs, and the age in a stale GPU's health message is written as N; everything
 * taken from the data stays in.
 */
export type Get = (url: string) => Promise<unknown>;

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (k !== 'last_seen') out[k] = strip(v);
    return out;
  }
  return value;
}

/** Collect the API's answers for `clusterId` (telemetry of every `telemetryEvery`-th GPU). */
export async function apiSnapshot(
  get: Get,
  clusterId: string,
  telemetryEvery = 10,
): Promise<Record<string, unknown>> {
  const snapshot: Record<string, unknown> = {};
  const base = `/api/v1/clusters/${clusterId}`;
  snapshot.cluster = await get(base);
  const hosts = (await get(`${base}/hosts`)) as { hostname: string }[];
  snapshot.hosts = strip(hosts);
  let n = 0;
  for (const host of hosts) {
    const gpus = (await get(`${base}/hosts/${host.hostname}/gpus`)) as { gpu_id: string }[];
    snapshot[`gpus ${host.hostname}`] = strip(gpus);
    for (const gpu of gpus) {
      if (n++ % telemetryEvery !== 0) continue;
      snapshot[`telemetry ${host.hostname}/${gpu.gpu_id}`] = await get(
        `${base}/hosts/${host.hostname}/gpus/${gpu.gpu_id}/telemetry?limit=1000`,
      );
    }
  }
  snapshot.gpus = await get('/api/v1/gpus');
  // A stale GPU's health reason says how long ago its newest sample is, by the reader's clock.
  return JSON.parse(JSON.stringify(snapshot).replace(/no sample for \d+ s/g, 'no sample for N s')) as Record<
    string,
    unknown
  >;
}
