/**
 * Close codes of the /ws protocol (docs/ws-protocol.md) and how a socket is dropped: a close frame
 * with the code, then, if the peer does not complete the closing handshake within a second (a slow
 * or dead reader will not), the TCP connection is destroyed so its buffers are freed.
 */
import type { WebSocket } from 'ws';

/** Close codes the server uses on /ws (and 4503 on graphql-ws). */
export const CloseCode = {
  /** Normal closure (the client's choice, or an idle server shutdown). */
  Normal: 1000,
  /** The server is shutting down. */
  GoingAway: 1001,
  /** A message was larger than the maximum message size (sent by the ws library). */
  MessageTooBig: 1009,
  /** Unexpected server error. */
  InternalError: 1011,
  /** A message that is not a JSON object of the protocol, or binary. */
  BadMessage: 4400,
  /** The client's send buffer grew over its bound: it reads too slowly. */
  SlowConsumer: 4503,
} as const;

/** How long a dropped socket gets to finish the closing handshake before it is destroyed. */
const DROP_GRACE_MS = 1000;

/** Close with `code`, then destroy the connection if it is still open after a grace period. */
export function closeThenTerminate(socket: WebSocket, code: number, reason: string): void {
  if (socket.readyState === socket.CLOSED) return;
  try {
    socket.close(code, reason.slice(0, 120));
  } catch {
    socket.terminate();
    return;
  }
  const timer = setTimeout(() => {
    if (socket.readyState !== socket.CLOSED) socket.terminate();
  }, DROP_GRACE_MS);
  timer.unref();
}

/** Drop a client that reads too slowly (close 4503, then destroy). */
export function dropSlowSocket(socket: WebSocket, reason = 'slow consumer'): void {
  closeThenTerminate(socket, CloseCode.SlowConsumer, reason);
}
