/**
 * `make test-websocket`: connect to the API's WebSocket (/ws), send the guide's ping and wait for the
 * pong, printing every message received. Exit 0 on pong; 1 on error, close or timeout.
 *   WS_URL (default ws://127.0.0.1:$PORT/ws, PORT default 8080), WS_TIMEOUT_MS (default 5000)
 */
import WebSocket from 'ws';

const url = process.env.WS_URL ?? `ws://127.0.0.1:${process.env.PORT ?? '8080'}/ws`;
const timeoutMs = Number(process.env.WS_TIMEOUT_MS ?? 5000);

function finish(code: number, message: string, socket?: WebSocket): never {
  (code === 0 ? process.stdout : process.stderr).write(`test-websocket: ${message}\n`);
  socket?.terminate();
  process.exit(code);
}

const socket = new WebSocket(url, { handshakeTimeout: timeoutMs });
const timer = setTimeout(() => finish(1, `no pong from ${url} within ${timeoutMs} ms`, socket), timeoutMs);

socket.on('unexpected-response', (_request, response) => {
  clearTimeout(timer);
  finish(
    1,
    `${url} refused the upgrade: HTTP ${response.statusCode} (is the WebSocket endpoint served? ENABLE_WEBSOCKET)`,
  );
});
socket.on('error', (error) => finish(1, `${url}: ${error.message}`, socket));
socket.on('close', (code, reason) => finish(1, `closed before pong: ${code} ${reason.toString()}`));
socket.on('open', () => {
  process.stdout.write(`test-websocket: connected to ${url}; sending {"type":"ping"}\n`);
  socket.send(JSON.stringify({ type: 'ping', id: 'make-test-websocket' }));
});
socket.on('message', (data) => {
  const text = data.toString();
  process.stdout.write(`< ${text.length > 500 ? `${text.slice(0, 500)}...` : text}\n`);
  let message: { type?: unknown };
  try {
    message = JSON.parse(text) as { type?: unknown };
  } catch {
    return;
  }
  if (message.type === 'pong') {
    clearTimeout(timer);
    socket.removeAllListeners('close');
    socket.close(1000, 'done');
    finish(0, 'pong received: WebSocket OK');
  }
});
