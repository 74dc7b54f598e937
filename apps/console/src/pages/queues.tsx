import { useEffect, useState } from 'preact/hooks';
import { Problem, Section, Sparkline } from '../components';
import { time } from '../format';
import { queueHistory, SAMPLE_MS, subscribe, WINDOW_MS } from '../queue-history';

/** `1234` -> `1.2 s`, `95000` -> `1.6 min`. */
function age(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function QueuesPage() {
  const [, redraw] = useState(0);
  useEffect(() => subscribe(() => redraw((n) => n + 1)), []);
  const { latest, samples, error } = queueHistory();
  return (
    <Section
      title="Queues"
      actions={
        latest && (
          <span class="muted">
            figures from {latest.source === 'management' ? 'the management API' : 'AMQP (no unacked counts)'} ·{' '}
            {time(latest.at)}
          </span>
        )
      }
    >
      <Problem error={error} />
      <table data-testid="queues-table">
        <thead>
          <tr>
            <th>queue</th>
            <th>role</th>
            <th class="num">messages</th>
            <th class="num">ready</th>
            <th class="num">unacked</th>
            <th class="num">consumers</th>
            <th class="num">oldest</th>
            <th>
              last {WINDOW_MS / 60_000} minutes (every {SAMPLE_MS / 1000} s)
            </th>
          </tr>
        </thead>
        <tbody>
          {latest?.items.map((q) => (
            <tr
              key={q.name}
              data-queue={q.name}
              class={q.role === 'work' && q.messages > 0 && q.consumers === 0 ? 'alarm' : ''}
            >
              <td class="mono">{q.name}</td>
              <td>
                {q.role}
                {q.role === 'work' && !q.exists && (
                  <span class="muted" title="No worker has served this type yet: its messages wait in unrouted">
                    {' '}
                    · no worker yet
                  </span>
                )}
              </td>
              <td class="num" data-testid="queue-messages">
                {q.messages}
              </td>
              <td class="num">{q.ready}</td>
              <td class="num">{q.unacked ?? '–'}</td>
              <td class="num">{q.consumers}</td>
              <td class="num" data-testid="queue-oldest">
                {q.oldestMessageAgeMs === null ? '–' : age(q.oldestMessageAgeMs)}
              </td>
              <td>
                <Sparkline values={samples.map((s) => s.messages[q.name] ?? 0)} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}
