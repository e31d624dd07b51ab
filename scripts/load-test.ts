/**
 * `make load-test-nexus`: autocannon against the running API, bounded in time (or request count),
 * one endpoint after the other: REST (health, cluster, hosts, GPUs of a host, telemetry) and GraphQL
 * when /graphql is served; then a WebSocket fan-out: LOAD_WS_CLIENTS /ws clients (100; 0 skips)
 * subscribed to every GPU event for LOAD_DURATION s, each sending a protocol `ping` every 100 ms.
 * Prints throughput, latency and errors per endpoint (for /ws: connect time, ping round trip,
 * events and their latency from the collector's write when something is ingesting); exits 1 when
 * any request failed (connection error, timeout, non-2xx or an unexpected close), never on speed.
 *   API_URL (default http://127.0.0.1:$PORT, PORT 8080), CLUSTER_ID (my-cluster),
 *   LOAD_DURATION seconds per endpoint (10), LOAD_CONNECTIONS (10), LOAD_REQUESTS (per endpoint;
 *   when set, stops after that many requests instead of after LOAD_DURATION), LOAD_WS_CLIENTS (100)
 */
import autocannon from 'autocannon';
import { WebSocket } from 'ws';

const baseUrl = (process.env.API_URL ?? `http://127.0.0.1:${process.env.PORT ?? '8080'}`).replace(/\/$/, '');
const clusterId = process.env.CLUSTER_ID ?? 'my-cluster';
const duration = Number(process.env.LOAD_DURATION ?? 10);
const connections = Number(process.env.LOAD_CONNECTIONS ?? 10);
const amount = process.env.LOAD_REQUESTS ? Number(process.env.LOAD_REQUESTS) : undefined;
const wsClients = Number(process.env.LOAD_WS_CLIENTS ?? 100);

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

/** What the WebSocket fan-out measured. */
interface FanOut {
  clients: number;
  connectMs: number;
  pings: number;
  rtt: number[];
  events: number;
  eventLatency: number[];
  errors: number;
}

function percentile(values: number[], p: number): number | string {
  if (values.length === 0) return '-';
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** N /ws clients for `seconds`: connect, ping every 100 ms, count events; bounded in time. */
async function wsFanOut(clients: number, seconds: number): Promise<FanOut> {
  const url = `${baseUrl.replace(/^http/, 'ws')}/ws?eventTypes=GPU_UPDATE`;
  const out: FanOut = { clients, connectMs: 0, pings: 0, rtt: [], events: 0, eventLatency: [], errors: 0 };
  const sockets: WebSocket[] = [];
  let closing = false;
  const started = Date.now();
  const opened = Array.from({ length: clients }, (_, i) => {
    const ws = new WebSocket(url);
    sockets.push(ws);
    const sent = new Map<string, number>();
    let seq = 0;
    let timer: NodeJS.Timeout | undefined;
    ws.on('message', (data) => {
      const now = Date.now();
      const m = JSON.parse(String(data)) as {
        type: string;
        id?: string;
        event?: { observedAt?: string | null };
      };
      if (m.type === 'pong' && m.id !== undefined && sent.has(m.id)) {
        out.rtt.push(now - sent.get(m.id)!);
        sent.delete(m.id);
      } else if (m.type === 'event') {
        out.events += 1;
        if (m.event?.observedAt) out.eventLatency.push(now - Date.parse(m.event.observedAt));
      }
    });
    ws.on('close', () => {
      clearInterval(timer);
      if (!closing) out.errors += 1;
    });
    ws.on('error', () => undefined);
    return new Promise<void>((resolve) => {
      ws.once('open', () => {
        timer = setInterval(() => {
          const id = `${i}-${seq++}`;
          sent.set(id, Date.now());
          out.pings += 1;
          ws.send(JSON.stringify({ type: 'ping', id }));
        }, 100);
        resolve();
      });
      ws.once('close', () => resolve());
    });
  });
  await Promise.all(opened);
  out.connectMs = Date.now() - started;
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  closing = true;
  for (const ws of sockets) ws.close(1000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  for (const ws of sockets) ws.terminate();
  return out;
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
  if (wsClients > 0) {
    const seconds = amount !== undefined ? Math.max(2, Math.min(duration, 5)) : duration;
    process.stdout.write(`load-test: WebSocket fan-out, ${wsClients} /ws clients for ${seconds} s ...\n`);
    const f = await wsFanOut(wsClients, seconds);
    console.table([
      {
        clients: f.clients,
        'connect ms (all)': f.connectMs,
        pings: f.pings,
        'rtt p50 ms': percentile(f.rtt, 50),
        'rtt p99 ms': percentile(f.rtt, 99),
        events: f.events,
        'event p50 ms': percentile(f.eventLatency, 50),
        'event p99 ms': percentile(f.eventLatency, 99),
        'unexpected closes': f.errors,
      },
    ]);
    if (f.events === 0)
      process.stdout.write(
        'load-test: no events during the window (nothing was ingesting; rows are counted only then)\n',
      );
    if (f.errors > 0 || f.rtt.length === 0) {
      rows.push({
        endpoint: 'WS /ws',
        requests: f.pings,
        'req/s': 0,
        'p50 ms': 0,
        'p99 ms': 0,
        'max ms': 0,
        non2xx: 0,
        errors: f.errors || 1,
        timeouts: 0,
      });
      failed.push(rows.at(-1)!);
    }
  }
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
