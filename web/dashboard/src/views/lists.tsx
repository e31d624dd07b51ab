// Dead letters (refused input rows) and scrape targets (only while the server scrapes).
import { listDeadLetters, listTargets } from '../api';
import { useLoad } from '../hooks';
import { ListTable } from './list-table';

/** `#/dead-letters`: the newest refused rows. */
export function DeadLettersView() {
  const [rows, reload] = useLoad((signal) => listDeadLetters(200, signal), []);
  return (
    <section>
      <h1>Dead letters</h1>
      <p class="muted">
        Input rows the pipeline refused, newest first (at most 200).{' '}
        <button type="button" onClick={reload}>
          Refresh
        </button>
      </p>
      {rows.status === 'error' ? <p class="error">{rows.message}</p> : null}
      {rows.status === 'ok' && rows.value.length === 0 ? (
        <p id="dead-letters-empty">No dead letters.</p>
      ) : null}
      {rows.status === 'ok' && rows.value.length > 0 ? (
        <ListTable id="dead-letters" headings={['source', 'line', 'reason', 'detail', 'raw']}>
          {rows.value.map((r, i) => (
            <tr key={i}>
              <td>{r.source}</td>
              <td>{r.line}</td>
              <td>{r.reason}</td>
              <td>{r.detail ?? ''}</td>
              <td>
                <code>{r.raw}</code>
              </td>
            </tr>
          ))}
        </ListTable>
      ) : null}
    </section>
  );
}

/** `#/targets`: each scrape target's health. */
export function TargetsView() {
  const [targets, reload] = useLoad((signal) => listTargets(signal), []);
  return (
    <section>
      <h1>Scrape targets</h1>
      <p>
        <button type="button" onClick={reload}>
          Refresh
        </button>
      </p>
      {targets.status === 'error' ? <p class="error">{targets.message}</p> : null}
      {targets.status === 'ok' && targets.value === undefined ? (
        <p>This server does not scrape (start it with --scrape to see targets here).</p>
      ) : null}
      {targets.status === 'ok' && targets.value ? (
        <ListTable
          id="targets"
          headings={['target', 'health', 'last scrape', 'duration', 'samples', 'error']}
        >
          {targets.value.map((t) => (
            <tr key={t.scrapeUrl} data-health={t.health}>
              <td>{t.scrapeUrl}</td>
              <td class={`health-${t.health}`}>{t.health}</td>
              <td>{t.lastScrape}</td>
              <td>{(t.lastScrapeDuration * 1000).toFixed(0)} ms</td>
              <td>{t.samples ?? ''}</td>
              <td>{t.lastError}</td>
            </tr>
          ))}
        </ListTable>
      ) : null}
    </section>
  );
}
