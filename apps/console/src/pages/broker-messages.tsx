import { useState } from 'preact/hooks';
import { api, type BrokerMessage, type BrokerMessageList } from '../api';
import { Problem, Section } from '../components';
import { shortId } from '../format';
import { usePoll } from '../hooks';

interface Props {
  title: string;
  kind: 'dead' | 'unrouted';
  load: () => Promise<BrokerMessageList>;
  redrive: (taskIds?: string[]) => Promise<Record<string, unknown>>;
  purge?: () => Promise<Record<string, unknown>>;
  explain: string;
}

function summary(r: Record<string, unknown>): string {
  return Object.entries(r)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

/** Unrouted messages per task type: each is a type no worker serves yet (redriven once one binds). */
function ByType({ items }: { items: BrokerMessage[] }) {
  const counts = new Map<string, number>();
  for (const m of items) {
    const type = m.type ?? (m.routingKey || '∅');
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return (
    <table data-testid="unrouted-by-type">
      <thead>
        <tr>
          <th>task type no worker serves</th>
          <th class="num">messages</th>
        </tr>
      </thead>
      <tbody>
        {[...counts.entries()]
          .sort((a, b) => b[1] - a[1])
          .map(([type, n]) => (
            <tr key={type} data-type={type}>
              <td class="mono">{type}</td>
              <td class="num">{n}</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}

function MessageTable({ title, kind, load, redrive, purge, explain }: Props) {
  const list = usePoll(load, 3000);
  const [outcome, setOutcome] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async (fn: () => Promise<Record<string, unknown>>) => {
    setError(null);
    try {
      setOutcome(summary(await fn()));
    } catch (err) {
      setError((err as Error).message);
    }
    list.refresh();
  };
  const items = list.data?.items ?? [];
  return (
    <Section
      title={title}
      actions={
        <>
          <button data-testid="redrive-all" disabled={!items.length} onClick={() => run(() => redrive())}>
            Redrive all
          </button>
          {purge && (
            <button
              data-testid="purge-malformed"
              class="danger"
              disabled={!items.some((m) => m.malformed)}
              onClick={() => run(purge)}
            >
              Remove malformed
            </button>
          )}
        </>
      }
    >
      <p class="muted">{explain}</p>
      <Problem error={list.error ?? error} />
      {outcome && (
        <p class="ok" data-testid="redrive-outcome">
          Done: {outcome}
        </p>
      )}
      {kind === 'unrouted' && items.length > 0 && <ByType items={items} />}
      <p class="muted">
        {list.data ? `${list.data.total} message(s) in ${list.data.queue}` : 'loading…'}
        {list.data && list.data.total > items.length ? `, first ${items.length} shown` : ''}
      </p>
      <table data-testid={`${kind}-table`}>
        <thead>
          <tr>
            <th>task</th>
            <th>type / routing key</th>
            <th>{kind === 'dead' ? 'reason' : 'message id'}</th>
            <th>body</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {items.map((m: BrokerMessage, i) => (
            <tr key={`${m.messageId}-${i}`} data-task-id={m.taskId ?? ''} class={m.malformed ? 'malformed' : ''}>
              <td>
                {m.taskId ? (
                  <>
                    <a href={`#/tasks/${m.taskId}`} class="mono">
                      {shortId(m.taskId)}
                    </a>
                    {m.taskIds.length > 1 && (
                      <span class="muted" title={m.taskIds.join('\n')}>
                        {' '}
                        and {m.taskIds.length - 1} more (bundle)
                      </span>
                    )}
                  </>
                ) : (
                  <em>none</em>
                )}
              </td>
              <td>
                {m.type ?? '?'} <span class="muted">/ {m.routingKey || '∅'}</span>
              </td>
              <td>
                {kind === 'dead' ? (
                  <>
                    <strong>{m.reasonCode ?? '?'}</strong> <span class="muted">{m.reason}</span>
                  </>
                ) : (
                  <span class="mono">{m.messageId}</span>
                )}
              </td>
              <td>
                <code class="body">{m.body.length > 120 ? `${m.body.slice(0, 120)}…` : m.body}</code>
                {m.malformed && <span class="badge s-failed">malformed</span>}
              </td>
              <td>
                {m.taskIds.length > 0 && (
                  <button data-testid="redrive-one" onClick={() => run(() => redrive(m.taskIds))}>
                    Redrive
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data && items.length === 0 && <p class="empty">Empty.</p>}
    </Section>
  );
}

export function DeadLettersPage() {
  return (
    <MessageTable
      title="Dead letters"
      kind="dead"
      load={() => api.deadLetters()}
      redrive={(taskIds) => api.redriveDeadLetters({ taskIds }) as unknown as Promise<Record<string, unknown>>}
      purge={() => api.redriveDeadLetters({ purgeMalformed: true }) as unknown as Promise<Record<string, unknown>>}
      explain="Redrive returns a failed or cancelled task to queued (fresh attempts) and removes its dead letter; dead letters of tasks still queued, retrying or running are re-enqueued before they are removed; those of succeeded tasks are removed as stale; malformed ones stay until removed."
    />
  );
}

export function UnroutedPage() {
  return (
    <MessageTable
      title="Unrouted messages"
      kind="unrouted"
      load={() => api.unrouted()}
      redrive={(taskIds) => api.redriveUnrouted({ taskIds }) as unknown as Promise<Record<string, unknown>>}
      explain="Messages of task types no worker serves yet, caught by the alternate exchange; their tasks stay queued. A worker that starts serving the type redrives them to its queue within seconds. Redrive here republishes each under its routing key (confirmed), then removes it; one still unserved comes back."
    />
  );
}
