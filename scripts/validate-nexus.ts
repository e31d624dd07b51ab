/**
 * `make validate-nexus`: checks that the running Nexus pipeline works end to end, against the local
 * run directory or docker-compose.nexus.yml alike (same host ports):
 *   API: /health, /ready (every dependency ok), the cluster with hosts and GPUs, one GPU's telemetry,
 *        service discovery (the API and at least one collector), /metrics;
 *   GraphQL (/graphql) and WebSocket (/ws ping -> pong), unless the build does not serve them;
 *   etcd: the cluster's hierarchy under /telemetry/clusters/ (through etcd's JSON gateway), no alarm;
 *   Redis: the durability the queue needs (appendonly yes, appendfsync always), the backlog;
 *   PostgreSQL: schema migrated, samples stored, dead letters counted.
 * Exit 0 when every check passes (skips allowed), 1 otherwise.
 *   API_URL (http://127.0.0.1:$PORT), CLUSTER_ID, ETCD_URL (http://127.0.0.1:$ETCD_PORT), REDIS_URL
 *   (redis://127.0.0.1:$REDIS_PORT), REDIS_TOPICS, DB_HOST, DB_PORT ($PG_PORT), DB_USER, DB_PASSWORD,
 *   DB_NAME (the application's variables), SKIP_REDIS=1
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import WebSocket from 'ws';

const env = process.env;
const apiUrl = (env.API_URL ?? `http://127.0.0.1:${env.PORT ?? '8080'}`).replace(/\/$/, '');
const clusterId = env.CLUSTER_ID ?? 'my-cluster';
const etcdEndpoint = (env.ETCD_ENDPOINTS ?? `127.0.0.1:${env.ETCD_PORT ?? '2379'}`).split(',')[0]!;
const etcdUrl = (env.ETCD_URL ?? `http://${etcdEndpoint.replace(/^https?:\/\//, '')}`).replace(/\/$/, '');
const redisUrl = env.REDIS_URL ?? `redis://127.0.0.1:${env.REDIS_PORT ?? '6379'}`;
const topics = (env.REDIS_TOPICS ?? 'telemetry').split(',').filter(Boolean);

type Outcome = { state: 'ok' | 'skip'; detail: string };
const results: { name: string; state: 'ok' | 'skip' | 'FAIL'; detail: string }[] = [];

class Skip extends Error {}

async function check(name: string, fn: () => Promise<string>): Promise<void> {
  let outcome: Outcome;
  try {
    outcome = { state: 'ok', detail: await fn() };
  } catch (error) {
    if (error instanceof Skip) outcome = { state: 'skip', detail: error.message };
    else {
      const detail = error instanceof Error ? error.message : String(error);
      results.push({ name, state: 'FAIL', detail });
      process.stdout.write(`  FAIL  ${name.padEnd(40)} ${detail}\n`);
      return;
    }
  }
  results.push({ name, ...outcome });
  process.stdout.write(`  ${outcome.state.padEnd(4)}  ${name.padEnd(40)} ${outcome.detail}\n`);
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

async function http(path: string, init?: RequestInit): Promise<{ status: number; body: string }> {
  const response = await fetch(`${apiUrl}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.text() };
}

async function json<T>(path: string): Promise<T> {
  const { status, body } = await http(path);
  assert(status === 200, `GET ${path}: HTTP ${status} ${body.slice(0, 200)}`);
  return JSON.parse(body) as T;
}

/** etcd v3 JSON gateway: count keys under a prefix. */
async function etcdCount(prefix: string): Promise<number> {
  const key = Buffer.from(prefix);
  const end = Buffer.from(key);
  end[end.length - 1] = end[end.length - 1]! + 1;
  const response = await fetch(`${etcdUrl}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({
      key: key.toString('base64'),
      range_end: end.toString('base64'),
      count_only: true,
    }),
    signal: AbortSignal.timeout(5000),
  });
  assert(response.ok, `etcd ${etcdUrl}/v3/kv/range: HTTP ${response.status}`);
  const body = (await response.json()) as { count?: string };
  return Number(body.count ?? 0);
}

function wsPing(): Promise<string> {
  const url = `${apiUrl.replace(/^http/, 'ws')}/ws`;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { handshakeTimeout: 5000 });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`no pong from ${url} within 5 s`));
    }, 5000);
    socket.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      socket.terminate();
      if (res.statusCode === 404) reject(new Skip(`${url} not served by this build (HTTP 404)`));
      else reject(new Error(`${url}: HTTP ${res.statusCode}`));
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('open', () => socket.send(JSON.stringify({ type: 'ping', id: 'validate' })));
    socket.on('message', (data) => {
      if ((JSON.parse(data.toString()) as { type?: string }).type === 'pong') {
        clearTimeout(timer);
        socket.close(1000);
        resolve(`${url}: ping -> pong`);
      }
    });
  });
}

async function main(): Promise<void> {
  process.stdout.write(`validate-nexus: API ${apiUrl}, cluster ${clusterId}, etcd ${etcdUrl}\n`);

  await check('API GET /health', async () => {
    const body = await json<{ status: string }>('/health');
    assert(body.status === 'ok', `status ${body.status}`);
    return 'ok';
  });
  await check('API GET /ready', async () => {
    const { status, body } = await http('/ready');
    assert(status === 200, `HTTP ${status}: ${body}`);
    return JSON.stringify((JSON.parse(body) as { checks: unknown }).checks);
  });
  let firstHost: string | undefined;
  let firstGpu: string | undefined;
  await check(`cluster ${clusterId} has hosts and GPUs`, async () => {
    const cluster = await json<{
      metadata: { total_hosts: number; total_gpus: number; active_gpus: number };
    }>(`/api/v1/clusters/${encodeURIComponent(clusterId)}`);
    const m = cluster.metadata;
    assert(
      m.total_hosts > 0 && m.total_gpus > 0,
      `empty cluster: ${JSON.stringify(m)} (has the streamer run?)`,
    );
    return `${m.total_hosts} hosts, ${m.total_gpus} GPUs (${m.active_gpus} active)`;
  });
  await check('GPUs of a host and their telemetry', async () => {
    const base = `/api/v1/clusters/${encodeURIComponent(clusterId)}`;
    const hosts = await json<{ hostname: string }[]>(`${base}/hosts`);
    firstHost = hosts[0]?.hostname;
    assert(firstHost, 'no host');
    const gpus = await json<{ gpu_id: string }[]>(`${base}/hosts/${encodeURIComponent(firstHost)}/gpus`);
    firstGpu = gpus[0]?.gpu_id;
    assert(firstGpu !== undefined, `host ${firstHost} has no GPU`);
    const telemetry = await json<unknown[]>(
      `${base}/hosts/${encodeURIComponent(firstHost)}/gpus/${encodeURIComponent(firstGpu)}/telemetry?limit=10`,
    );
    assert(telemetry.length > 0, `no telemetry for ${firstHost}/gpu ${firstGpu}`);
    return `${firstHost}: ${gpus.length} GPUs; gpu ${firstGpu}: ${telemetry.length} samples`;
  });
  await check('service discovery (/api/v1/services)', async () => {
    const services = await json<{ type: string; id: string }[]>('/api/v1/services');
    const types = services.map((s) => s.type);
    assert(types.includes('api'), `no api registered: ${JSON.stringify(services)}`);
    assert(types.includes('collector'), `no collector registered: ${JSON.stringify(services)}`);
    return services.map((s) => `${s.type}/${s.id}`).join(', ');
  });
  await check('API GET /metrics', async () => {
    const { status, body } = await http('/metrics');
    assert(status === 200 && body.includes('# HELP'), `HTTP ${status}`);
    return `${body.split('\n').filter((l) => l.startsWith('# HELP')).length} metric families`;
  });
  await check('GraphQL POST /graphql', async () => {
    if (env.ENABLE_GRAPHQL === 'false') throw new Skip('ENABLE_GRAPHQL=false');
    const { status, body } = await http('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `{ cluster(id: ${JSON.stringify(clusterId)}) { id totalHosts totalGPUs } }`,
      }),
    });
    if (status === 404) throw new Skip('/graphql not served by this build (HTTP 404)');
    assert(status === 200, `HTTP ${status}: ${body.slice(0, 300)}`);
    const answer = JSON.parse(body) as { data?: { cluster?: { totalGPUs: number } }; errors?: unknown };
    assert(!answer.errors && answer.data?.cluster, `answer: ${body.slice(0, 300)}`);
    return `cluster ${clusterId}: ${answer.data.cluster.totalGPUs} GPUs`;
  });
  await check('WebSocket /ws', async () => {
    if (env.ENABLE_WEBSOCKET === 'false') throw new Skip('ENABLE_WEBSOCKET=false');
    return wsPing();
  });

  await check('etcd hierarchy', async () => {
    const prefix = `/telemetry/clusters/${encodeURIComponent(clusterId)}`;
    const cluster = await etcdCount(prefix);
    const hosts = await etcdCount(`${prefix}/hosts/`);
    assert(cluster > 0, `no keys under ${prefix}`);
    return `${cluster} keys under ${prefix} (${hosts} host and GPU records)`;
  });
  await check('etcd alarms', async () => {
    const response = await fetch(`${etcdUrl}/v3/maintenance/alarm`, {
      method: 'POST',
      body: JSON.stringify({ action: 'GET' }),
      signal: AbortSignal.timeout(5000),
    });
    assert(response.ok, `HTTP ${response.status}`);
    const body = (await response.json()) as { alarms?: { alarm?: string }[] };
    assert(!body.alarms?.length, `alarms raised: ${JSON.stringify(body.alarms)} (docs/operations.md)`);
    return 'none';
  });

  await check('Redis durability and backlog', async () => {
    if (env.SKIP_REDIS === '1') throw new Skip('SKIP_REDIS=1');
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5000 });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      const [, appendonly] = (await redis.config('GET', 'appendonly')) as string[];
      const [, appendfsync] = (await redis.config('GET', 'appendfsync')) as string[];
      const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as string[];
      assert(
        appendonly === 'yes' && appendfsync === 'always' && policy === 'noeviction',
        `appendonly ${appendonly}, appendfsync ${appendfsync}, maxmemory-policy ${policy}: ` +
          'acknowledged batches can be lost (docs/redis.md)',
      );
      const backlog = await Promise.all(topics.map(async (t) => `llen ${t} = ${await redis.llen(t)}`));
      return `appendonly yes, appendfsync always, noeviction; ${backlog.join(', ')}`;
    } finally {
      redis.disconnect();
    }
  });

  await check('PostgreSQL samples', async () => {
    const client = new pg.Client({
      connectionString: env.DATABASE_URL,
      host: env.DB_HOST ?? '127.0.0.1',
      port: Number(env.DB_PORT ?? env.PG_PORT ?? 5433),
      user: env.DB_USER ?? 'postgres',
      password: env.DB_PASSWORD ?? 'postgres',
      database: env.DB_NAME ?? 'telemetry',
      connectionTimeoutMillis: 5000,
    });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: number; samples: string; dead: string; series: string }>(
        `SELECT (SELECT max(version) FROM schema_migrations) AS version,
                (SELECT count(*) FROM samples) AS samples,
                (SELECT count(*) FROM series WHERE cluster_id = $1) AS series,
                (SELECT count(*) FROM dead_letters) AS dead`,
        [clusterId],
      );
      const r = rows[0]!;
      assert(Number(r.samples) > 0, 'no samples stored');
      assert(Number(r.series) > 0, `no series of cluster ${clusterId}`);
      return `schema v${r.version}, ${r.samples} samples, ${r.series} series of ${clusterId}, ${r.dead} dead letters`;
    } finally {
      await client.end();
    }
  });

  const failed = results.filter((r) => r.state === 'FAIL');
  const skipped = results.filter((r) => r.state === 'skip');
  process.stdout.write(
    `validate-nexus: ${results.length - failed.length - skipped.length} passed, ${failed.length} failed` +
      `${skipped.length ? `, ${skipped.length} skipped` : ''}\n`,
  );
  process.exit(failed.length > 0 ? 1 : 0);
}

main().catch((error: unknown) => {
  process.stderr.write(`validate-nexus: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
