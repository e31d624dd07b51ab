/**
 * A small, self-contained GraphQL IDE served at GET /graphql (no CDN, no bundled assets): a query
 * editor, variables, Run (Ctrl+Enter) over POST, subscriptions over the graphql-transport-ws
 * protocol with the browser's WebSocket, and a schema browser from introspection. The script is a
 * separate file (graphql/ide.js) so the page can use a strict Content-Security-Policy.
 */

/** The guide's cluster query for `clusterId`, the IDE's starting document. */
export function guideQuery(clusterId: string): string {
  return `query {
  cluster(id: ${JSON.stringify(clusterId)}) {
    id
    name
    region
    totalHosts
    totalGPUs
    hosts {
      id
      hostname
      gpus {
        id
        deviceName
        status {
          utilizationPercent
          temperatureCelsius
          healthy
        }
      }
    }
  }
}`;
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Content-Security-Policy of the IDE page. */
export const IDE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The IDE page, starting with the guide's query for `clusterId`. */
export function ideHtml(clusterId: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nexus-telemetry GraphQL</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px system-ui, sans-serif; color: #1b1f24; background: #f6f8fa; }
  header { padding: 8px 12px; background: #0b3d2e; color: #fff; display: flex; gap: 12px; align-items: center; }
  header h1 { font-size: 16px; margin: 0; flex: 1; }
  header button { font: inherit; padding: 4px 12px; border: 0; border-radius: 4px; cursor: pointer; }
  #run { background: #2ea043; color: #fff; }
  #stop { background: #d1242f; color: #fff; }
  main { display: grid; grid-template-columns: 1fr 1fr 320px; gap: 8px; padding: 8px; height: calc(100vh - 44px); }
  section { display: flex; flex-direction: column; min-height: 0; }
  label { font-weight: 600; margin: 4px 0; }
  textarea, pre { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; border: 1px solid #d0d7de; border-radius: 4px; padding: 8px; background: #fff; margin: 0; }
  #query { flex: 3; resize: none; }
  #variables { flex: 1; resize: none; margin-top: 4px; }
  #result { flex: 1; overflow: auto; white-space: pre-wrap; }
  #docs { flex: 1; overflow: auto; background: #fff; border: 1px solid #d0d7de; border-radius: 4px; padding: 8px; }
  #docs h3 { margin: 8px 0 2px; font-size: 13px; }
  #docs p { margin: 0 0 4px; color: #57606a; }
  #status { font-size: 12px; }
</style>
</head>
<body>
<header>
  <h1>nexus-telemetry GraphQL</h1>
  <span id="status" role="status"></span>
  <button id="run" type="button" title="Ctrl+Enter">Run</button>
  <button id="stop" type="button" hidden>Stop</button>
  <button id="schema" type="button">Schema</button>
</header>
<main>
  <section>
    <label for="query">Query</label>
    <textarea id="query" spellcheck="false">${escapeHtml(guideQuery(clusterId))}</textarea>
    <label for="variables">Variables (JSON)</label>
    <textarea id="variables" spellcheck="false">{}</textarea>
  </section>
  <section>
    <label for="result">Result</label>
    <pre id="result" aria-live="polite"></pre>
  </section>
  <section>
    <label>Schema</label>
    <div id="docs"><p>Press Schema to list the types (needs introspection).</p></div>
  </section>
</main>
<script src="graphql/ide.js"></script>
</body>
</html>
`;
}

/** The IDE's script. */
export const IDE_SCRIPT = `'use strict';
(function () {
  var endpoint = location.pathname.replace(/\\/+$/, '') || '/graphql';
  var $ = function (id) { return document.getElementById(id); };
  var socket = null;

  function show(value) { $('result').textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2); }
  function status(text) { $('status').textContent = text; }
  function variables() {
    var text = $('variables').value.trim();
    if (!text) return {};
    try { return JSON.parse(text); } catch (e) { throw new Error('Variables are not JSON: ' + e.message); }
  }
  function isSubscription(query) { return /^\\s*subscription\\b/m.test(query.replace(/#.*$/gm, '')); }

  function post(body) {
    var started = performance.now();
    return fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().then(function (json) {
        status('HTTP ' + res.status + ' in ' + Math.round(performance.now() - started) + ' ms');
        return json;
      });
    });
  }

  function stop() {
    if (socket) { socket.close(1000, 'stopped'); socket = null; }
    $('stop').hidden = true;
  }

  function subscribe(query, vars) {
    stop();
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + endpoint;
    var events = [];
    socket = new WebSocket(url, 'graphql-transport-ws');
    $('stop').hidden = false;
    status('connecting ...');
    socket.onopen = function () { socket.send(JSON.stringify({ type: 'connection_init' })); };
    socket.onmessage = function (m) {
      var msg = JSON.parse(m.data);
      if (msg.type === 'connection_ack') {
        status('subscribed');
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: query, variables: vars } }));
      } else if (msg.type === 'next') {
        events.unshift(msg.payload);
        if (events.length > 50) events.length = 50;
        status(events.length + ' events (newest first)');
        show(events);
      } else if (msg.type === 'error') {
        show({ errors: msg.payload });
      } else if (msg.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }));
      } else if (msg.type === 'complete') {
        status('completed');
      }
    };
    socket.onclose = function (e) { status('closed (' + e.code + (e.reason ? ' ' + e.reason : '') + ')'); $('stop').hidden = true; };
  }

  function run() {
    var query = $('query').value;
    var vars;
    try { vars = variables(); } catch (e) { show(e.message); return; }
    if (isSubscription(query)) { subscribe(query, vars); return; }
    stop();
    status('running ...');
    post({ query: query, variables: vars }).then(show, function (e) { status('failed'); show(String(e)); });
  }

  function schema() {
    var q = '{ __schema { types { name kind description fields { name description } } } }';
    post({ query: q }).then(function (json) {
      var docs = $('docs');
      docs.textContent = '';
      if (!json.data) { docs.textContent = JSON.stringify(json.errors || json, null, 2); return; }
      json.data.__schema.types
        .filter(function (t) { return t.name.indexOf('__') !== 0; })
        .forEach(function (t) {
          var h = document.createElement('h3');
          h.textContent = t.name + ' (' + t.kind.toLowerCase() + ')';
          docs.appendChild(h);
          var p = document.createElement('p');
          p.textContent = t.description || '';
          docs.appendChild(p);
          (t.fields || []).forEach(function (f) {
            var fp = document.createElement('p');
            fp.textContent = '  ' + f.name + ': ' + (f.description || '');
            docs.appendChild(fp);
          });
        });
    }, function (e) { $('docs').textContent = String(e); });
  }

  $('run').addEventListener('click', run);
  $('stop').addEventListener('click', stop);
  $('schema').addEventListener('click', schema);
  $('query').addEventListener('keydown', function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); run(); }
  });
})();
`;
