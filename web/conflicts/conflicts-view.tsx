import { useEffect, useState } from 'preact/hooks';
import { useLiveReload } from '../lib/events.ts';
import { formatDate } from '../lib/format.ts';
import { apiJson, jsonBody } from '../lib/session.ts';
import { ErrorBox, Spinner, messageOf, toast } from '../lib/ui.tsx';

interface Conflict {
  id: string;
  entity: string;
  entity_id: string;
  fields: string[];
  local: { data: Record<string, unknown> | null; device_id: string | null };
  remote: { data: Record<string, unknown> | null; deleted: boolean };
  status: 'open' | 'resolved';
  resolution: string | null;
  created_at: string;
}

const show = (v: unknown) => (v === null || v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v));

/** Open sync conflicts, local and remote side by side: keep mine, keep theirs, or edit and resolve. */
export function ConflictsView() {
  const [items, setItems] = useState<Conflict[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () => apiJson<{ items: Conflict[] }>('/api/v1/sync/conflicts?status=open&limit=100').then((r) => setItems(r.items), setError);
  useEffect(() => void load(), []);
  // New conflicts come from devices' pushes: reload when the events stream says something changed.
  useLiveReload(() => void load());
  return (
    <section class="view" aria-labelledby="conflicts-title">
      <h1 id="conflicts-title">Conflicts</h1>
      <p class="muted">Two devices changed the same field while apart. Nothing was overwritten: choose what stays.</p>
      <ErrorBox error={error} />
      {items === null && !error && <Spinner />}
      {items?.length === 0 && <p>No open conflicts.</p>}
      {items?.map((c) => <ConflictCard key={c.id} conflict={c} onResolved={load} />)}
    </section>
  );
}

function ConflictCard({ conflict: c, onResolved }: { conflict: Conflict; onResolved: () => void }) {
  const [editing, setEditing] = useState(false);
  const [custom, setCustom] = useState<Record<string, string>>(() => Object.fromEntries(c.fields.map((f) => [f, show(c.local.data?.[f])])));
  const resolve = async (strategy: 'local' | 'remote' | 'custom') => {
    try {
      const data = strategy === 'custom' ? { ...(c.local.data ?? {}), ...custom } : undefined;
      await apiJson(`/api/v1/sync/conflicts/${encodeURIComponent(c.id)}/resolve`, jsonBody('POST', data ? { strategy, data } : { strategy }));
      toast('Conflict resolved');
      onResolved();
    } catch (err) {
      toast(messageOf(err), 'error');
    }
  };
  const title = show(c.local.data?.title ?? c.remote.data?.title ?? c.entity_id);
  return (
    <article class="card conflict" data-conflict-id={c.id} aria-label={`Conflict on ${c.entity} ${title}`}>
      <h2>
        {c.entity} “{title}” <span class="muted">· {c.fields.join(', ')} · {formatDate(c.created_at)}</span>
      </h2>
      <div class="split">
        <Side title={`Mine (local${c.local.device_id ? `, device ${c.local.device_id.slice(0, 8)}` : ''})`} side="local" fields={c.fields} data={c.local.data} />
        <Side title={`Theirs (remote${c.remote.deleted ? ', deleted' : ''})`} side="remote" fields={c.fields} data={c.remote.data} />
      </div>
      {editing && (
        <div>
          {c.fields.map((f) => (
            <label key={f}>
              {f}
              <input value={custom[f]} onInput={(e) => setCustom({ ...custom, [f]: e.currentTarget.value })} />
            </label>
          ))}
        </div>
      )}
      <div class="actions">
        <button type="button" onClick={() => resolve('local')}>
          Keep mine
        </button>
        <button type="button" onClick={() => resolve('remote')}>
          Keep theirs
        </button>
        {editing ? (
          <button type="button" class="primary" onClick={() => resolve('custom')}>
            Save and resolve
          </button>
        ) : (
          <button type="button" onClick={() => setEditing(true)}>
            Edit and resolve
          </button>
        )}
      </div>
    </article>
  );
}

function Side({ title, side, fields, data }: { title: string; side: 'local' | 'remote'; fields: string[]; data: Record<string, unknown> | null }) {
  return (
    <div>
      <h3>{title}</h3>
      <dl>
        {fields.map((f) => (
          <div key={f}>
            <dt>{f}</dt>
            <dd data-side={side} data-field={f}>
              {show(data?.[f])}
            </dd>
          </div>
        ))}
      </dl>
    </div>
  );
}
