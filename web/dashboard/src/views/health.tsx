// GPU health and alerts. `#/health?state=warning,critical` lists the fleet's GPUs by health state
// with their reasons (REST, reloaded when a GPU's stored health changes on the stream, never on a
// timer); `#/alerts` lists the alerts the server's evaluator holds, live from the /ws alert stream.
import { useEffect, useReducer } from 'preact/hooks';
import { listGpuHealth, type Alert, type Health } from '../api';
import { useFleetTick, useLoad } from '../hooks';
import { href, setQuery } from '../router';
import { alertStore, fleet } from '../store';
import { ListTable } from './list-table';

const STATES = ['critical', 'warning', 'ok'] as const;

/** The reasons of a health state, one per line. */
export function Reasons({ health }: { health: Health }) {
  if (health.reasons.length === 0) return <span class="muted">no reason</span>;
  return (
    <ul class="reasons">
      {health.reasons.map((r) => (
        <li key={r.code + r.message} class={`sev-${r.severity}`} data-code={r.code}>
          <strong>{r.code}</strong> {r.message} <span class="muted">since {r.since}</span>
        </li>
      ))}
    </ul>
  );
}

/** `#/health`: GPUs by health state, most severe first. */
export function HealthView({ query }: { query: URLSearchParams }) {
  const asked = (query.get('state') ?? 'critical,warning').split(',');
  const states = STATES.filter((s) => asked.includes(s));
  useFleetTick(2000);
  // A GPU_HEALTH event (or a changed state in any GPU event) bumps healthVersion: reload then.
  const version = fleet.healthVersion;
  const [gpus, reload] = useLoad((signal) => listGpuHealth(states, signal), [states.join(','), version]);
  const toggle = (state: string) => {
    const next = states.includes(state as (typeof STATES)[number])
      ? states.filter((s) => s !== state)
      : [...states, state];
    setQuery({ state: next.join(',') });
  };
  return (
    <section>
      <h1>GPU health</h1>
      <div class="toolbar">
        <fieldset class="states">
          <legend>Show</legend>
          {STATES.map((s) => (
            <label key={s}>
              <input type="checkbox" checked={states.includes(s)} onChange={() => toggle(s)} /> {s}
            </label>
          ))}
        </fieldset>
        <button type="button" onClick={reload}>
          Refresh
        </button>
        {gpus.status === 'ok' ? (
          <span class="muted" id="health-count">
            {gpus.value.length} GPUs
          </span>
        ) : null}
      </div>
      <p class="muted">
        From the stored DCGM fields (XID, ECC, row remapping, throttling, PCIe and NVLink errors, temperature)
        and sample age: a GPU with no sample for 5 minutes is STALE. See docs/alerting.md.
      </p>
      {gpus.status === 'error' ? <p class="error">{gpus.message}</p> : null}
      {gpus.status === 'ok' && gpus.value.length === 0 ? (
        <p id="health-empty">No GPU in {states.join(' or ') || 'any chosen'} state.</p>
      ) : null}
      {gpus.status === 'ok' && gpus.value.length > 0 ? (
        <ListTable id="health" headings={['state', 'GPU', 'model', 'since', 'reasons']}>
          {gpus.value.map((g) => (
            <tr
              key={`${g.cluster_id}/${g.hostname}/${g.gpu_id}`}
              data-state={g.health.state}
              data-host={g.hostname}
              data-gpu={g.gpu_id}
            >
              <td class={`state state-${g.health.state}`}>{g.health.state}</td>
              <td>
                <a href={href('clusters', g.cluster_id, 'hosts', g.hostname, 'gpus', g.gpu_id)}>
                  {g.hostname} GPU {g.gpu_id}
                </a>
              </td>
              <td>{g.model_name}</td>
              <td>{g.health.since}</td>
              <td>
                <Reasons health={g.health} />
              </td>
            </tr>
          ))}
        </ListTable>
      ) : null}
    </section>
  );
}

/** Re-render on every change of the alert list. */
export function useAlerts(): typeof alertStore {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => alertStore.onChange(() => bump(0)), []);
  return alertStore;
}

/** Link to the GPU an alert names (its Hostname and gpu labels), when it names one. */
function alertTarget(a: Alert): string | undefined {
  const host = a.labels.Hostname ?? a.labels.hostname;
  const gpu = a.labels.gpu;
  if (!host) return undefined;
  return gpu === undefined
    ? href('clusters', a.clusterId, 'hosts', host)
    : href('clusters', a.clusterId, 'hosts', host, 'gpus', gpu);
}

/** `#/alerts`: pending and firing alerts, live. */
export function AlertsView() {
  const store = useAlerts();
  const alerts = [...store.alerts.values()].sort(
    (a, b) =>
      (a.state === b.state ? 0 : a.state === 'FIRING' ? -1 : 1) ||
      a.activeAt.localeCompare(b.activeAt) ||
      a.id.localeCompare(b.id),
  );
  return (
    <section>
      <h1>Alerts</h1>
      <p class="muted">
        Pending and firing alerts of the server's rules (built-in GPU health rules and ALERT_RULES_FILES),
        live; resolved ones leave the list. Rules: <a href="/api/v1/rules">/api/v1/rules</a>.
      </p>
      {store.unavailable ? <p class="error">Alerts unavailable: {store.unavailable}</p> : null}
      {!store.loaded && !store.unavailable ? <p class="muted">Loading…</p> : null}
      {store.loaded && alerts.length === 0 ? <p id="alerts-empty">No pending or firing alert.</p> : null}
      {alerts.length > 0 ? (
        <ListTable
          id="alerts"
          headings={['state', 'alert', 'target', 'severity', 'value', 'active since', 'summary']}
        >
          {alerts.map((a) => {
            const target = alertTarget(a);
            return (
              <tr key={a.id} data-alert={a.name} data-state={a.state}>
                <td class={`state state-${a.state.toLowerCase()}`}>{a.state.toLowerCase()}</td>
                <td>{a.name}</td>
                <td>
                  {target ? (
                    <a href={target}>
                      {a.labels.Hostname ?? a.labels.hostname}
                      {a.labels.gpu !== undefined ? ` GPU ${a.labels.gpu}` : ''}
                    </a>
                  ) : (
                    a.clusterId
                  )}
                </td>
                <td>{a.labels.severity ?? ''}</td>
                <td>{a.value}</td>
                <td>{a.activeAt}</td>
                <td>{a.annotations.summary ?? a.annotations.description ?? ''}</td>
              </tr>
            );
          })}
        </ListTable>
      ) : null}
    </section>
  );
}
