// The page frame: navigation, the live connection state, the token field, and the routed view.
import { useEffect, useState } from 'preact/hooks';
import { listTargets } from './api';
import { live, type LiveState } from './live';
import { href, useRoute } from './router';
import { getToken, setToken } from './token';
import { DeadLettersView, TargetsView } from './views/lists';
import { GpuView } from './views/gpu';
import { GridView } from './views/grid';
import { AnalyticsView } from './views/analytics';
import { AlertsView, HealthView, useAlerts } from './views/health';
import { OverviewView } from './views/overview';

const STATE_TEXT: Record<LiveState, string> = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  offline: 'offline',
};

function LiveBadge() {
  const [state, setState] = useState<{ state: LiveState; detail: string }>({ state: live.state, detail: '' });
  useEffect(() => live.onState((s, detail) => setState({ state: s, detail })), []);
  return (
    <span
      id="live-state"
      class={`live live-${state.state}`}
      data-state={state.state}
      role="status"
      title={state.detail}
    >
      <span class="dot" aria-hidden="true" />
      {STATE_TEXT[state.state]}
      {state.detail ? <span class="live-detail">: {state.detail}</span> : null}
    </span>
  );
}

function TokenField() {
  const [value, setValue] = useState(getToken);
  return (
    <details class="token">
      <summary>Token</summary>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setToken(value.trim());
          live.start();
          dispatchEvent(new HashChangeEvent('hashchange'));
        }}
      >
        <label>
          API token (only when the server has AUTH on; kept in this browser)
          <input
            type="password"
            value={value}
            autocomplete="off"
            onInput={(e) => setValue(e.currentTarget.value)}
          />
        </label>
        <button type="submit">Save</button>
      </form>
    </details>
  );
}

/** The dashboard. */
export function App() {
  const route = useRoute();
  const [hasTargets, setHasTargets] = useState(false);
  useEffect(() => {
    listTargets().then(
      (t) => setHasTargets(t !== undefined),
      () => setHasTargets(false),
    );
  }, []);
  const [first] = route.parts;
  const firing = useAlerts().firing;
  // Views by first path segment.
  const nav: [string, string, boolean][] = [
    ['Fleet', href(), first === undefined],
    ['Health', href('health'), first === 'health'],
    [firing > 0 ? `Alerts (${firing} firing)` : 'Alerts', href('alerts'), first === 'alerts'],
    ['Analytics', href('analytics'), first === 'analytics'],
    ['Dead letters', href('dead-letters'), first === 'dead-letters'],
  ];
  if (hasTargets) nav.push(['Targets', href('targets'), first === 'targets']);
  return (
    <>
      <header class="top">
        <a class="brand" href={href()}>
          nexus-telemetry
        </a>
        <nav aria-label="Views">
          {nav.map(([label, to, current]) => (
            <a key={to} href={to} aria-current={current ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <LiveBadge />
        <TokenField />
      </header>
      <main id="view">
        <View parts={route.parts} query={route.query} />
      </main>
    </>
  );
}

function View({ parts, query }: { parts: string[]; query: URLSearchParams }) {
  const [a, b, c, d, e, f] = parts;
  if (a === undefined) return <OverviewView />;
  if (a === 'dead-letters') return <DeadLettersView />;
  if (a === 'health') return <HealthView query={query} />;
  if (a === 'alerts') return <AlertsView />;
  if (a === 'analytics') return <AnalyticsView query={query} />;
  if (a === 'targets') return <TargetsView />;
  if (a === 'clusters' && b !== undefined) {
    if (c === undefined) return <GridView clusterId={b} query={query} />;
    if (c === 'hosts' && d !== undefined && e === undefined)
      return <GridView clusterId={b} hostId={d} query={query} />;
    if (c === 'hosts' && d !== undefined && e === 'gpus' && f !== undefined)
      return <GpuView clusterId={b} hostId={d} gpuId={f} query={query} />;
  }
  return (
    <section>
      <h1>Not found</h1>
      <p>
        No view at this address. <a href={href()}>Back to the fleet</a>.
      </p>
    </section>
  );
}
