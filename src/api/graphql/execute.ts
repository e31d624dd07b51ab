/**
 * The one request pipeline of both transports (HTTP and graphql-ws): check the request shape, parse
 * with the token limit, check depth, aliases and cost (hierarchy lists costed with the fleet's real
 * size), check every string argument and variable (no control characters, valid UTF-8: BAD_REQUEST
 * naming it), validate (refusing introspection when it is off), pick the operation. Errors leave with
 * a stable `extensions.code`; anything that is not a deliberate error (a bug, a backend failure) is
 * logged and shown as "Internal server error".
 */
import {
  getOperationAST,
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  visit,
  type DocumentNode,
  type ExecutionResult,
  type FormattedExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValueNode,
} from './graphql.js';
import { NexusError } from '../../errors.js';
import type { Logger } from '../../util/logger.js';
import { badCharacters } from '../params.js';
import { analyzeDocument, limitError, type Cardinality, type QueryLimits } from './limits.js';

/** Settings of the pipeline. */
export interface PipelineSettings {
  limits: QueryLimits;
  /** Allow `__schema` and `__type` queries. (`__typename` is always allowed.) */
  introspection: boolean;
  /** Current size of the fleet for the cost of hierarchy lists (absent or undefined: assumed sizes). */
  cardinality?: () => Cardinality | undefined;
}

/** A checked operation, ready to execute or subscribe. */
export interface PreparedOperation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  operationName: string | undefined;
  variableValues: Record<string, unknown> | undefined;
  /** Estimated cost of the operation (limits.ts). */
  cost: number;
}

/** Result of {@link prepareOperation}. */
export type Prepared = { ok: true; prepared: PreparedOperation } | { ok: false; errors: GraphQLError[] };

/** Longest query text accepted before parsing (bytes of UTF-16 code units). */
export const MAX_QUERY_LENGTH = 100_000;
const MAX_VALIDATION_ERRORS = 20;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Check and prepare one `{ query, variables, operationName }` request. Never throws. */
export function prepareOperation(
  schema: GraphQLSchema,
  request: unknown,
  settings: PipelineSettings,
): Prepared {
  const fail = (code: string, message: string): Prepared => ({
    ok: false,
    errors: [limitError(code, message)],
  });
  if (!isPlainObject(request))
    return fail('BAD_REQUEST', 'request body must be a JSON object with a "query" string');
  const { query, variables, operationName } = request;
  if (typeof query !== 'string' || query.trim() === '')
    return fail('BAD_REQUEST', '"query" must be a non-empty string');
  if (query.length > MAX_QUERY_LENGTH)
    return fail('QUERY_TOO_LARGE', `query is longer than ${MAX_QUERY_LENGTH} characters`);
  if (variables != null && !isPlainObject(variables))
    return fail('BAD_REQUEST', '"variables" must be an object');
  if (operationName != null && typeof operationName !== 'string')
    return fail('BAD_REQUEST', '"operationName" must be a string');
  const variableValues = variables ?? undefined;

  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: settings.limits.maxTokens });
  } catch (error) {
    if (error instanceof GraphQLError) {
      const tooMany = /contains more th\w+ \d+ tokens/.test(error.message);
      return {
        ok: false,
        errors: [
          new GraphQLError(error.message, {
            nodes: error.nodes,
            source: error.source,
            positions: error.positions,
            extensions: { code: tooMany ? 'TOO_MANY_TOKENS' : 'GRAPHQL_PARSE_FAILED' },
          }),
        ],
      };
    }
    // The parser recursing too deep (a maxTokens set very high) must not crash the request.
    return fail('GRAPHQL_PARSE_FAILED', 'document is too deeply nested to parse');
  }

  const analysis = analyzeDocument(document, settings.limits, variableValues, settings.cardinality?.());
  if (analysis.errors.length > 0) return { ok: false, errors: analysis.errors };

  const badString = badArgument(document) ?? badVariable(variableValues);
  if (badString) return { ok: false, errors: [badString] };

  const rules = settings.introspection
    ? specifiedRules
    : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  const validationErrors = validate(schema, document, rules, { maxErrors: MAX_VALIDATION_ERRORS });
  if (validationErrors.length > 0) {
    return {
      ok: false,
      errors: validationErrors.map(
        (e) =>
          new GraphQLError(e.message, {
            nodes: e.nodes,
            source: e.source,
            positions: e.positions,
            extensions: {
              code: /introspection/i.test(e.message) ? 'INTROSPECTION_DISABLED' : 'GRAPHQL_VALIDATION_FAILED',
            },
          }),
      ),
    };
  }

  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation) {
    return fail(
      'BAD_REQUEST',
      operationName
        ? `unknown operation "${operationName}"`
        : 'the document has several operations: give operationName',
    );
  }
  return {
    ok: true,
    prepared: {
      document,
      operation,
      operationName: operationName ?? undefined,
      variableValues,
      cost: analysis.costs.get(operation.name?.value ?? '') ?? 0,
    },
  };
}

