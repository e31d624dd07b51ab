/**
 * Coalesces a WebSocket's sends within one turn of the event loop into one socket write. A
 * hierarchy round delivers many events at once, and every subscriber gets each as a message of its
 * own (/ws without `batch`, GraphQL's `telemetryUpdates`): without this, each message is a write
 * system call per client. The first send of a turn corks the TCP socket and the end of the turn's
 * ticks uncorks it; the frames are unchanged, only written together.
 *
 * While corked, `bufferedAmount` includes this turn's frames, which a client has had no chance to
 * read yet: slow-client checks use {@link unsentBytes}, which leaves them out. A turn holds back at
 * most {@link FLUSH_BYTES}; past that the frames are written at once and the socket corked anew.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/** Bytes of each coalescing socket's frames held back in the current turn. */
const heldBack = new WeakMap<WebSocket, { bytes: number }>();

/**
 * Bytes `ws` has not handed to the kernel from before this turn: what a client has left unread.
 * (`bufferedAmount` for a socket without coalescing.)
 */
export function unsentBytes(ws: WebSocket): number {
  return Math.max(0, ws.bufferedAmount - (heldBack.get(ws)?.bytes ?? 0));
}

/**
 * Bytes a turn may hold back before they are written anyway: a burst bigger than this (a snapshot,
 * a large round) goes out in writes of about this size, so that frames held back never hide more
 * than this from a slow-client bound (WS_MAX_BUFFERED is at least 16 KiB).
 */
export const FLUSH_BYTES = 16 * 1024;

/** Make `ws`'s sends on `socket` (the socket its handshake came on) go out once per turn. */
export function coalesceSends(ws: WebSocket, socket: Duplex): void {
  const send = ws.send.bind(ws);
  const held = { bytes: 0 };
  heldBack.set(ws, held);
  let corked = false;
  let tickPending = false;
  const uncork = (): void => {
    if (!corked) return;
    corked = false;
    held.bytes = 0;
    socket.uncork();
  };
  const endOfTurn = (): void => {
    tickPending = false;
    uncork();
  };
  // ws exposes no hook for this: the instance's own send is wrapped (same signature).
  ws.send = ((...args: Parameters<WebSocket['send']>) => {
    if (!corked && ws.readyState === ws.OPEN) {
      corked = true;
      socket.cork();
      if (!tickPending) {
        tickPending = true;
        process.nextTick(endOfTurn);
      }
    }
    const before = ws.bufferedAmount;
    try {
      send(...args);
    } finally {
      if (corked) {
        held.bytes += Math.max(0, ws.bufferedAmount - before);
        if (held.bytes >= FLUSH_BYTES) uncork();
      }
    }
  }) as WebSocket['send'];
}
