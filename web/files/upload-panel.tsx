import { formatBytes } from '../lib/format.ts';
import { cancelUpload, clearFinished, retryUpload, uploads } from './uploads.ts';

export function UploadPanel() {
  const list = uploads.value;
  if (list.length === 0) return null;
  const total = list.filter((u) => u.status !== 'cancelled').reduce((n, u) => n + u.file.size, 0);
  const loaded = list.filter((u) => u.status !== 'cancelled').reduce((n, u) => n + (u.status === 'done' ? u.file.size : u.loaded), 0);
  const active = list.some((u) => u.status === 'queued' || u.status === 'uploading');
  return (
    <aside class="uploads card" aria-label="Uploads">
      <header>
        <strong>{active ? 'Uploading' : 'Uploads'}</strong>
        <progress data-testid="upload-total" max={Math.max(1, total)} value={loaded} aria-label="Total upload progress" />
        <span class="muted">
          {formatBytes(loaded)} / {formatBytes(total)}
        </span>
        {!active && (
          <button type="button" onClick={clearFinished}>
            Clear
          </button>
        )}
      </header>
      <ul>
        {list.map((u) => (
          <li key={u.id} class={`upload upload-${u.status}`} data-status={u.status} data-path={u.path}>
            <span class="upload-name" title={u.path}>
              {u.path}
            </span>
            <progress max={Math.max(1, u.file.size)} value={u.status === 'done' ? u.file.size : u.loaded} aria-label={`Progress of ${u.path}`} />
            <span class="muted upload-state">{u.status === 'error' ? u.error : u.status === 'uploading' ? `${Math.floor((100 * u.loaded) / Math.max(1, u.file.size))}%` : u.status}</span>
            {(u.status === 'queued' || u.status === 'uploading') && (
              <button type="button" onClick={() => cancelUpload(u.id)} aria-label={`Cancel upload of ${u.path}`}>
                Cancel
              </button>
            )}
            {(u.status === 'error' || u.status === 'cancelled') && (
              <button type="button" onClick={() => retryUpload(u.id)} aria-label={`Retry upload of ${u.path}`}>
                Retry
              </button>
            )}
          </li>
        ))}
      </ul>
    </aside>
  );
}
