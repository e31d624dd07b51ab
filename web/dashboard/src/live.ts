// The /ws connection: one subscription to every event, a snapshot first, resume from the last
// cursor after a drop (docs/ws-protocol.md), reconnect with backoff. No polling anywhere.
import type { Alert } from './api';
import { alertStore, fleet, type StreamEvent } from './store';
import { getToken } from './token';

/** What the header shows: live, reconnecting (retrying), offline (down for a while, or no network). */
export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'offline';

const SUBSCRIPTION = 'fleet';
/** The alert stream's subscription: a fresh snapshot at every connect (alert streams do not resume). */
const ALERTS = 'alerts';
/** After this long without a connection the state turns from reconnecting to offline. */
const OFFLINE_AFTER_MS = 15_000;

type StateListener = (state: LiveState, detail: string) => void;

/** One live connection for the whole page. */
export class LiveConnection {
  state: LiveState = 'connecting';
  detail = '';
  /** Cursor of the last event applied: a reconnect resumes after it. */
  cursor: string | undefined;
  private ws: WebSocket | undefined;
  private attempt = 0;
  private downSince = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private silenceTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatMs = 30_000;
  private readonly listeners = new Set<StateListener>();

  /** Follow the state; called at once with the current one. */
  onState(fn: StateListener): () => void {
    this.listeners.add(fn);
    fn(this.state, this.detail);
    return () => this.listeners.delete(fn);
  }

  /** Open the connection (again, e.g. after the token changed). */
  start(): void {
    this.stopSocket();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws?subscribe=none`);
    this.ws = ws;
    ws.onopen = () => {
      const token = getToken();
      if (token) ws.send(JSON.stringify({ type: 'auth', token }));
      const resume = this.cursor !== undefined;
      ws.send(
        JSON.stringify({
          type: 'subscribe',
          id: SUBSCRIPTION,
          // Events framed per store revision: a write of many GPUs is one message, not one per GPU.
          batch: true,
          ...(resume ? { after: this.cursor } : { snapshot: true }),
        }),
      );
      ws.send(JSON.stringify({ type: 'subscribe', id: ALERTS, stream: 'alerts', snapshot: true }));
    };
    ws.onmessage = (message) => this.receive(ws, String(message.data));
    ws.onclose = (close) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      const why =
        close.code === 4401 || close.code === 4403 ? 'the API needs a valid token (set it above)' : '';
      this.retry(why);
    };
  }

  private receive(ws: WebSocket, text: string): void {
    if (this.ws !== ws) return;
    this.armSilence(ws);
    const message = JSON.parse(text) as Record<string, unknown>;
    switch (message.type) {
      case 'welcome':
        this.heartbeatMs = Number(message.heartbeatMs) || this.heartbeatMs;
        return;
      case 'alerts':
        alertStore.snapshot(message.alerts as Alert[]);
        return;
      case 'alert': {
        const { kind, alert } = message.event as { kind: string; alert: Alert };
        alertStore.change(kind, alert);
        return;
      }
      case 'subscribed':
        if (message.id === ALERTS) return;
        this.attempt = 0;
        this.downSince = 0;
        if (this.cursor === undefined) this.cursor = String(message.cursor);
        this.setState('live', '');
        return;
      case 'resync':
        // History after our cursor is gone (e.g. the server restarted): snapshots follow.
        fleet.reset();
        this.cursor = String(message.cursor);
        return;
      case 'event':
        return this.applyEvent(message.event as StreamEvent, String(message.cursor));
      case 'events':
        for (const item of message.events as { cursor: string; event: StreamEvent }[])
          this.applyEvent(item.event, item.cursor);
        return;
      case 'error':
        if (message.id === ALERTS) alertStore.fail(String(message.message));
        else this.detail = String(message.message);
        return;
      case 'complete':
        if (message.id !== ALERTS) ws.close();
        return;
      default:
        return;
    }
  }

  private applyEvent(event: StreamEvent, cursor: string): void {
    fleet.apply(event);
    if (event.eventType !== 'SNAPSHOT') this.cursor = cursor;
  }

  /** A connection that stays silent for three heartbeats is dead: reconnect. */
  private armSilence(ws: WebSocket): void {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      if (this.ws === ws) ws.close();
    }, 3 * this.heartbeatMs);
  }

  private retry(why: string): void {
    clearTimeout(this.silenceTimer);
    if (this.downSince === 0) this.downSince = Date.now();
    const offline = !navigator.onLine || Date.now() - this.downSince > OFFLINE_AFTER_MS;
    this.setState(offline ? 'offline' : 'reconnecting', why);
    const delay = Math.min(5_000, 250 * 2 ** this.attempt++);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.start(), delay);
  }

  private stopSocket(): void {
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = undefined;
    ws?.close();
  }

  private setState(state: LiveState, detail: string): void {
    this.state = state;
    this.detail = detail;
    for (const fn of this.listeners) fn(state, detail);
  }
}

/** The page's one connection. */
export const live = new LiveConnection();
