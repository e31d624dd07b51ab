/**
 * The client snippet of docs/ws-protocol.md ("Connecting"), taken from the document and run as
 * written against a live server: with the `ws` library's WebSocket and, where the runtime has one
 * (Node.js 22 and later), Node's own global WebSocket. Only the URL is pointed at the test server.
 * The snippet must not throw (the guide's version sends before the socket is open, which throws in
 * both) and must log the server's messages, the `pong` to its ping among them.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket as WsWebSocket } from 'ws';
import { startSampleServer, waitUntil, type SampleServer } from './harness.js';

const DOC = readFileSync(new URL('../../docs/ws-protocol.md', import.meta.url), 'utf8');
const DOC_URL = 'ws://localhost:8080/ws';

/** The first ```javascript block of the "Connecting" section. */
function connectingSnippet(): string {
  const section = DOC.slice(DOC.indexOf('## Connecting'));
  const match = /```javascript\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error('docs/ws-protocol.md has no javascript block under "## Connecting"');
  return match[1]!;
}

/** The guide's snippet (NEXUS_INTEGRATION_GUIDE.md, "WebSocket API"), which sends too early. */
const GUIDE_SNIPPET = `const ws = new WebSocket('ws://localhost:8080/ws');

ws.onmessage = (event) => {
  const data = JSON.parse(event.data);
  console.log('Telemetry update:', data);
};

// Send ping
ws.send(JSON.stringify({type: 'ping'}));
`;

type Socket = { close(): void; onerror: unknown };
type WebSocketClass = new (url: string) => Socket;

/** Run snippet code with `WebSocket` and `console` supplied; returns the logged calls and the socket. */
function run(code: string, impl: WebSocketClass, url: string) {
  const logged: unknown[][] = [];
  const sockets: Socket[] = [];
  class Tracked extends impl {
    constructor(u: string) {
      super(u === DOC_URL ? url : u);
      sockets.push(this);
    }
  }
  const fakeConsole = { log: (...args: unknown[]) => logged.push(args) };
  new Function('WebSocket', 'console', code)(Tracked, fakeConsole);
  return { logged, close: () => sockets.forEach((s) => s.close()) };
}

const implementations: [string, WebSocketClass][] = [['ws', WsWebSocket as unknown as WebSocketClass]];
const nodeWebSocket = (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
if (nodeWebSocket) implementations.push(["Node's global WebSocket", nodeWebSocket]);

let server: SampleServer;

beforeAll(async () => {
  server = await startSampleServer({}, { ingest: false });
});

afterAll(async () => {
  await server?.close();
});

describe('docs/ws-protocol.md client snippet', () => {
  it('names the documented URL and sends its ping from the open handler', () => {
    const code = connectingSnippet();
    expect(code).toContain(`new WebSocket('${DOC_URL}')`);
    expect(code).toMatch(/ws\.onopen = \(\) => ws\.send\(JSON\.stringify\(\{ type: 'ping' \}\)\);/);
  });

  it.each(implementations)('runs as written with %s and logs the pong', async (_name, impl) => {
    const { logged, close } = run(connectingSnippet(), impl, `${server.wsBase}/ws`);
    try {
      const types = () => logged.map((args) => (args[1] as { type?: string } | undefined)?.type);
      await waitUntil(() => types().includes('pong'), 'the pong to be logged');
      expect(logged[0]?.[0]).toBe('Telemetry update:');
      expect(types()[0]).toBe('welcome');
    } finally {
      close();
    }
  });

  it.each(implementations)(
    "the guide's version, which sends before the socket is open, throws with %s",
    (_name, impl) => {
      const opened: Socket[] = [];
      class Tracked extends impl {
        constructor(u: string) {
          super(u === DOC_URL ? `${server.wsBase}/ws` : u);
          opened.push(this);
        }
      }
      try {
        expect(() =>
          new Function('WebSocket', 'console', GUIDE_SNIPPET)(Tracked, { log: () => undefined }),
        ).toThrow();
      } finally {
        // Closed while connecting: the socket reports an error event; nothing to see here.
        for (const socket of opened) {
          socket.onerror = () => undefined;
          socket.close();
        }
      }
    },
  );
});
