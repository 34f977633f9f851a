import { useEffect, useRef, useState } from 'preact/hooks';
import { live, useLiveReload } from '../lib/events.ts';
import { formatDate } from '../lib/format.ts';
import { href } from '../lib/router.ts';
import { me } from '../lib/session.ts';
import { DataTable } from '../lib/table.tsx';
import { ErrorBox, Modal, Spinner, messageOf, toast } from '../lib/ui.tsx';
import { addComment, createTask, listTasks, PRIORITIES, STATUS_LABELS, STATUSES, taskComments, taskHistory, updateTask, type Comment, type HistoryEntry, type Status, type Task } from './tasks-api.ts';

/**
 * The synced to-dos of records sync: a board by status (drag a card, or pick from its menu, to change it;
 * the server refuses forbidden transitions and its reason is shown), a filtered list, and a task's
 * details with threaded comments and history.
 */
export function TasksView({ rest = [] }: { rest?: string[] }) {
  // In the URL (#/tasks, #/tasks/list), so a reload or a bookmark keeps the layout.
  const mode: 'board' | 'list' = rest[0] === 'list' ? 'list' : 'board';
  const [tasks, setTasks] = useState<Task[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [filters, setFilters] = useState({ status: '', tag: '', order: '-updated_at', mine: false, project: '', since: '', deleted: false });
  // What is typed in the text filters, applied when the field is left (Enter or Tab): kept in state, so a
  // re-render meanwhile (a live update) does not wipe the typing.
  const [draft, setDraft] = useState({ tag: '', project: '' });
  const [open, setOpen] = useState<Task | null>(null);
  const [title, setTitle] = useState('');
  const [over, setOver] = useState<Status | null>(null);

  // Every load and every local change takes a number; an answer that an older load brings back after a newer
  // change (a live reload racing a drag) is dropped instead of putting the old state back on screen.
  const seq = useRef(0);
  const change = (update: (list: Task[] | null) => Task[] | null) => {
    seq.current++;
    setTasks(update);
  };
  const load = () => {
    const q = new URLSearchParams();
    if (mode === 'list') {
      if (filters.status) q.set('status', filters.status);
      if (filters.tag) q.set('tag', filters.tag);
      if (filters.mine && me.value) q.set('assignee_id', me.value.id);
      if (filters.project) q.set('project_id', filters.project);
      if (filters.since) q.set('updated_since', new Date(filters.since).toISOString());
      if (filters.deleted) q.set('include_deleted', 'true');
      q.set('order', filters.order);
    }
    const mine = ++seq.current;
    listTasks(q).then(
      (t) => mine === seq.current && (setTasks(t), setError(null)),
      (err) => mine === seq.current && setError(err),
    );
  };
  useEffect(load, [mode, filters.status, filters.tag, filters.order, filters.mine, filters.project, filters.since, filters.deleted]);
  // Live: another device or client changed something in the organization.
  useLiveReload(load);

  const moveTo = async (task: Task, status: Status) => {
    if (task.status === status) return;
    try {
      const updated = await updateTask(task, { status });
      change((list) => list && list.map((t) => (t.id === task.id ? updated : t)));
      toast(`“${task.title}” → ${STATUS_LABELS[status]}`);
    } catch (err) {
      toast(messageOf(err), 'error');
      load();
    }
  };

  return (
    <section class="view" aria-labelledby="tasks-title">
      <h1 id="tasks-title">Tasks</h1>
      <p class="muted live-state" data-testid="live" data-live={String(live.value)}>
        {live.value ? 'Live: changes from other devices appear here.' : 'Connecting to live updates…'}
      </p>
      <nav class="tabs" aria-label="Layout">
        <a href={href('tasks')} aria-current={mode === 'board' ? 'page' : undefined}>
          Board
        </a>
        <a href={href('tasks', ['list'])} aria-current={mode === 'list' ? 'page' : undefined}>
          List
        </a>
      </nav>
      <form
        class="row-form"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            const t = await createTask({ title, status: 'todo', priority: 'medium', tags: [] });
            setTitle('');
            change((list) => [t, ...(list ?? [])]);
          } catch (err) {
            toast(messageOf(err), 'error');
          }
        }}
      >
        <label>
          New task
          <input required value={title} maxLength={500} onInput={(e) => setTitle(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary">
          Add
        </button>
      </form>
      <ErrorBox error={error} />
      {tasks === null && !error && <Spinner />}
      {tasks && mode === 'board' && (
        <div class="board">
          {STATUSES.map((status) => {
            const column = tasks.filter((t) => t.status === status);
            return (
              <div
                key={status}
                class={`column${over === status ? ' drop-target' : ''}`}
                data-status={status}
                aria-labelledby={`col-${status}`}
                role="region"
                onDragOver={(e) => {
                  e.preventDefault();
                  setOver(status);
                }}
                onDragLeave={() => setOver(null)}
                onDrop={(e) => {
                  e.preventDefault();
                  setOver(null);
                  const task = tasks.find((t) => t.id === e.dataTransfer?.getData('text/x-task-id'));
                  if (task) void moveTo(task, status);
                }}
              >
                <h2 id={`col-${status}`}>
                  {STATUS_LABELS[status]} <span class="muted">{column.length}</span>
                </h2>
                {column.map((t) => (
                  <article
                    key={t.id}
                    class="task-card"
                    draggable
                    data-task-id={t.id}
                    onDragStart={(e) => {
                      e.dataTransfer!.setData('text/x-task-id', t.id);
                      e.dataTransfer!.effectAllowed = 'move';
                    }}
                  >
                    <button type="button" class="link" onClick={() => setOpen(t)}>
                      {t.title}
                    </button>
                    <div class="meta">
                      {t.priority}
                      {t.tags?.length ? ` · ${t.tags.join(', ')}` : ''}
                      {t.due_date ? ` · due ${t.due_date.slice(0, 10)}` : ''}
                    </div>
                    <label class="inline">
                      <span class="visually-hidden">Status of {t.title}</span>
                      <select value={t.status} onChange={(e) => void moveTo(t, e.currentTarget.value as Status)}>
                        <StatusOptions />
                      </select>
                    </label>
                  </article>
                ))}
              </div>
            );
          })}
        </div>
      )}
      {tasks && mode === 'list' && (
        <>
          <div class="row-form">
            <label>
              Status
              <select value={filters.status} onChange={(e) => setFilters({ ...filters, status: e.currentTarget.value })}>
                <option value="">any</option>
                <StatusOptions />
              </select>
            </label>
            <label>
              Tag
              <input value={draft.tag} onInput={(e) => setDraft({ ...draft, tag: e.currentTarget.value })} onChange={(e) => setFilters({ ...filters, tag: e.currentTarget.value.trim() })} />
            </label>
            <label>
              Order
              <select value={filters.order} onChange={(e) => setFilters({ ...filters, order: e.currentTarget.value })}>
                <option value="-updated_at">recently changed</option>
                <option value="updated_at">least recently changed</option>
                <option value="-created_at">newest</option>
                <option value="created_at">oldest</option>
                <option value="-priority">priority, highest first</option>
                <option value="priority">priority, lowest first</option>
                <option value="due_date">due date, soonest first</option>
                <option value="-due_date">due date, latest first</option>
                <option value="title">title A–Z</option>
                <option value="-title">title Z–A</option>
              </select>
            </label>
            <label>
              Project id
              <input value={draft.project} maxLength={64} onInput={(e) => setDraft({ ...draft, project: e.currentTarget.value })} onChange={(e) => setFilters({ ...filters, project: e.currentTarget.value.trim() })} />
            </label>
            <label>
              Changed since
              <input type="datetime-local" value={filters.since} onChange={(e) => setFilters({ ...filters, since: e.currentTarget.value })} />
            </label>
            <label class="inline">
              <input type="checkbox" checked={filters.mine} onChange={(e) => setFilters({ ...filters, mine: e.currentTarget.checked })} />
              Assigned to me
            </label>
            <label class="inline">
              <input type="checkbox" checked={filters.deleted} onChange={(e) => setFilters({ ...filters, deleted: e.currentTarget.checked })} />
              Include deleted
            </label>
          </div>
          <DataTable
            caption="Tasks"
            rows={tasks}
            rowKey={(t) => t.id}
            rowProps={(t) => ({ 'data-task-id': t.id })}
            columns={[
              {
                label: 'Title',
                cell: (t) =>
                  t.deleted_at ? (
                    <span class="muted">
                      {t.title} (deleted {formatDate(t.deleted_at)})
                    </span>
                  ) : (
                    <button type="button" class="link" onClick={() => setOpen(t)}>
                      {t.title}
                    </button>
                  ),
              },
              { label: 'Status', cell: (t) => STATUS_LABELS[t.status] },
              { label: 'Priority', cell: (t) => t.priority },
              { label: 'Due', cell: (t) => t.due_date?.slice(0, 10) ?? '—' },
              { label: 'Tags', cell: (t) => t.tags?.join(', ') },
              { label: 'Updated', cell: (t) => formatDate(t.updated_at) },
            ]}
          />
        </>
      )}
      {open && (
        <TaskDetail
          task={open}
          onClose={() => setOpen(null)}
          onSaved={(t) => {
            change((list) => list && list.map((x) => (x.id === t.id ? t : x)));
            setOpen(t);
          }}
        />
      )}
    </section>
  );
}

