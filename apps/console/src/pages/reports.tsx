import { api } from '../api';
import { Problem, Section } from '../components';
import { ago, shortId } from '../format';
import { usePoll } from '../hooks';

export function ReportsPage() {
  const reports = usePoll(() => api.reports(), 10_000);
  return (
    <Section title="Problem reports">
      <Problem error={reports.error} />
      <table data-testid="reports-table">
        <thead>
          <tr>
            <th>when</th>
            <th>owner</th>
            <th>task</th>
            <th>message</th>
          </tr>
        </thead>
        <tbody>
          {reports.data?.items.map((r) => (
            <tr key={r.id}>
              <td title={r.createdAt}>{ago(r.createdAt)}</td>
              <td>{r.owner}</td>
              <td>
                <a href={`#/tasks/${r.taskId}`} class="mono">
                  {shortId(r.taskId)}
                </a>
              </td>
              <td class="wrap">{r.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {reports.data && reports.data.items.length === 0 && <p class="empty">No reports.</p>}
    </Section>
  );
}
