/**
 * `make load-test-nexus`: autocannon against the running API, bounded in time (or request count),
 * one endpoint after the other: REST (health, cluster, hosts, GPUs of a host, telemetry) and GraphQL
 * when /graphql is served. Prints throughput, latency and errors per endpoint; exits 1 when any
 * request failed (connection error, timeout or non-2xx), never on speed.
 *   API_URL (default http://127.0.0.1:$PORT, PORT 8080), CLUSTER_ID (my-cluster),
 *   LOAD_DURATION seconds per endpoint (10), LOAD_CONNECTIONS (10), LOAD_REQUESTS (per endpoint;
 *   when set, stops after that many requests instead of after LOAD_DURATION)
 */
import autocannon from 'autocannon';

const baseUrl = (process.env.API_URL ?? `http://127.0.0.1:${process.env.PORT ?? '8080'}`).replace(/\/$/, '');
const clusterId = process.env.CLUSTER_ID ?? 'my-cluster';
const duration = Number(process.env.LOAD_DURATION ?? 10);
const connections = Number(process.env.LOAD_CONNECTIONS ?? 10);
const amount = process.env.LOAD_REQUESTS ? Number(process.env.LOAD_REQUESTS) : undefined;

interface Target {
  name: string;
  path: string;
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(`${baseUrl}${path}`);
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

async function targets(): Promise<Target[]> {
  const cluster = `/api/v1/clusters/${encodeURIComponent(clusterId)}`;
  const list: Target[] = [
    { name: 'GET /health', path: '/health' },
    { name: 'GET /api/v1/clusters/{id}', path: cluster },
    { name: 'GET .../hosts', path: `${cluster}/hosts` },
  ];
  const hosts = await getJson<{ hostname: string }[]>(`${cluster}/hosts`);
  const host = hosts[0]?.hostname;
  if (host) {
    const hostPath = `${cluster}/hosts/${encodeURIComponent(host)}`;
    list.push({ name: 'GET .../hosts/{h}/gpus', path: `${hostPath}/gpus` });
    const gpus = await getJson<{ gpu_id: string }[]>(`${hostPath}/gpus`);
    const gpu = gpus[0]?.gpu_id;
    if (gpu !== undefined) {
      list.push({
        name: 'GET .../gpus/{g}/telemetry?limit=10',
        path: `${hostPath}/gpus/${encodeURIComponent(gpu)}/telemetry?limit=10`,
      });
    }
  } else {
    process.stdout.write(`load-test: cluster ${clusterId} has no hosts yet; host/GPU endpoints skipped\n`);
  }
  const query = JSON.stringify({
    query: `{ cluster(id: ${JSON.stringify(clusterId)}) { id totalHosts totalGPUs activeGPUs } }`,
  });
  const probe = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: query,
  }).catch(() => undefined);
  if (probe?.ok) {
    list.push({
      name: 'POST /graphql (cluster)',
      path: '/graphql',
      method: 'POST',
      body: query,
      headers: { 'content-type': 'application/json' },
    });
  } else {
    process.stdout.write(
      `load-test: /graphql not served (HTTP ${probe?.status ?? 'no answer'}); GraphQL skipped\n`,
    );
  }
  return list;
}

interface Row {
  endpoint: string;
  requests: number;
  'req/s': number;
  'p50 ms': number;
  'p99 ms': number;
  'max ms': number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

async function main(): Promise<void> {
  const health = await fetch(`${baseUrl}/health`).catch((error: unknown) => {
    throw new Error(
      `the API at ${baseUrl} does not answer (${String(error)}); start it first (make quick-start-nexus)`,
    );
  });
  if (!health.ok) throw new Error(`${baseUrl}/health answered ${health.status}`);
  const bound = amount !== undefined ? `${amount} requests` : `${duration} s`;
  process.stdout.write(`load-test: ${baseUrl}, ${connections} connections, ${bound} per endpoint\n`);
  const rows: Row[] = [];
  for (const target of await targets()) {
    const result = await autocannon({
      url: `${baseUrl}${target.path}`,
      method: target.method ?? 'GET',
      body: target.body,
      headers: target.headers,
      connections,
      ...(amount !== undefined ? { amount } : { duration }),
      timeout: 10,
    });
    rows.push({
      endpoint: target.name,
      requests: result.requests.total,
      'req/s': Math.round(result.requests.average),
      'p50 ms': result.latency.p50,
      'p99 ms': result.latency.p99,
      'max ms': result.latency.max,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
    });
    process.stdout.write(`  done: ${target.name}\n`);
  }
  console.table(rows);
  const failed = rows.filter((r) => r.non2xx > 0 || r.errors > 0 || r.timeouts > 0);
  if (failed.length > 0) {
    process.stderr.write(`load-test: failures on ${failed.map((r) => r.endpoint).join(', ')}\n`);
    process.exit(1);
  }
  process.stdout.write('load-test: no errors\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`load-test: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
