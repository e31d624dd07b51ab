/**
 * Admin REST routes of API tokens (scope `admin`, enforced by the auth hook): create (the token
 * text is in this one response only), list, revoke. A revocation here is refused at once by this
 * process and within a second by every other API process on the same database. This is how tokens
 * are managed while `start` holds the embedded data directory (the CLI cannot open it then).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Authenticator } from '../../auth/authenticator.js';
import { SCOPES, type Scope } from '../../auth/scopes.js';
import type { TokenStore } from '../../auth/token-store.js';
import { NexusError } from '../../errors.js';

/** Options of {@link tokenRoutes}. */
export interface TokenRoutesOptions {
  tokens: TokenStore;
  authenticator: Authenticator;
}

const tokenRecord = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string', enum: [...SCOPES] } },
    created_at: { type: 'string', format: 'date-time' },
    revoked_at: { type: 'string', format: 'date-time' },
  },
  required: ['id', 'name', 'scopes', 'created_at'],
} as const;

function view(record: { id: string; name: string; scopes: Scope[]; createdAt: string; revokedAt?: string }) {
  return {
    id: record.id,
    name: record.name,
    scopes: record.scopes,
    created_at: record.createdAt,
    ...(record.revokedAt === undefined ? {} : { revoked_at: record.revokedAt }),
  };
}

/** POST/GET /api/v1/tokens, DELETE /api/v1/tokens/:id. */
export const tokenRoutes: FastifyPluginAsync<TokenRoutesOptions> = async (app, { tokens, authenticator }) => {
  app.post<{ Body: { name: string; scopes: Scope[] } }>(
    '/api/v1/tokens',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Create an API token (its text is shown in this response only)',
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 64 },
            scopes: { type: 'array', items: { type: 'string', enum: [...SCOPES] }, minItems: 1 },
          },
          required: ['name', 'scopes'],
          additionalProperties: false,
        },
        response: {
          201: {
            type: 'object',
            properties: { token: { type: 'string' }, ...tokenRecord.properties },
            required: ['token', ...tokenRecord.required],
          },
        },
      },
    },
    async (request, reply) => {
      const { token, record } = await tokens.create(request.body.name, request.body.scopes);
      // Never cache a response carrying a secret.
      return reply
        .status(201)
        .header('cache-control', 'no-store')
        .send({ token, ...view(record) });
    },
  );

  app.get<{ Querystring: { include_revoked?: boolean } }>(
    '/api/v1/tokens',
    {
      schema: {
        tags: ['tokens'],
        summary: 'List API tokens (never their text)',
        querystring: {
          type: 'object',
          properties: { include_revoked: { type: 'boolean' } },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { data: { type: 'array', items: tokenRecord } },
            required: ['data'],
          },
        },
      },
    },
    async (request) => ({
      data: (await tokens.list({ includeRevoked: request.query.include_revoked === true })).map(view),
    }),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/tokens/:id',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Revoke an API token by id or name (refused at once, also on open WebSockets)',
        params: {
          type: 'object',
          properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
          required: ['id'],
        },
        response: { 200: tokenRecord },
      },
    },
    async (request) => {
      const record = await tokens.revoke(request.params.id);
      if (record === undefined)
        throw new NexusError('NOT_FOUND', `no valid token with id or name "${request.params.id}"`, {
          details: { parameter: 'id' },
        });
      authenticator.forget();
      return view(record);
    },
  );
};
