/**
 * Coalesces a WebSocket's sends within one turn of the event loop into one socket write. A
 * hierarchy round delivers many events at once, and every subscriber gets each as a message of its
 * own (/ws without `batch`, GraphQL's `telemetryUpdates`): without this, each message is a write
 * system call per client. The first send of a turn corks the TCP socket and the end of the turn's
 * ticks uncorks it; the frames are unchanged, only written together.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/** Make `ws`'s sends on `socket` (the socket its handshake came on) go out once per turn. */
export function coalesceSends(ws: WebSocket, socket: Duplex): void {
  const send = ws.send.bind(ws);
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  // ws exposes no hook for this: the instance's own send is wrapped (same signature).
  ws.send = ((...args: Parameters<WebSocket['send']>) => {
    if (!corked && ws.readyState === ws.OPEN) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    send(...args);
  }) as WebSocket['send'];
}