const StatusOptions = () => (
  <>
    {STATUSES.map((s) => (
      <option key={s} value={s}>
        {STATUS_LABELS[s]}
      </option>
    ))}
  </>
);

function TaskDetail({ task, onClose, onSaved }: { task: Task; onClose: () => void; onSaved: (t: Task) => void }) {
  const [draft, setDraft] = useState({ title: task.title, description: task.description ?? '', priority: task.priority, due_date: task.due_date?.slice(0, 10) ?? '', tags: (task.tags ?? []).join(', ') });
  const [comments, setComments] = useState<Comment[]>([]);
  const [history, setHistory] = useState<HistoryEntry[]>([]);
  const [reply, setReply] = useState<{ parent: string | null; body: string }>({ parent: null, body: '' });
  const [error, setError] = useState<unknown>(null);
  const reload = () => {
    taskComments(task.id).then(setComments, setError);
    taskHistory(task.id).then(setHistory, setError);
  };
  useEffect(reload, [task.id, task.version]);

  const thread = (parent: string | null, depth: number): preact.JSX.Element[] =>
    comments
      .filter((c) => c.parent_id === parent)
      .map((c) => (
        <li key={c.id} style={{ marginLeft: `${depth * 16}px` }}>
          <div class="muted">{formatDate(c.created_at)}</div>
          <div>{c.body}</div>
          <button type="button" class="link" onClick={() => setReply({ parent: c.id, body: '' })}>
            Reply
          </button>
          <ul class="plain">{thread(c.id, depth + 1)}</ul>
        </li>
      ));

  return (
    <Modal title={task.title} onClose={onClose} wide>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            const saved = await updateTask(task, {
              title: draft.title,
              description: draft.description,
              priority: draft.priority,
              due_date: draft.due_date || null,
              tags: draft.tags.split(',').map((s) => s.trim()).filter(Boolean),
            });
            toast('Saved');
            onSaved(saved);
          } catch (err) {
            setError(err);
          }
        }}
      >
        <label>
          Title
          <input value={draft.title} required onInput={(e) => setDraft({ ...draft, title: e.currentTarget.value })} />
        </label>
        <label>
          Description
          <textarea rows={3} value={draft.description} onInput={(e) => setDraft({ ...draft, description: e.currentTarget.value })} />
        </label>
        <div class="grid3">
          <label>
            Priority
            <select value={draft.priority} onChange={(e) => setDraft({ ...draft, priority: e.currentTarget.value })}>
              {PRIORITIES.map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          </label>
          <label>
            Due
            <input type="date" value={draft.due_date} onInput={(e) => setDraft({ ...draft, due_date: e.currentTarget.value })} />
          </label>
          <label>
            Tags (comma-separated)
            <input value={draft.tags} onInput={(e) => setDraft({ ...draft, tags: e.currentTarget.value })} />
          </label>
        </div>
        <ErrorBox error={error} />
        <div class="actions">
          <span class="muted">
            {STATUS_LABELS[task.status]} · version {task.version}
          </span>
          <button type="submit" class="primary">
            Save
          </button>
        </div>
      </form>
      <h3>Comments</h3>
      <ul class="plain">{thread(null, 0)}</ul>
      <form
        class="row-form"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await addComment(task.id, reply.body, reply.parent);
            setReply({ parent: null, body: '' });
            reload();
          } catch (err) {
            setError(err);
          }
        }}
      >
        <label>
          {reply.parent ? 'Reply' : 'Comment'}
          <input required value={reply.body} onInput={(e) => setReply({ ...reply, body: e.currentTarget.value })} />
        </label>
        <button type="submit">Post</button>
        {reply.parent && (
          <button type="button" onClick={() => setReply({ parent: null, body: '' })}>
            Cancel reply
          </button>
        )}
      </form>
      <h3>History</h3>
      <ol class="plain history">
        {history.map((h) => (
          <li key={h.id}>
            <span class="muted">{formatDate(h.created_at)}</span> v{h.version} {h.op}: {Object.keys(h.changes ?? {}).join(', ')}
          </li>
        ))}
      </ol>
    </Modal>
  );
}
