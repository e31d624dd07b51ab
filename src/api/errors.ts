/**
 * Error mapping at the HTTP edge: every failure leaves as `{ error: { code, message, parameter? } }`.
 * NexusErrors keep their code and status; fastify validation errors become BAD_REQUEST naming the
 * parameter; other client errors keep their status; anything else is a logged 500 with a generic
 * message. Stack traces and internal messages never reach clients.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NexusError } from '../errors.js';
import type { ErrorBody } from './schemas.js';

/** The one error body of the API (derived from its schema). */
export type { ErrorBody } from './schemas.js';

/** A 400 naming the offending parameter. */
export function badParameter(parameter: string, message: string): NexusError {
  return new NexusError('BAD_REQUEST', message, { details: { parameter } });
}

/** A 404 for an unknown cluster, host, GPU or route. */
export function notFound(message: string): NexusError {
  return new NexusError('NOT_FOUND', message);
}

type ValidationIssue = NonNullable<FastifyError['validation']>[number];

/** The parameter a validation issue is about: the property it names, else the first path segment. */
function issueParameter(issue: ValidationIssue): string | undefined {
  const { params } = issue;
  if (typeof params.missingProperty === 'string') return params.missingProperty;
  if (typeof params.additionalProperty === 'string') return params.additionalProperty;
  const first = issue.instancePath.split('/')[1];
  return first ? first.replace(/~1/g, '/').replace(/~0/g, '~') : undefined;
}

const CONTEXT_NOUN: Record<string, string> = {
  querystring: 'query parameter',
  params: 'path parameter',
  body: 'body field',
  headers: 'header',
};

/** Turn fastify's first validation issue into a BAD_REQUEST naming the parameter. */
function fromValidation(error: FastifyError): { body: ErrorBody; status: number } {
  const issue = error.validation?.[0];
  const noun = CONTEXT_NOUN[error.validationContext ?? ''] ?? 'parameter';
  const parameter = issue && issueParameter(issue);
  let message: string;
  if (!issue || !parameter) message = `Invalid request: ${error.message}`;
  else if (issue.keyword === 'additionalProperties') message = `Unknown ${noun} '${parameter}'`;
  else if (issue.keyword === 'required') message = `Missing ${noun} '${parameter}'`;
  else if (issue.keyword === 'format' && issue.params.format === 'date-time')
    message = `Invalid ${noun} '${parameter}': must be an RFC 3339 timestamp such as 2025-07-18T20:42:34Z`;
  else message = `Invalid ${noun} '${parameter}': ${issue.message ?? 'invalid value'}`;
  const body: ErrorBody = { error: { code: 'BAD_REQUEST', message } };
  if (parameter) body.error.parameter = parameter;
  return { status: 400, body };
}

/** Map any thrown value to a status and the API's error body. */
export function toErrorResponse(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof NexusError) {
    // INTERNAL means a bug: its message is for the log, not the client.
    const message = error.code === 'INTERNAL' ? 'Internal server error' : error.message;
    const body: ErrorBody = { error: { code: error.code, message } };
    const parameter = error.details.parameter;
    if (typeof parameter === 'string') body.error.parameter = parameter;
    return { status: error.status, body };
  }
  const fastifyError = error as Partial<FastifyError> | undefined;
  if (fastifyError?.validation) return fromValidation(fastifyError as FastifyError);
  const status = fastifyError?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Framework client errors (bad JSON, unsupported media type, ...): their messages are safe.
    const code = status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST';
    const message = String(fastifyError?.message ?? 'Bad request');
    return {
      status,
      body: { error: { code, message: message.length > 300 ? `${message.slice(0, 300)}...` : message } },
    };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'Internal server error' } } };
}

/** Reply with the API error body for `error`, logging server-side failures. */
export function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body } = toErrorResponse(error);
  if (status >= 500) request.log.error({ err: error }, 'request failed');
  else request.log.debug({ code: body.error.code, message: body.error.message }, 'request refused');
  // A limiter may have set its own, exact Retry-After (rate limits): keep it.
  if (error instanceof NexusError && error.retryable && !reply.hasHeader('retry-after'))
    void reply.header('retry-after', '1');
  return reply.status(status).send(body);
}

/** Install the error and not-found handlers on the root instance (children inherit them). */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) =>
    sendError(error, request, reply),
  );

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '';
    const shown = path.length > 200 ? `${path.slice(0, 200)}...` : path;
    const body: ErrorBody = {
      error: { code: 'NOT_FOUND', message: `Route ${request.method} ${shown} not found` },
    };
    return reply.status(404).send(body);
  });
}
