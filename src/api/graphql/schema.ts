/**
 * Builds the executable schema: the SDL of sdl.ts, the DateTime scalar and the resolvers. Built
 * once per process (the schema is immutable and shared by every app instance).
 */
import type { GraphQLSchema } from 'graphql';
import { buildSchema, GraphQLObjectType, GraphQLScalarType } from './graphql.js';
import { resolvers, type ResolverMap } from './resolvers.js';
import { DateTimeScalar } from './scalars.js';
import { SDL } from './sdl.js';

function attach(schema: GraphQLSchema, map: ResolverMap): void {
  for (const [typeName, fields] of Object.entries(map)) {
    const type = schema.getType(typeName);
    if (!(type instanceof GraphQLObjectType)) throw new Error(`resolvers for unknown type ${typeName}`);
    const defs = type.getFields();
    for (const [fieldName, resolver] of Object.entries(fields)) {
      const field = defs[fieldName];
      if (!field) throw new Error(`resolver for unknown field ${typeName}.${fieldName}`);
      if (typeof resolver === 'function') field.resolve = resolver;
      else {
        field.subscribe = resolver.subscribe;
        field.resolve = resolver.resolve;
      }
    }
  }
}

let built: GraphQLSchema | undefined;

/** The API's GraphQL schema (built on first use). */
export function telemetrySchema(): GraphQLSchema {
  if (built) return built;
  const schema = buildSchema(SDL);
  const dateTime = schema.getType('DateTime');
  if (!(dateTime instanceof GraphQLScalarType)) throw new Error('schema lacks the DateTime scalar');
  dateTime.serialize = DateTimeScalar.serialize;
  dateTime.parseValue = DateTimeScalar.parseValue;
  dateTime.parseLiteral = DateTimeScalar.parseLiteral;
  attach(schema, resolvers);
  built = schema;
  return schema;
}
