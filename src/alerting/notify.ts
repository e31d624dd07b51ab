/**
 * Notification senders: Alertmanager's v2 API (`POST {url}/api/v2/alerts`, the payload Prometheus
 * sends) and plain JSON webhooks signed with HMAC-SHA256. Each send retries with exponential backoff
 * (full jitter) within a bounded number of attempts; the caller records what succeeded.
 */
import { createHmac } from 'node:crypto';
import { backoffDelay, sleep } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';

/** One alert as Alertmanager's v2 API takes it. */
export interface AlertmanagerAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
}

/** Body of a webhook notification. */
export interface WebhookPayload {
  version: '1';
  /** `firing` once per alert instance, then `resolved` once. */
  status: 'firing' | 'resolved';
  /** Fingerprint and startsAt: the same for every delivery of this notification. */
  idempotencyKey: string;
  cluster: string;
  alert: {
    fingerprint: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    startsAt: string;
    endsAt: string | null;
    value: number;
    generatorURL: string;
  };
}

/** Header carrying `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`. */
export const SIGNATURE_HEADER = 'x-nexus-signature';
/** Header carrying the unix time (seconds) the signature covers. */
export const TIMESTAMP_HEADER = 'x-nexus-timestamp';
/** Header carrying the payload's idempotency key. */
export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** The signature of `body` sent at `timestamp` (unix seconds) with `secret`. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Options of a {@link Notifier}. */
export interface NotifierOptions {
  /** Alertmanager base URLs (`http://am:9093`). */
  alertmanagerUrls: readonly string[];
  webhookUrls: readonly string[];
  webhookSecret?: string;
  logger: Logger;
  /** Attempts per send (default 4). */
  attempts?: number;
  /** First backoff ceiling, ms (default 250; doubles per attempt, capped at 5 s). */
  backoffMs?: number;
  /** Time limit of one request (default 10 s). */
  timeoutMs?: number;
}

/** Sends notifications; see the module comment. */
export class Notifier {
  private readonly log: Logger;

  constructor(private readonly options: NotifierOptions) {
    this.log = options.logger.child({ component: 'alert-notifier' });
  }

  get hasAlertmanager(): boolean {
    return this.options.alertmanagerUrls.length > 0;
  }

  get webhookUrls(): readonly string[] {
    return this.options.webhookUrls;
  }

  /** POST `alerts` to every Alertmanager; true when at least one took them (as Prometheus counts). */
  async sendAlertmanager(alerts: readonly AlertmanagerAlert[]): Promise<boolean> {
    if (alerts.length === 0) return true;
    const body = JSON.stringify(alerts);
    const results = await Promise.all(
      this.options.alertmanagerUrls.map((base) =>
        this.post(`${base.replace(/\/+$/, '')}/api/v2/alerts`, body, {}, 'alertmanager'),
      ),
    );
    return results.some(Boolean);
  }

  /** POST one signed webhook notification; true when the receiver answered 2xx. */
  async sendWebhook(url: string, payload: WebhookPayload): Promise<boolean> {
    const body = JSON.stringify(payload);
    const headers: Record<string, string> = { [IDEMPOTENCY_HEADER]: payload.idempotencyKey };
    if (this.options.webhookSecret !== undefined) {
      const timestamp = String(Math.floor(Date.now() / 1000));
      headers[TIMESTAMP_HEADER] = timestamp;
      headers[SIGNATURE_HEADER] = signWebhook(this.options.webhookSecret, timestamp, body);
    }
    return this.post(url, body, headers, 'webhook');
  }

  private async post(
    url: string,
    body: string,
    headers: Record<string, string>,
    kind: string,
  ): Promise<boolean> {
    const attempts = this.options.attempts ?? 4;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let reason: string;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'nexus-telemetry', ...headers },
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
        });
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return true;
        reason = `HTTP ${response.status}`;
        // A 4xx other than 408/429 will not change on retry.
        if (response.status < 500 && response.status !== 408 && response.status !== 429) attempt = attempts;
      } catch (error) {
        reason = (error as Error).message;
      }
      if (attempt < attempts) {
        await sleep(backoffDelay(attempt, this.options.backoffMs ?? 250, 5000));
      } else {
        this.log.warn({ url, kind, attempts, reason }, 'notification failed; retrying next evaluation');
      }
    }
    return false;
  }
}
