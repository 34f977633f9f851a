import { useEffect, useState } from 'preact/hooks';
import { listAlerts, type Alert } from '../lib/alerts.ts';
import { formatBytes, formatDate } from '../lib/format.ts';
import { href } from '../lib/router.ts';
import { DataTable } from '../lib/table.tsx';
import { apiJson, jsonBody } from '../lib/session.ts';
import { Confirm, ErrorBox, Modal, Spinner, messageOf, toast } from '../lib/ui.tsx';

const TABS = [
  ['users', 'Users and keys'],
  ['tasks', 'Background tasks'],
  ['index', 'Index reconciliation'],
  ['alerts', 'Alerts'],
] as const;

/** Administration (admins only: the menu hides it from members and every API it calls answers them 403). */
export function AdminView({ rest }: { rest: string[] }) {
  const tab = rest[0] ?? 'users';
  return (
    <section class="view" aria-labelledby="admin-title">
      <h1 id="admin-title">Administration</h1>
      <nav class="tabs" aria-label="Administration">
        {TABS.map(([id, label]) => (
          <a key={id} href={href('admin', [id])} aria-current={tab === id ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {tab === 'users' && <UsersTab />}
      {tab === 'tasks' && <TasksTab />}
      {tab === 'index' && <IndexTab />}
      {tab === 'alerts' && <AlertsTab />}
    </section>
  );
}

interface User {
  id: string;
  username: string;
  is_admin: boolean;
  quota_bytes: number | null;
  created_at: string;
}
interface ApiKey {
  id: string;
  name: string;
  key_prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

function UsersTab() {
  const [users, setUsers] = useState<User[] | null>(null);
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [form, setForm] = useState({ username: '', password: '', is_admin: false, quota: '' });
  const [newKey, setNewKey] = useState<string | null>(null);
  const [keyName, setKeyName] = useState('');
  const load = () => {
    apiJson<{ users: User[] }>('/api/v1/users').then((r) => setUsers(r.users), setError);
    apiJson<{ keys: ApiKey[] }>('/api/v1/apikeys').then((r) => setKeys(r.keys), setError);
  };
  useEffect(load, []);
  return (
    <>
      <ErrorBox error={error} />
      <h2>Users</h2>
      {users === null ? (
        <Spinner />
      ) : (
        <DataTable
          caption="Users"
          rows={users}
          rowKey={(u) => u.id}
          columns={[
            { label: 'Username', cell: (u) => u.username },
            { label: 'Role', cell: (u) => (u.is_admin ? 'admin' : 'member') },
            { label: 'Quota', cell: (u) => (u.quota_bytes === null ? 'unlimited' : formatBytes(u.quota_bytes)) },
            { label: 'Created', cell: (u) => formatDate(u.created_at) },
          ]}
        />
      )}
      <form
        class="row-form"
        aria-label="Create a user"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await apiJson('/api/v1/users', jsonBody('POST', { username: form.username, password: form.password, is_admin: form.is_admin, quota_bytes: form.quota ? Number(form.quota) * 1024 * 1024 : null }));
            toast(`Created ${form.username}`);
            setForm({ username: '', password: '', is_admin: false, quota: '' });
            load();
          } catch (err) {
            toast(messageOf(err), 'error');
          }
        }}
      >
        <label>
          Username
          <input required value={form.username} onInput={(e) => setForm({ ...form, username: e.currentTarget.value })} />
        </label>
        <label>
          Password
          <input type="password" autocomplete="new-password" required value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} />
        </label>
        <label>
          Quota (MB, empty = none)
          <input type="number" min={0} value={form.quota} onInput={(e) => setForm({ ...form, quota: e.currentTarget.value })} />
        </label>
        <label class="inline">
          <input type="checkbox" checked={form.is_admin} onChange={(e) => setForm({ ...form, is_admin: e.currentTarget.checked })} />
          Administrator
        </label>
        <button type="submit" class="primary">
          Create user
        </button>
      </form>
      <h2>Your API keys</h2>
      <DataTable
        caption="Your API keys"
        rows={keys}
        rowKey={(k) => k.id}
        columns={[
          { label: 'Name', cell: (k) => k.name },
          { label: 'Prefix', cell: (k) => <code>{k.key_prefix}…</code> },
          { label: 'Created', cell: (k) => formatDate(k.created_at) },
          { label: 'Last used', cell: (k) => formatDate(k.last_used_at) },
          {
            label: 'Actions',
            hideLabel: true,
            cell: (k) =>
              k.revoked_at ? (
                'revoked'
              ) : (
                <button type="button" class="danger" aria-label={`Revoke key ${k.name}`} onClick={() => apiJson(`/api/v1/apikeys/${encodeURIComponent(k.id)}`, { method: 'DELETE' }).then(load, (err) => toast(messageOf(err), 'error'))}>
                  Revoke
                </button>
              ),
          },
        ]}
      />
      <form
        class="row-form"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            const created = await apiJson<{ key: string }>('/api/v1/apikeys', jsonBody('POST', { name: keyName || 'web' }));
            setNewKey(created.key);
            setKeyName('');
            load();
          } catch (err) {
            toast(messageOf(err), 'error');
          }
        }}
      >
        <label>
          Key name
          <input value={keyName} onInput={(e) => setKeyName(e.currentTarget.value)} />
        </label>
        <button type="submit">Create API key</button>
      </form>
      {newKey && (
        <Modal title="New API key" onClose={() => setNewKey(null)}>
          <p>This key is shown once. Keep it safe.</p>
          <input readOnly value={newKey} aria-label="New API key" onFocus={(e) => e.currentTarget.select()} />
        </Modal>
      )}
    </>
  );
}

