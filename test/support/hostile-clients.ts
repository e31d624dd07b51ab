/**
 * Clients that misbehave on purpose, for soak tests: /ws and graphql-ws sockets sending deep JSON,
 * garbage, binary and oversized frames or never reading; REST requests with NUL bytes, absurd limits
 * and heavy concurrent reads. Each loops until stopped and shrugs off the server going away (the soak
 * kills it). Also a /health prober that records how long every answer took while the server was up.
 */
import { WebSocket } from 'ws';

/** Deterministic pseudo-random numbers (mulberry32), so a failing soak can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** JSON text nested `depth` levels deep (about 2 bytes per level). */
export function deepJson(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What the hostile clients did, for the test's log. */
export interface HostileStats {
  wsMessages: number;
  graphqlWsMessages: number;
  restRequests: number;
  /** REST answers with status >= 500 while the server was up (must stay 0). */
  restServerErrors: string[];
}

/** Open a socket, run `script` on it once open, close it; resolves on close or error, never rejects. */
function withSocket(
  url: string,
  protocols: string[] | undefined,
  script: (socket: WebSocket) => number,
  stats: (n: number) => void,
): Promise<void> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, protocols, { handshakeTimeout: 2000 });
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      socket.terminate();
      done();
    }, 3000);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('open', () => {
      try {
        stats(script(socket));
      } catch {
        // the server went away mid-script
      }
      setTimeout(() => socket.close(), 200);
    });
  });
}

const WS_SCRIPTS: ((s: WebSocket) => number)[] = [
  (s) => (s.send(`{"type":"ping","payload":${deepJson(5000)}}`), 1),
  (s) => (s.send(deepJson(20_000)), 1),
  (s) => (s.send('not json at all {'), 1),
  (s) => (s.send(Buffer.from([0, 1, 2, 255])), 1),
  (s) => (s.send(JSON.stringify({ type: 'subscribe', id: 'x', filter: { hostId: '\u0000' } })), 1),
  (s) => (s.send(JSON.stringify({ type: 'subscribe', id: {}, filter: [] })), 1),
  (s) => (s.send('x'.repeat(200_000)), 1),
  (s) => {
    for (let i = 0; i < 50; i++) s.send(JSON.stringify({ type: 'subscribe', id: `s${i}`, filter: {} }));
    return 50;
  },
];

const GRAPHQL_WS_SCRIPTS: ((s: WebSocket) => number)[] = [
  (s) => (s.send(`{"type":"connection_init","payload":${deepJson(5000)}}`), 1),
  (s) => (s.send(JSON.stringify({ type: 'subscribe', id: '1', payload: { query: '{ __typename }' } })), 1),
  (s) => (s.send('{"type":'), 1),
  (s) => {
    s.send(JSON.stringify({ type: 'connection_init' }));
    const deep = `subscription { telemetryUpdates(clusterId: "local") ${'{ data '.repeat(2000)}${'}'.repeat(2000)} }`;
    s.send(JSON.stringify({ type: 'subscribe', id: '2', payload: { query: deep } }));
    return 2;
  },
  (s) => {
    s.send(JSON.stringify({ type: 'connection_init' }));
    s.send(
      `{"type":"subscribe","id":"3","payload":{"query":"subscription($v: String) { telemetryUpdates(clusterId: $v) { eventType } }","variables":{"v":${deepJson(5000)}}}}`,
    );
    return 2;
  },
];

const REST_PATHS: string[] = [
  '/api/v1/clusters/local/hosts/%00/gpus',
  '/api/v1/clusters/local/hosts?limit=%00',
  '/api/v1/gpus/%00/telemetry',
  '/api/v1/clusters/local/hosts/host-001/gpus/0/telemetry?limit=10000',
  '/api/v1/clusters/local/hosts/host-001/gpus/0/telemetry?limit=99999999999',
  '/api/v1/clusters/local/hosts/host-001/gpus/0/telemetry?start_time=0000-00-00&end_time=%ff',
  '/api/v1/dead-letters?limit=-1',
  `/api/v1/clusters/${'a'.repeat(5000)}`,
  '/graphql?query=%7B%20__schema%20%7B%20types%20%7B%20fields%20%7B%20type%20%7B%20ofType%20%7B%20name%20%7D%20%7D%20%7D%20%7D%20%7D%20%7D',
];

/** Run every kind of hostile client against `base` (http://host:port) until `signal` aborts. */
export async function runHostileClients(
  base: () => string | undefined,
  signal: AbortSignal,
  seed = 1,
): Promise<HostileStats> {
  const random = prng(seed);
  const stats: HostileStats = { wsMessages: 0, graphqlWsMessages: 0, restRequests: 0, restServerErrors: [] };
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!;

  const wsLoop = async (): Promise<void> => {
    while (!signal.aborted) {
      const url = base();
      if (url)
        await withSocket(`${url.replace('http', 'ws')}/ws`, undefined, pick(WS_SCRIPTS), (n) => {
          stats.wsMessages += n;
        });
      await sleep(50);
    }
  };
  const graphqlWsLoop = async (): Promise<void> => {
    while (!signal.aborted) {
      const url = base();
      if (url)
        await withSocket(
          `${url.replace('http', 'ws')}/graphql`,
          ['graphql-transport-ws'],
          pick(GRAPHQL_WS_SCRIPTS),
          (n) => {
            stats.graphqlWsMessages += n;
          },
        );
      await sleep(50);
    }
  };
  const restLoop = async (): Promise<void> => {
    while (!signal.aborted) {
      const url = base();
      if (url) {
        const path = pick(REST_PATHS);
        try {
          const response = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) });
          await response.arrayBuffer();
          stats.restRequests += 1;
          if (response.status >= 500 && base() === url)
            stats.restServerErrors.push(`${response.status} ${path.slice(0, 120)}`);
        } catch {
          // refused or reset: the server is being killed
        }
      }
      await sleep(20);
    }
  };
  // A client that subscribes to everything and never reads: the server must drop it, not buffer.
  const stalledLoop = async (): Promise<void> => {
    while (!signal.aborted) {
      const url = base();
      if (url)
        await new Promise<void>((resolve) => {
          const socket = new WebSocket(`${url.replace('http', 'ws')}/ws?snapshot=true`);
          socket.on('upgrade', (response) => response.socket.pause());
          const end = (): void => {
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(() => {
            socket.terminate();
            end();
          }, 5000);
          socket.on('error', end);
          socket.on('close', end);
        });
      await sleep(100);
    }
  };
  await Promise.all([wsLoop(), wsLoop(), graphqlWsLoop(), restLoop(), restLoop(), stalledLoop()]);
  return stats;
}

/** One /health answer: when it was asked, how long it took, what came back. */
export interface HealthProbe {
  at: number;
  ms: number;
  status: number | 'error';
}

/**
 * Ask GET /health every `everyMs` while `base()` names a server; a probe counts only if the server
 * was still meant to be up when it finished (the soak is not asking for answers from a killed one).
 */
export async function probeHealth(
  base: () => string | undefined,
  signal: AbortSignal,
  everyMs = 200,
): Promise<HealthProbe[]> {
  const probes: HealthProbe[] = [];
  while (!signal.aborted) {
    const url = base();
    if (url) {
      const at = Date.now();
      let status: HealthProbe['status'];
      try {
        const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
        await response.arrayBuffer();
        status = response.status;
      } catch {
        status = 'error';
      }
      if (base() === url) probes.push({ at, ms: Date.now() - at, status });
    }
    await sleep(everyMs);
  }
  return probes;
}
