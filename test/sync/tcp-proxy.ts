/**
 * A loopback TCP proxy for fault tests (after microsoft/etcd3's test proxy): `pause()` stops
 * forwarding in both directions without closing anything, as a frozen network path or a stopped
 * process would, so the server's writes back up into its buffers; `resume()` lets them through;
 * `cut()` resets every connection.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** A running proxy. */
export interface TcpProxy {
  /** `127.0.0.1:port` to connect to instead of the target. */
  readonly endpoint: string;
  pause(): void;
  resume(): void;
  /** Destroy every open connection (clients reconnect through the proxy). */
  cut(): void;
  close(): Promise<void>;
}

/** Start a proxy in front of `target` (`host:port`). */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [host, port] = target.split(':') as [string, string];
  const pairs = new Set<[Socket, Socket]>();
  let paused = false;
  const server: Server = createServer((client) => {
    const upstream = connect(Number(port), host);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    // Plain 'data' forwarding (not pipe(), which resumes a source on drain): pause() sticks.
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    if (paused) {
      client.pause();
      upstream.pause();
    }
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    endpoint: `127.0.0.1:${address.port}`,
    pause() {
      paused = true;
      for (const [a, b] of pairs) {
        a.pause();
        b.pause();
      }
    },
    resume() {
      paused = false;
      for (const [a, b] of pairs) {
        a.resume();
        b.resume();
      }
    },
    cut() {
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    close() {
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
