import { useEffect, useState } from 'preact/hooks';
import { ApiCallError, api, call, storedKey, storeKey, whenUnauthorized } from './api';
import { useHashRoute } from './hooks';
import { DeadLettersPage, UnroutedPage } from './pages/broker-messages';
import { QueuesPage } from './pages/queues';
import { ReportsPage } from './pages/reports';
import { SchedulePage, SchedulesPage } from './pages/schedules';
import { TaskPage } from './pages/task';
import { TasksPage } from './pages/tasks';
import { WebhooksPage } from './pages/webhooks';
import { WorkersPage } from './pages/workers';
import { startSampling, stopSampling } from './queue-history';

const NAV: [string, string][] = [
  ['/tasks', 'Tasks'],
  ['/schedules', 'Schedules'],
  ['/queues', 'Queues'],
  ['/dead-letters', 'Dead letters'],
  ['/unrouted', 'Unrouted'],
  ['/workers', 'Workers'],
  ['/reports', 'Reports'],
  ['/webhooks', 'Webhooks'],
];

function Login({ onKey }: { onKey: (key: string) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // Any admin route tells whether the key is an admin key.
      await call('GET', '/v1/admin/workers', undefined, key.trim());
      onKey(key.trim());
    } catch (err) {
      setError(
        err instanceof ApiCallError && err.status === 403 ? 'That key is not an admin key.' : (err as Error).message,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>tasksys console</h1>
      <form onSubmit={submit}>
        <label>
          Admin API key
          <input
            data-testid="admin-key"
            type="password"
            autocomplete="off"
            value={key}
            onInput={(e) => setKey((e.target as HTMLInputElement).value)}
            required
          />
        </label>
        <button data-testid="login" type="submit" disabled={busy || !key.trim()}>
          Sign in
        </button>
        {error && (
          <p class="error" data-testid="login-error">
            {error}
          </p>
        )}
        <p class="hint">The key stays in this browser (localStorage) and is sent with every API call.</p>
      </form>
    </main>
  );
}

function WorkerWarning() {
  const [fleet, setFleet] = useState<{ expected: number; alive: number } | null>(null);
  useEffect(() => {
    const load = () => api.workers().then(setFleet, () => undefined);
    load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, []);
  if (!fleet || fleet.alive >= fleet.expected) return null;
  return (
    <div class="banner warn" data-testid="workers-banner">
      Workers alive: {fleet.alive} of {fleet.expected} expected. <a href="#/workers">See workers</a>
    </div>
  );
}

export function App() {
  const [key, setKey] = useState<string | null>(storedKey());
  const route = useHashRoute();
  useEffect(() => whenUnauthorized(() => setKey(null)), []);
  useEffect(() => {
    if (key) startSampling();
    else stopSampling();
  }, [key]);
  if (!key) {
    return (
      <Login
        onKey={(k) => {
          storeKey(k);
          setKey(k);
        }}
      />
    );
  }
  const [, section, id] = route.split('/');
  let page;
  if (section === 'tasks' && id) page = <TaskPage id={id} />;
  else if (section === 'schedules' && id) page = <SchedulePage id={id} />;
  else if (section === 'schedules') page = <SchedulesPage />;
  else if (section === 'queues') page = <QueuesPage />;
  else if (section === 'dead-letters') page = <DeadLettersPage />;
  else if (section === 'unrouted') page = <UnroutedPage />;
  else if (section === 'workers') page = <WorkersPage />;
  else if (section === 'reports') page = <ReportsPage />;
  else if (section === 'webhooks') page = <WebhooksPage />;
  else page = <TasksPage />;
  return (
    <div class="shell">
      <header>
        <strong>tasksys</strong>
        <nav>
          {NAV.map(([href, label]) => (
            <a
              key={href}
              href={`#${href}`}
              class={`/${section}` === href ? 'active' : ''}
              data-testid={`nav-${href.slice(1)}`}
            >
              {label}
            </a>
          ))}
        </nav>
        <button
          class="link"
          data-testid="logout"
          onClick={() => {
            storeKey(null);
            setKey(null);
          }}
        >
          Sign out
        </button>
      </header>
      <WorkerWarning />
      <main>{page}</main>
    </div>
  );
}
