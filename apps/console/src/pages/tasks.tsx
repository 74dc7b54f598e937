import { useState } from 'preact/hooks';
import { api, STATUSES, type Task, TERMINAL } from '../api';
import { Problem, ProgressBar, Section, StatusBadge } from '../components';
import { ago, shortId } from '../format';
import { usePoll } from '../hooks';

export function TaskActions({ task, onDone }: { task: Task; onDone: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const act = (fn: (id: string) => Promise<unknown>) => async () => {
    setError(null);
    try {
      await fn(task.id);
    } catch (err) {
      setError((err as Error).message);
    }
    onDone();
  };
  return (
    <span class="row-actions">
      {!TERMINAL.includes(task.status) && (
        <button data-testid="cancel" class="danger" onClick={act(api.cancel)}>
          Cancel
        </button>
      )}
      {(task.status === 'failed' || task.status === 'cancelled') && (
        <button data-testid="retry" onClick={act(api.retry)}>
          Retry
        </button>
      )}
      {error && <span class="error">{error}</span>}
    </span>
  );
}

export function TasksPage() {
  const [status, setStatus] = useState('');
  const [type, setType] = useState('');
  const [owner, setOwner] = useState('');
  // Live progress: one list read per second (a page of at most 50 rows).
  const tasks = usePoll(() => api.tasks({ status, type, owner, limit: 50 }), 1000, [status, type, owner]);
  return (
    <Section
      title="Tasks"
      actions={
        <form class="filters" onSubmit={(e) => e.preventDefault()}>
          <select
            data-testid="filter-status"
            value={status}
            onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}
          >
            <option value="">any status</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          <input
            data-testid="filter-type"
            placeholder="type, e.g. demo.sleep"
            value={type}
            onChange={(e) => setType((e.target as HTMLInputElement).value.trim())}
          />
          <input
            data-testid="filter-owner"
            placeholder="owner"
            value={owner}
            onChange={(e) => setOwner((e.target as HTMLInputElement).value.trim())}
          />
        </form>
      }
    >
      <Problem error={tasks.error} />
      <table data-testid="tasks-table">
        <thead>
          <tr>
            <th>id</th>
            <th>type</th>
            <th>owner</th>
            <th>status</th>
            <th class="w-progress">progress</th>
            <th>attempt</th>
            <th>created</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {tasks.data?.items.map((t) => (
            <tr key={t.id} data-task-id={t.id} data-status={t.status}>
              <td>
                <a href={`#/tasks/${t.id}`} class="mono">
                  {shortId(t.id)}
                </a>
              </td>
              <td>{t.type}</td>
              <td>{t.owner}</td>
              <td>
                <StatusBadge status={t.status} />
              </td>
              <td>
                <ProgressBar percent={t.progress.percent} status={t.status} label={t.progress.message} />
              </td>
              <td>
                {t.attempt}/{t.maxAttempts}
              </td>
              <td title={t.createdAt}>{ago(t.createdAt)}</td>
              <td>
                <TaskActions task={t} onDone={tasks.refresh} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {tasks.data && tasks.data.items.length === 0 && <p class="empty">No tasks match.</p>}
    </Section>
  );
}
