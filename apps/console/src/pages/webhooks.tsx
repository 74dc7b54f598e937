import { call } from '../api';
import { Problem, Section } from '../components';
import { ago } from '../format';
import { usePoll } from '../hooks';

/** One row of GET /v1/webhooks/failing-endpoints. Kept here (not in api.ts) so the generated client can replace it in one place. */
export interface FailingEndpoint {
  owner: string;
  url: string;
  failingDeliveries: number;
  pending: number;
  failed: number;
  lastAttemptAt: string;
  lastError: string | null;
  lastStatusCode: number | null;
}

const failingEndpoints = () =>
  call<{ items: FailingEndpoint[] }>('GET', '/v1/webhooks/failing-endpoints?limit=100').then((r) => r.items);

/** Callback urls whose latest attempts failed in the last 24 h: still retrying (pending) or given up (failed). */
export function WebhooksPage() {
  const endpoints = usePoll(failingEndpoints, 10_000);
  return (
    <Section title="Failing webhook endpoints (last 24 h)">
      <Problem error={endpoints.error} />
      <table data-testid="failing-endpoints-table">
        <thead>
          <tr>
            <th>owner</th>
            <th>url</th>
            <th>retrying</th>
            <th>failed</th>
            <th>last attempt</th>
            <th>last error</th>
          </tr>
        </thead>
        <tbody>
          {endpoints.data?.map((e) => (
            <tr key={`${e.owner} ${e.url}`} data-testid="failing-endpoint">
              <td>{e.owner}</td>
              <td class="mono wrap">{e.url}</td>
              <td>{e.pending}</td>
              <td>{e.failed}</td>
              <td title={e.lastAttemptAt}>{ago(e.lastAttemptAt)}</td>
              <td class="wrap">{e.lastError}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {endpoints.data && endpoints.data.length === 0 && <p class="empty">No failing endpoints.</p>}
    </Section>
  );
}
