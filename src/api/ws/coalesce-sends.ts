/**
 * Coalesces a WebSocket's sends within one turn of the event loop into one socket write, and counts
 * what a client has left unread from earlier turns. A hierarchy round delivers many events at once,
 * and every subscriber gets each as a message of its own (/ws without `batch`, GraphQL's
 * `telemetryUpdates`): without this, each message is a write system call per client. The first
 * send of a turn corks the TCP socket and the end of the turn's ticks uncorks it; the frames are
 * unchanged, only written together. A turn holds back at most {@link FLUSH_BYTES}; past that the
 * frames are written at once and the socket corked anew.
 *
 * Slow-client bounds use {@link unsentBytes}: the bytes not yet handed to the kernel that were sent
 * in an earlier turn. One turn's sends (one delivery of the hub: a store revision's changes, a
 * snapshot, one GPU event per GPU of the fleet) are never counted against a client in that turn,
 * whatever their size, or a client that reads would be dropped by every delivery bigger than the
 * bound plus what the network takes at once. What it has not read by its next send counts.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/** Bytes each coalescing socket was given in the current turn (held back or already flushed). */
const sentThisTurn = new WeakMap<WebSocket, { bytes: number }>();

/**
 * Bytes `ws` has not handed to the kernel that were sent before this turn: what a client has left
 * unread. Exact at a turn's first send; later in the turn it may count less (the kernel may have
 * taken some of this turn's bytes instead of older ones), never more. (`bufferedAmount` for a
 * socket without coalescing.)
 */
export function unsentBytes(ws: WebSocket): number {
  return Math.max(0, ws.bufferedAmount - (sentThisTurn.get(ws)?.bytes ?? 0));
}

/**
 * Bytes a turn may hold back before they are written anyway: a burst bigger than this (a snapshot,
 * a large round) goes out in writes of about this size.
 */
export const FLUSH_BYTES = 16 * 1024;

/** Make `ws`'s sends on `socket` (the socket its handshake came on) go out once per turn. */
export function coalesceSends(ws: WebSocket, socket: Duplex): void {
  const send = ws.send.bind(ws);
  const turn = { bytes: 0 };
  sentThisTurn.set(ws, turn);
  let held = 0;
  let corked = false;
  let tickPending = false;
  const uncork = (): void => {
    if (!corked) return;
    corked = false;
    held = 0;
    socket.uncork();
  };
  const endOfTurn = (): void => {
    tickPending = false;
    turn.bytes = 0;
    uncork();
  };
  // ws exposes no hook for this: the instance's own send is wrapped (same signature).
  ws.send = ((...args: Parameters<WebSocket['send']>) => {
    if (!tickPending) {
      tickPending = true;
      process.nextTick(endOfTurn);
    }
    if (!corked && ws.readyState === ws.OPEN) {
      corked = true;
      socket.cork();
    }
    const before = ws.bufferedAmount;
    try {
      send(...args);
    } finally {
      const added = Math.max(0, ws.bufferedAmount - before);
      turn.bytes += added;
      if (corked) {
        held += added;
        if (held >= FLUSH_BYTES) uncork();
      }
    }
  }) as WebSocket['send'];
}
