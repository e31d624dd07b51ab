/**
 * Authentication of WebSocket connections (/graphql and /ws), which bypass fastify's hooks. At the
 * handshake the upgrade router checks an `Authorization: Bearer` header when there is one (401 or
 * 403 before any WebSocket exists) and records the outcome for the endpoint ({@link upgradeAuth}).
 * Without a header the credential comes in-band, as browsers cannot set headers on a WebSocket:
 * graphql-ws's `connection_init` payload `{ "authorization": "Bearer <token>" }` (or `{ "token" }`),
 * or the first /ws message `{ "type": "auth", "token": "<token>" }`. Refusals close the socket
 * with 4401 (no or a bad credential) or 4403 (no `read` scope). Every authenticated socket is
 * re-checked every second or so ({@link guardSocket}) and closed with 4401 once its token is
 * revoked or its JWT expires.
 */
import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import {
  allowed,
  bearerCredential,
  type AuthOutcome,
  type Authenticator,
  type Principal,
} from '../../auth/authenticator.js';
import type { Logger } from '../../util/logger.js';
import { closeThenTerminate } from '../ws/close.js';

/** Close codes of authentication on both WebSocket endpoints (docs/security.md). */
export const AuthCloseCode = {
  /** No credential, a bad one, or one revoked or expired while the socket was open. */
  Unauthorized: 4401,
  /** The credential lacks the `read` scope. */
  Forbidden: 4403,
} as const;

/** What the WebSocket endpoints need to authenticate connections. */
export interface WsAuth {
  authenticator: Authenticator;
  /** How often an open socket's credential is re-checked (default 1000 ms). */
  recheckMs?: number;
  /** How long /ws waits for the `auth` message of a client that sent no header (default 10 s). */
  authTimeoutMs?: number;
}

/** The handshake's outcome, handed from the upgrade router to the endpoint. */
export interface UpgradeAuth {
  auth: WsAuth;
  /** Set when the handshake carried a valid header; otherwise the endpoint authenticates in-band. */
  principal?: Principal;
}

const byRequest = new WeakMap<IncomingMessage, UpgradeAuth>();

/** The auth state of an upgraded request; undefined when the API runs without authentication. */
export function upgradeAuth(request: IncomingMessage): UpgradeAuth | undefined {
  return byRequest.get(request);
}

/** Why a handshake is refused, or undefined when it may proceed. */
export type HandshakeRefusal = { status: 401 | 403; code: string; message: string };

/**
 * Check the handshake's Authorization header (if any) and record the outcome for the endpoint.
 * Resolves to a refusal for a bad header or a missing scope.
 */
export async function authenticateHandshake(
  request: IncomingMessage,
  auth: WsAuth,
): Promise<HandshakeRefusal | undefined> {
  const credential = bearerCredential(request.headers.authorization);
  if (credential === undefined) {
    byRequest.set(request, { auth });
    return undefined;
  }
  const outcome = await auth.authenticator.authenticate(credential);
  const refusal = refusalOf(outcome);
  if (refusal) return refusal;
  byRequest.set(request, { auth, principal: (outcome as { principal: Principal }).principal });
  return undefined;
}

function refusalOf(outcome: AuthOutcome): HandshakeRefusal | undefined {
  if (!outcome.ok)
    return {
      status: 401,
      code: 'UNAUTHORIZED',
      message: 'the bearer token is not valid (unknown, revoked, expired or wrongly signed)',
    };
  if (!allowed(outcome.principal, 'read'))
    return { status: 403, code: 'FORBIDDEN', message: 'WebSocket endpoints need the "read" scope' };
  return undefined;
}

/**
 * Authenticate an in-band credential: resolves to the principal, or closes `socket` (4401/4403)
 * and resolves undefined.
 */