interface TaskJson {
  id: string;
  task_name: string;
  queue: string;
  status: string;
  attempts: number;
  max_attempts: number;
  enqueued_at: string;
  finished_at: string | null;
  dead_lettered: boolean;
  errors: Array<{ attempt: number; error_class: string; message: string; at: string }>;
  return_value: unknown;
  args: unknown;
}

function TasksTab() {
  const [filter, setFilter] = useState({ status: '', dead: '' });
  const [tasks, setTasks] = useState<TaskJson[] | null>(null);
  const [detail, setDetail] = useState<TaskJson | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () => {
    const q = new URLSearchParams({ limit: '200' });
    if (filter.status) q.set('status', filter.status);
    if (filter.dead) q.set('dead', filter.dead);
    apiJson<{ tasks: TaskJson[] }>(`/api/v1/admin/tasks?${q}`).then((r) => setTasks(r.tasks), setError);
  };
  useEffect(load, [filter.status, filter.dead]);
  const act = (t: TaskJson, what: 'retry' | 'cancel') =>
    apiJson(`/api/v1/admin/tasks/${encodeURIComponent(t.id)}/${what}`, { method: 'POST' }).then(
      () => (toast(what === 'retry' ? 'Requeued' : 'Cancelled'), load()),
      (err) => toast(messageOf(err), 'error'),
    );
  return (
    <>
      <div class="row-form">
        <label>
          Status
          <select value={filter.status} onChange={(e) => setFilter({ ...filter, status: e.currentTarget.value })}>
            <option value="">any</option>
            {['READY', 'RUNNING', 'SUCCESSFUL', 'FAILED'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Dead letter
          <select value={filter.dead} onChange={(e) => setFilter({ ...filter, dead: e.currentTarget.value })}>
            <option value="">all</option>
            <option value="true">only dead-lettered</option>
            <option value="false">not dead-lettered</option>
          </select>
        </label>
      </div>
      <ErrorBox error={error} />
      {tasks === null ? (
        <Spinner />
      ) : (
        <DataTable
          caption="Background tasks"
          rows={tasks}
          rowKey={(t) => t.id}
          columns={[
            {
              label: 'Task',
              cell: (t) => (
                <button type="button" class="link" onClick={() => setDetail(t)}>
                  {t.task_name}
                </button>
              ),
            },
            { label: 'Queue', cell: (t) => t.queue },
            {
              label: 'Status',
              cell: (t) => (
                <>
                  <span class={`badge badge-${t.status}`}>{t.status}</span>
                  {t.dead_lettered ? ' (dead letter)' : ''}
                </>
              ),
            },
            { label: 'Attempts', cell: (t) => `${t.attempts}/${t.max_attempts}` },
            { label: 'Enqueued', cell: (t) => formatDate(t.enqueued_at) },
            {
              label: 'Actions',
              hideLabel: true,
              cell: (t) => (
                <>
                  {t.status === 'FAILED' && (
                    <button type="button" onClick={() => act(t, 'retry')} aria-label={`Retry ${t.task_name} ${t.id}`}>
                      Retry
                    </button>
                  )}
                  {(t.status === 'READY' || t.status === 'RUNNING') && (
                    <button type="button" onClick={() => act(t, 'cancel')} aria-label={`Cancel ${t.task_name} ${t.id}`}>
                      Cancel
                    </button>
                  )}
                </>
              ),
            },
          ]}
        />
      )}
      {detail && (
        <Modal title={detail.task_name} onClose={() => setDetail(null)} wide>
          <p class="muted">
            {detail.id} · {detail.status} · finished {formatDate(detail.finished_at)}
          </p>
          <h3>Arguments</h3>
          <pre class="diff">{JSON.stringify(detail.args, null, 2)}</pre>
          <h3>{detail.status === 'FAILED' ? 'Errors' : 'Result'}</h3>
          {detail.errors.length > 0 && (
            <ul class="plain">
              {detail.errors.map((e) => (
                <li key={e.attempt}>
                  attempt {e.attempt} ({formatDate(e.at)}): {e.error_class}: {e.message}
                </li>
              ))}
            </ul>
          )}
          <pre class="diff">{JSON.stringify(detail.return_value, null, 2)}</pre>
        </Modal>
      )}
    </>
  );
}

interface RebuildAnswer {
  task_id: string;
  status: string;
  result: Record<string, unknown> | null;
  error?: string;
}

function IndexTab() {
  const [userId, setUserId] = useState('');
  const [answer, setAnswer] = useState<RebuildAnswer | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirm, setConfirm] = useState<'clean' | 'full' | null>(null);
  const [error, setError] = useState<unknown>(null);
  const run = async (mode: string, opts: { dry_run?: boolean; force?: boolean } = {}) => {
    setBusy(true);
    setError(null);
    try {
      const body: Record<string, unknown> = { mode, ...opts };
      if (userId) body.user_id = userId;
      setAnswer(await apiJson<RebuildAnswer>('/api/v1/index/rebuild/', jsonBody('POST', body)));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const result = answer?.result;
  return (
    <>
      <p class="muted">The disk is the truth: an audit compares the file index with it; sync adds missing and updates stale rows; clean deletes orphaned rows (never those a share link points to).</p>
      <div class="row-form">
        <label>
          User id (empty = everyone)
          <input value={userId} onInput={(e) => setUserId(e.currentTarget.value)} />
        </label>
        <button type="button" class="primary" disabled={busy} onClick={() => run('audit')}>
          Run audit
        </button>
        <button type="button" disabled={busy} onClick={() => run('full', { dry_run: true, force: true })}>
          Dry run (full)
        </button>
        <button type="button" disabled={busy} onClick={() => run('sync')}>
          Sync
        </button>
        <button type="button" class="danger" disabled={busy} onClick={() => setConfirm('clean')}>
          Clean…
        </button>
        <button type="button" class="danger" disabled={busy} onClick={() => setConfirm('full')}>
          Full…
        </button>
      </div>
      <ErrorBox error={error} />
      {busy && <Spinner label="Reconciling…" />}
      {answer && (
        <div class="card" data-testid="index-result">
          <p>
            Task {answer.task_id}: <span class={`badge badge-${answer.status}`}>{answer.status}</span>
            {answer.error ? ` ${answer.error}` : ''}
            {answer.status !== 'SUCCESSFUL' && !answer.error ? ' (still running: see Background tasks)' : ''}
          </p>
          {result && (
            <table class="data">
              <tbody>
                {Object.entries(result)
                  .filter(([, v]) => typeof v !== 'object' || v === null)
                  .map(([k, v]) => (
                    <tr key={k}>
                      <th scope="row">{k.replace(/_/g, ' ')}</th>
                      <td>{String(v)}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          )}
        </div>
      )}
      {confirm && (
        <Confirm
          title={confirm === 'clean' ? 'Clean the index' : 'Full reconciliation'}
          danger
          confirmLabel={`Run ${confirm} (force)`}
          message={`This deletes index rows whose files are not on disk${confirm === 'full' ? ', after adding the missing ones' : ''}. It refuses when the storage volume looks unmounted. Run a dry run first if unsure.`}
          onClose={() => setConfirm(null)}
          onConfirm={() => run(confirm, { force: true })}
        />
      )}
    </>
  );
}

function AlertsTab() {
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () => listAlerts().then(setAlerts, setError);
  useEffect(() => void load(), []);
  return (
    <>
      <ErrorBox error={error} />
      {alerts === null ? (
        <Spinner />
      ) : alerts.length === 0 ? (
        <p>No alerts.</p>
      ) : (
        <DataTable
          caption="Alerts"
          rows={alerts}
          rowKey={(a) => a.id}
          columns={[
            { label: 'Severity', cell: (a) => <span class={`badge badge-${a.severity}`}>{a.severity}</span> },
            {
              label: 'Alert',
              cell: (a) => (
                <>
                  <strong>{a.kind}</strong> {a.subject}: {a.message}
                </>
              ),
            },
            { label: 'Status', cell: (a) => a.status },
            { label: 'Seen', cell: (a) => `${formatDate(a.last_seen_at)} (${a.occurrences}×)` },
            {
              label: 'Actions',
              hideLabel: true,
              cell: (a) =>
                a.status === 'open' && (
                  <button type="button" aria-label={`Acknowledge ${a.kind} ${a.subject}`} onClick={() => apiJson(`/api/v1/alerts/${encodeURIComponent(a.id)}/acknowledge`, { method: 'POST' }).then(load, (err) => toast(messageOf(err), 'error'))}>
                    Acknowledge
                  </button>
                ),
            },
          ]}
        />
      )}
    </>
  );
}
