/**
 * The graphql-js functions and classes the API uses, from the package's CommonJS entry. graphql-ws
 * imports `graphql` from plain Node, which loads that entry; tools that prefer the `module` field
 * (test runners, bundlers) would otherwise give our code the ESM copy (index.mjs), and graphql-js
 * refuses schemas and errors from "another realm". One entry, one copy, everywhere.
 */
export {
  buildSchema,
  createSourceEventStream,
  execute,
  getOperationAST,
  GraphQLError,
  GraphQLObjectType,
  GraphQLScalarType,
  Kind,
  NoSchemaIntrospectionCustomRule,
  parse,
  print,
  specifiedRules,
  subscribe,
  validate,
  visit,
} from 'graphql/index.js';
export type {
  DocumentNode,
  ExecutionArgs,
  ExecutionResult,
  FieldNode,
  FormattedExecutionResult,
  FragmentDefinitionNode,
  GraphQLFormattedError,
  GraphQLSchema,
  OperationDefinitionNode,
  SelectionSetNode,
  ValueNode,
} from 'graphql/index.js';
