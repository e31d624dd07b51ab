/**
 * Log paths that may hold a credential (request headers, as fastify's serializers or an error's
 * context could log them), censored by the API's logger.
 */

/**
 * pino redact paths of the Authorization header and cookies in logged requests, plus the root
 * logger's own (src/util/logger.ts): a child's redact option replaces its parent's.
 */
export const CREDENTIAL_LOG_PATHS = [
  'password',
  '*.password',
  'DB_PASSWORD',
  '*.DB_PASSWORD',
  'connectionString',
  '*.connectionString',
  'req.headers.authorization',
  'req.headers.cookie',
  'request.headers.authorization',
  'request.headers.cookie',
  'headers.authorization',
  'headers.cookie',
];
