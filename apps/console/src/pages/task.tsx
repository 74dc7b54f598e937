import { api } from '../api';
import { Problem, ProgressBar, Section, StatusBadge } from '../components';
import { time } from '../format';
import { usePoll } from '../hooks';
import { TaskActions } from './tasks';

export function TaskPage({ id }: { id: string }) {
  const task = usePoll(() => api.task(id), 1000, [id]);
  const events = usePoll(() => api.events(id), 2000, [id]);
  const t = task.data;
  return (
    <Section title={`Task ${id}`} actions={<a href="#/tasks">← all tasks</a>}>
      <Problem error={task.error} />
      {t && (
        <div class="card" data-testid="task-detail" data-status={t.status}>
          <dl>
            <dt>type</dt>
            <dd>{t.type}</dd>
            <dt>owner</dt>
            <dd>{t.owner}</dd>
            <dt>status</dt>
            <dd>
              <StatusBadge status={t.status} /> <TaskActions task={t} onDone={task.refresh} />
            </dd>
            {t.runAt && (
              <>
                <dt>run at</dt>
                <dd title={t.runAt}>{new Date(t.runAt).toLocaleString()}</dd>
              </>
            )}
            <dt>progress</dt>
            <dd>
              <ProgressBar percent={t.progress.percent} status={t.status} /> {t.progress.message}
            </dd>
            <dt>attempt</dt>
            <dd>
              {t.attempt} of {t.maxAttempts}
            </dd>
            <dt>payload</dt>
            <dd>
              <code>{JSON.stringify(t.payload)}</code>
            </dd>
            {t.result !== null && (
              <>
                <dt>result</dt>
                <dd>
                  <code>{JSON.stringify(t.result)}</code>
                </dd>
              </>
            )}
            {t.error && (
              <>
                <dt>error</dt>
                <dd class="error">
                  {t.error.code}: {t.error.message}
                </dd>
              </>
            )}
          </dl>
        </div>
      )}
      <h3>Timeline</h3>
      <Problem error={events.error} />
      <ol class="timeline" data-testid="timeline">
        {events.data?.items.map((e) => (
          <li key={e.id}>
            <span class="when">{time(e.at)}</span>
            <span>
              {e.from ?? '∅'} → <StatusBadge status={e.to} />
            </span>
            <span class="muted">
              attempt {e.attempt} · {e.actor}
            </span>
            {e.error && (
              <span class="error">
                {e.error.code}: {e.error.message}
              </span>
            )}
          </li>
        ))}
      </ol>
    </Section>
  );
}
