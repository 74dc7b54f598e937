import { useState } from 'preact/hooks';
import { api, type Schedule } from '../api';
import { Problem, Section, StatusBadge } from '../components';
import { ago, shortId } from '../format';
import { usePoll } from '../hooks';

/** Time until (or since) an instant, for a fire time. */
function when(iso: string | null): string {
  if (!iso) return '';
  const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  if (s < 0) return ago(iso);
  if (s < 60) return `in ${s} s`;
  if (s < 3600) return `in ${Math.floor(s / 60)} min`;
  if (s < 86400) return `in ${Math.floor(s / 3600)} h`;
  return new Date(iso).toLocaleString();
}

function PauseButton({ schedule, onDone }: { schedule: Schedule; onDone: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const toggle = async () => {
    setError(null);
    try {
      await api.setPaused(schedule.id, !schedule.paused);
    } catch (err) {
      setError((err as Error).message);
    }
    onDone();
  };
  return (
    <span class="row-actions">
      <button data-testid="toggle-pause" onClick={toggle}>
        {schedule.paused ? 'Resume' : 'Pause'}
      </button>
      {error && <span class="error">{error}</span>}
    </span>
  );
}

export function SchedulesPage() {
  const schedules = usePoll(() => api.schedules(), 2000);
  return (
    <Section title="Schedules">
      <Problem error={schedules.error} />
      <table data-testid="schedules-table">
        <thead>
          <tr>
            <th>name</th>
            <th>owner</th>
            <th>cron</th>
            <th>task</th>
            <th>next run</th>
            <th>last fire</th>
            <th>fired / skipped / missed</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {schedules.data?.items.map((s) => (
            <tr key={s.id} data-schedule-id={s.id} data-paused={String(s.paused)}>
              <td>
                <a href={`#/schedules/${s.id}`}>{s.name}</a>
              </td>
              <td>{s.owner}</td>
              <td class="mono" title={s.timezone}>
                {s.cron} <span class="hint">{s.timezone}</span>
              </td>
              <td>{s.task.type}</td>
              <td data-testid="next-run" title={s.nextRunAt ?? ''}>
                {s.paused ? <span class="badge s-cancelled">paused</span> : when(s.nextRunAt)}
              </td>
              <td data-testid="last-fire" title={s.lastFiredAt ?? ''}>
                {ago(s.lastFiredAt)}
              </td>
              <td>
                {s.firedCount} / {s.skippedCount} / {s.missedCount}
              </td>
              <td>
                <PauseButton schedule={s} onDone={schedules.refresh} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {schedules.data && schedules.data.items.length === 0 && <p class="empty">No schedules.</p>}
    </Section>
  );
}

/** One schedule and its runs, newest first. */
export function SchedulePage({ id }: { id: string }) {
  const schedule = usePoll(() => api.schedule(id), 2000, [id]);
  const runs = usePoll(() => api.tasks({ scheduleId: id, limit: 50 }), 2000, [id]);
  const s = schedule.data;
  return (
    <Section
      title={s ? `Schedule ${s.name}` : 'Schedule'}
      actions={s && <PauseButton schedule={s} onDone={schedule.refresh} />}
    >
      <Problem error={schedule.error ?? runs.error} />
      {s && (
        <div class="card" data-testid="schedule-detail">
          <dl>
            <dt>cron</dt>
            <dd class="mono">
              {s.cron} ({s.timezone})
            </dd>
            <dt>task</dt>
            <dd class="mono">
              {s.task.type} {JSON.stringify(s.task.payload)}
            </dd>
            <dt>overlap</dt>
            <dd>{s.overlap}</dd>
            <dt>next run</dt>
            <dd data-testid="schedule-next">{s.paused ? 'paused' : `${when(s.nextRunAt)} (${s.nextRunAt})`}</dd>
            <dt>last fire</dt>
            <dd>{s.lastFiredAt ? `${ago(s.lastFiredAt)} (${s.lastFiredAt})` : 'never'}</dd>
            <dt>fired / skipped / missed</dt>
            <dd>
              {s.firedCount} / {s.skippedCount} / {s.missedCount}
            </dd>
          </dl>
        </div>
      )}
      <h3>Runs</h3>
      <table data-testid="schedule-runs">
        <thead>
          <tr>
            <th>task</th>
            <th>fire time</th>
            <th>status</th>
            <th>attempt</th>
          </tr>
        </thead>
        <tbody>
          {runs.data?.items.map((t) => (
            <tr key={t.id} data-task-id={t.id} data-status={t.status}>
              <td>
                <a href={`#/tasks/${t.id}`} class="mono">
                  {shortId(t.id)}
                </a>
              </td>
              <td title={t.scheduledFor ?? ''}>{t.scheduledFor ? new Date(t.scheduledFor).toLocaleString() : ''}</td>
              <td>
                <StatusBadge status={t.status} />
              </td>
              <td>
                {t.attempt}/{t.maxAttempts}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {runs.data && runs.data.items.length === 0 && <p class="empty">No runs yet.</p>}
    </Section>
  );
}