/** BAD_REQUEST naming an argument or variable whose string value has bad characters. */
function badStringError(noun: 'argument' | 'variable', name: string, problem: string): GraphQLError {
  const shown = name.length > 64 ? `${name.slice(0, 64)}...` : name;
  return new GraphQLError(`Invalid ${noun} '${shown}': a string in it ${problem}`, {
    extensions: { code: 'BAD_REQUEST', parameter: name },
  });
}

/** The first string literal of an argument (or variable default) with bad characters, as an error. */
function badArgument(document: DocumentNode): GraphQLError | undefined {
  let found: GraphQLError | undefined;
  const check = (name: string, value: ValueNode, noun: 'argument' | 'variable'): void => {
    const stack: ValueNode[] = [value];
    while (stack.length > 0 && !found) {
      const v = stack.pop()!;
      if (v.kind === Kind.STRING) {
        const problem = badCharacters(v.value);
        if (problem) found = badStringError(noun, name, problem);
      } else if (v.kind === Kind.LIST) stack.push(...v.values);
      else if (v.kind === Kind.OBJECT) stack.push(...v.fields.map((f) => f.value));
    }
  };
  visit(document, {
    Argument(node) {
      if (!found) check(node.name.value, node.value, 'argument');
    },
    VariableDefinition(node) {
      if (!found && node.defaultValue) check(node.variable.name.value, node.defaultValue, 'variable');
    },
  });
  return found;
}

/** The first variable holding a string (at any depth) with bad characters, as an error. */
function badVariable(variables: Record<string, unknown> | undefined): GraphQLError | undefined {
  if (!variables) return undefined;
  for (const [name, value] of Object.entries(variables)) {
    const nameProblem = badCharacters(name);
    if (nameProblem) return badStringError('variable', name, nameProblem);
    const stack: unknown[] = [value];
    while (stack.length > 0) {
      const v = stack.pop();
      if (typeof v === 'string') {
        const problem = badCharacters(v);
        if (problem) return badStringError('variable', name, problem);
      } else if (Array.isArray(v)) {
        for (const item of v as unknown[]) stack.push(item);
      } else if (isPlainObject(v)) {
        for (const [key, inner] of Object.entries(v)) {
          const keyProblem = badCharacters(key);
          if (keyProblem) return badStringError('variable', name, keyProblem);
          stack.push(inner);
        }
      }
    }
  }
  return undefined;
}

/**
 * Client-safe form of errors: deliberate errors (GraphQL errors, NexusErrors other than INTERNAL)
 * keep their message and get `extensions.code`; others are logged and masked.
 */
export function formatErrors(errors: readonly GraphQLError[], log?: Logger): GraphQLFormattedError[] {
  return errors.map((error) => {
    const original = error.originalError;
    if (original instanceof NexusError && original.code !== 'INTERNAL') {
      const parameter = original.details.parameter;
      return {
        ...error.toJSON(),
        extensions: { code: original.code, ...(typeof parameter === 'string' ? { parameter } : {}) },
      };
    }
    if (original && !(original instanceof GraphQLError)) {
      log?.error({ err: original, path: error.path }, 'GraphQL resolver failed');
      const masked = new GraphQLError('Internal server error', {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        extensions: { code: 'INTERNAL' },
      });
      return masked.toJSON();
    }
    const json = error.toJSON();
    return { ...json, extensions: { code: 'BAD_REQUEST', ...json.extensions } };
  });
}

/** A result with client-safe errors. */
export function formatResult(result: ExecutionResult, log?: Logger): FormattedExecutionResult {
  const out: { data?: ExecutionResult['data']; errors?: GraphQLFormattedError[] } = {};
  if (result.errors && result.errors.length > 0) out.errors = formatErrors(result.errors, log);
  if ('data' in result) out.data = result.data;
  return out;
}