export async function authenticateInBand(
  socket: WebSocket,
  auth: WsAuth,
  credential: string | undefined,
): Promise<Principal | undefined> {
  const outcome = await auth.authenticator.authenticate(credential);
  const refusal = refusalOf(outcome);
  if (refusal) {
    closeThenTerminate(
      socket,
      refusal.status === 401 ? AuthCloseCode.Unauthorized : AuthCloseCode.Forbidden,
      refusal.status === 401 ? 'Unauthorized' : 'Forbidden: needs the read scope',
    );
    return undefined;
  }
  return (outcome as { principal: Principal }).principal;
}

/** The credential of a graphql-ws `connection_init` payload (`authorization` or `token`). */
export function credentialFromInitPayload(payload: Record<string, unknown> | undefined): string | undefined {
  if (!payload) return undefined;
  const header = payload.authorization ?? payload.Authorization;
  if (typeof header === 'string') return bearerCredential(header) ?? header;
  return typeof payload.token === 'string' ? payload.token : undefined;
}

/**
 * Re-check `principal` every `recheckMs` while `socket` is open; close it with 4401 once the
 * credential is revoked or expired. A failed check (store unreachable) keeps the socket open.
 */
export function guardSocket(socket: WebSocket, principal: Principal, auth: WsAuth, log: Logger): void {
  let checking = false;
  const timer = setInterval(() => {
    if (checking || socket.readyState !== socket.OPEN) return;
    checking = true;
    auth.authenticator
      .recheck(principal)
      .then(
        (valid) => {
          if (!valid) {
            log.info(
              { subject: principal.subject, kind: principal.kind },
              'closing a WebSocket: credential revoked or expired',
            );
            closeThenTerminate(
              socket,
              AuthCloseCode.Unauthorized,
              'Unauthorized: credential revoked or expired',
            );
          }
        },
        (error: unknown) => log.warn({ err: error }, 'WebSocket credential re-check failed; will retry'),
      )
      .finally(() => (checking = false));
  }, auth.recheckMs ?? 1000);
  timer.unref();
  socket.once('close', () => clearInterval(timer));
}

/**
 * /ws without a handshake credential: wait for the first message `{ "type": "auth", "token" }`
 * (or `"authorization": "Bearer ..."`), then call `open`. Messages arriving meanwhile are replayed
 * to the connection's own listener once it is open.
 */
export function awaitAuthMessage(
  socket: WebSocket,
  auth: WsAuth,
  log: Logger,
  open: (principal: Principal) => void,
): void {
  const held: [RawData, boolean][] = [];
  let state: 'waiting' | 'checking' | 'done' = 'waiting';
  const timer = setTimeout(() => {
    if (state !== 'done')
      closeThenTerminate(socket, AuthCloseCode.Unauthorized, 'Unauthorized: no auth message in time');
  }, auth.authTimeoutMs ?? 10_000);
  timer.unref();
  const finish = (): void => {
    state = 'done';
    clearTimeout(timer);
    socket.off('message', onMessage);
  };
  socket.once('close', finish);
  const onMessage = (data: RawData, isBinary: boolean): void => {
    if (state === 'checking') return void held.push([data, isBinary]);
    if (state !== 'waiting') return;
    state = 'checking';
    const credential = isBinary ? undefined : credentialFromAuthMessage(String(data));
    authenticateInBand(socket, auth, credential).then(
      (principal) => {
        finish();
        if (principal === undefined || socket.readyState !== socket.OPEN) return;
        open(principal);
        for (const [d, b] of held) socket.emit('message', d, b);
      },
      (error: unknown) => {
        finish();
        log.error({ err: error }, 'WebSocket authentication failed');
        closeThenTerminate(socket, 1011, 'internal server error');
      },
    );
  };
  socket.on('message', onMessage);
}

/** The credential of a /ws `auth` message, or undefined for any other message. */
export function credentialFromAuthMessage(text: string): string | undefined {
  if (text.length > 16_384) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof message !== 'object' || message === null) return undefined;
  const { type, ...rest } = message as Record<string, unknown>;
  return type === 'auth' ? credentialFromInitPayload(rest) : undefined;
}
