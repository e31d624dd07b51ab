/** @jsxImportSource react */
/**
 * GraphiQL at /graphql, bundled (no CDN). The server injects the page's settings as a JSON script
 * tag (`#graphiql-config`, see src/api/graphql/ide.ts): the guide's query and subscription for the
 * server's cluster (the first two tabs of a new session), and whether the API wants a bearer token.
 * Queries go over POST /graphql; subscriptions over graphql-ws at ws(s)://same-host/graphql, where
 * the headers editor's contents (e.g. `Authorization: Bearer ...`) become the connection_init
 * payload, which is how the server takes a credential in-band (docs/security.md).
 */
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

/** What the server puts in `#graphiql-config`. */
interface PageConfig {
  /** The guide's cluster query for the server's cluster: the starting document. */
  query: string;
  /** The guide's subscription for the same cluster: the second tab. */
  subscription: string;
  /** The API checks bearer tokens: start with an Authorization header to fill in. */
  auth: boolean;
}

function readConfig(): PageConfig {
  const text = document.getElementById('graphiql-config')?.textContent;
  const fallback: PageConfig = { query: '{ clusters { id name totalGPUs } }', subscription: '', auth: false };
  if (!text) return fallback;
  try {
    return { ...fallback, ...(JSON.parse(text) as Partial<PageConfig>) };
  } catch {
    return fallback;
  }
}

const config = readConfig();
const endpoint = `${location.origin}/graphql`;
const fetcher = createGraphiQLFetcher({
  url: endpoint,
  subscriptionUrl: `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/graphql`,
  // The server answers plain JSON; no multipart (defer/stream) responses.
  enableIncrementalDelivery: false,
});
const headers = config.auth ? JSON.stringify({ Authorization: 'Bearer <token>' }, null, 2) : '';
const tabs = [{ query: config.query, headers }];
if (config.subscription) tabs.push({ query: config.subscription, headers });

const root = document.getElementById('graphiql');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <GraphiQL
        fetcher={fetcher}
        defaultQuery={config.query}
        defaultTabs={tabs}
        defaultHeaders={headers}
        defaultEditorToolsVisibility={config.auth ? 'headers' : false}
      />
    </StrictMode>,
  );
}
