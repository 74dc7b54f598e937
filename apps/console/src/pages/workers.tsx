import { api } from '../api';
import { Problem, Section } from '../components';
import { ago } from '../format';
import { usePoll } from '../hooks';

export function WorkersPage() {
  const fleet = usePoll(() => api.workers(), 2000);
  const f = fleet.data;
  return (
    <Section title="Workers">
      <Problem error={fleet.error} />
      {f && (
        <div class={`fleet ${f.alive < f.expected ? 'warn' : 'good'}`} data-testid="fleet-summary">
          <span class="big">{f.alive}</span> alive of <span class="big">{f.expected}</span> expected
          {f.alive < f.expected && <strong data-testid="fleet-warning"> — below the expected count</strong>}
        </div>
      )}
      <table data-testid="workers-table">
        <thead>
          <tr>
            <th>worker</th>
            <th>host</th>
            <th class="num">pid</th>
            <th class="num">in flight</th>
            <th class="num">concurrency</th>
            <th>started</th>
            <th>last heartbeat</th>
            <th>state</th>
          </tr>
        </thead>
        <tbody>
          {f?.workers.map((w) => (
            <tr key={w.id} class={w.alive ? '' : 'dim'}>
              <td class="mono">{w.id}</td>
              <td>{w.host}</td>
              <td class="num">{w.pid}</td>
              <td class="num">{w.inFlight}</td>
              <td class="num">{w.concurrency}</td>
              <td title={w.startedAt}>{ago(w.startedAt)}</td>
              <td title={w.lastSeenAt}>{ago(w.lastSeenAt)}</td>
              <td>
                {w.alive ? (
                  <span class="badge s-succeeded">alive</span>
                ) : (
                  <span class="badge s-cancelled">{w.stoppedAt ? 'stopped' : 'silent'}</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}
