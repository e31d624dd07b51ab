/**
 * Close codes of the /ws protocol (docs/ws-protocol.md) and how a socket is dropped: a close frame
 * with the code, then, if the peer does not complete the closing handshake within a second (a slow
 * or dead reader will not), the TCP connection is destroyed so its buffers are freed. Close reasons
 * are cut to the 123 bytes a close frame can carry (a longer one would make `ws` throw).
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
  /** Unexpected server error: handling a message failed; the connection is closed, the server runs on. */
  InternalError: 1011,
  /** A message that is not a JSON text message, or nested deeper than MAX_MESSAGE_DEPTH, or binary. */
  BadMessage: 4400,
  /** The client's send buffer grew over its bound: it reads too slowly. */
  SlowConsumer: 4503,
} as const;

/** How long a dropped socket gets to finish the closing handshake before it is destroyed. */
const DROP_GRACE_MS = 1000;

/** Most bytes of a close reason (a close frame's payload is at most 125 bytes, 2 of them the code). */
const MAX_REASON_BYTES = 123;

/** `reason` cut to fit a close frame: at most 123 bytes of UTF-8. */
export function closeReason(reason: string): string {
  let cut = reason.slice(0, MAX_REASON_BYTES);
  while (Buffer.byteLength(cut) > MAX_REASON_BYTES) cut = cut.slice(0, -1);
  return cut;
}

/** Close with `code`, then destroy the connection if it is still open after a grace period. */
export function closeThenTerminate(socket: WebSocket, code: number, reason: string): void {
  if (socket.readyState === socket.CLOSED) return;
  try {
    socket.close(code, closeReason(reason));
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
