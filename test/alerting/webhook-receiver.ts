/**
 * Test webhook receiver on a free 127.0.0.1 port: records every POST (headers, parsed body, whether
 * the HMAC signature checks out), and can be told to fail the next requests with a status.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  signWebhook,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  type WebhookPayload,
} from '../../src/alerting/notify.js';

/** One received notification. */
export interface Received {
  payload: WebhookPayload;
  idempotencyKey: string | undefined;
  /** The signature matched the secret (undefined: no secret given). */
  signed: boolean | undefined;
}

/** A running receiver. */
export interface WebhookReceiver {
  readonly url: string;
  readonly received: Received[];
  /** Answer the next `count` requests with `status` (default 503). */
  failNext(count: number, status?: number): void;
  /** Requests answered with a failure so far. */
  readonly failures: number;
  close(): Promise<void>;
}

/** Start a receiver; `secret` checks the signature header. */
export async function startWebhookReceiver(secret?: string): Promise<WebhookReceiver> {
  const received: Received[] = [];
  let failing = 0;
  let failStatus = 503;
  let failures = 0;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      if (failing > 0) {
        failing--;
        failures++;
        response.writeHead(failStatus).end();
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      const timestamp = request.headers[TIMESTAMP_HEADER] as string | undefined;
      const signature = request.headers[SIGNATURE_HEADER] as string | undefined;
      received.push({
        payload: JSON.parse(body) as WebhookPayload,
        idempotencyKey: request.headers['idempotency-key'] as string | undefined,
        signed:
          secret === undefined
            ? undefined
            : timestamp !== undefined && signature === signWebhook(secret, timestamp, body),
      });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    failNext(count, status = 503) {
      failing = count;
      failStatus = status;
    },
    get failures() {
      return failures;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
