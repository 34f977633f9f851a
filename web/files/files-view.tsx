import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { baseName, formatBytes, formatDate, joinPath, parentOf } from '../lib/format.ts';
import { href } from '../lib/router.ts';
import { Confirm, ErrorBox, messageOf, Modal, toast } from '../lib/ui.tsx';
import { copy, download, listFolder, mkdir, move, remove, usage, type Entry, type Usage } from './files-api.ts';
import { PreviewDialog } from './preview.tsx';
import { ShareDialog } from './share-dialog.tsx';
import { UploadPanel } from './upload-panel.tsx';
import { enqueueUploads, filesOfDrop, setUploadListener } from './uploads.ts';
import { VirtualList } from './virtual-list.tsx';

type SortKey = 'name' | 'size' | 'modified';
type DialogState =
  | { kind: 'mkdir' }
  | { kind: 'move' | 'copy'; entries: Entry[] }
  | { kind: 'delete'; entries: Entry[] }
  | { kind: 'share'; entry: Entry }
  | { kind: 'preview'; entry: Entry }
  | null;

const ROW_HEIGHT = 40;

/**
 * The size and date text of an entry, formatted once: a scroll step renders ~30 rows, and Intl's date
 * formatting per row and frame was the largest allocation left while scrolling (bench/web.ts).
 */
const cellText = new WeakMap<Entry, { size: string; modified: string }>();
function textOf(e: Entry): { size: string; modified: string } {
  let t = cellText.get(e);
  if (!t) cellText.set(e, (t = { size: e.is_directory ? '—' : formatBytes(e.size), modified: formatDate(e.modified_at) }));
  return t;
}
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

function sortEntries(entries: Entry[], key: SortKey, ascending: boolean): Entry[] {
  const dir = ascending ? 1 : -1;
  const byKey =
    key === 'name'
      ? (a: Entry, b: Entry) => collator.compare(a.name, b.name)
      : key === 'size'
        ? (a: Entry, b: Entry) => a.size - b.size || collator.compare(a.name, b.name)
        : (a: Entry, b: Entry) => a.modified_at.localeCompare(b.modified_at) || collator.compare(a.name, b.name);
  // Folders first whatever the order, as every file manager does.
  return [...entries].sort((a, b) => Number(b.is_directory) - Number(a.is_directory) || dir * byKey(a, b));
}

export function FilesView({ path }: { path: string }) {
  const [entries, setEntries] = useState<Entry[] | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [sortKey, setSortKey] = useState<SortKey>('name');
  const [ascending, setAscending] = useState(true);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [dialog, setDialog] = useState<DialogState>(null);
  const [quota, setQuota] = useState<Usage | null>(null);
  const [dragging, setDragging] = useState(false);
  const [reloadTick, setReloadTick] = useState(0);
  const fileInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);
  const reload = () => setReloadTick((n) => n + 1);

  useEffect(() => {
    const abort = new AbortController();
    setLoadError(null);
    setSelected(new Set());
    listFolder(path, abort.signal, (partial) => setEntries([...partial]))
      .then((all) => setEntries(all))
      .catch((err) => {
        if (!abort.signal.aborted) {
          setLoadError(err);
          setEntries([]);
        }
      });
    usage().then(setQuota, () => setQuota(null));
    return () => abort.abort();
  }, [path, reloadTick]);

  useEffect(() => {
    // Finished uploads into this folder (or below it) refresh the listing, at most once per 300 ms.
    let timer: ReturnType<typeof setTimeout> | undefined;
    setUploadListener((uploaded) => {
      if (parentOf(uploaded) === path || uploaded.startsWith(path ? `${path}/` : '')) {
        clearTimeout(timer);
        timer = setTimeout(reload, 300);
      }
    });
    return () => {
      clearTimeout(timer);
      setUploadListener(() => {});
    };
  }, [path]);

  const sorted = useMemo(() => sortEntries(entries ?? [], sortKey, ascending), [entries, sortKey, ascending]);
  const selectedEntries = sorted.filter((e) => selected.has(e.name));
  const one = selectedEntries.length === 1 ? selectedEntries[0]! : null;

  const toggle = (name: string) => {
    const next = new Set(selected);
    if (next.has(name)) next.delete(name);
    else next.add(name);
    setSelected(next);
  };
  const sortBy = (key: SortKey) => {
    if (key === sortKey) setAscending(!ascending);
    else {
      setSortKey(key);
      setAscending(true);
    }
  };
  const uploadFiles = (items: Array<{ file: File; relative: string }>) => {
    if (items.length) enqueueUploads(items.map((i) => ({ file: i.file, path: joinPath(path, i.relative) })));
  };
  const run = async (what: () => Promise<unknown>, done?: string) => {
    try {
      await what();
      if (done) toast(done);
    } catch (err) {
      toast(messageOf(err), 'error');
    } finally {
      setSelected(new Set());
      reload();
    }
  };

  const crumbs = path ? path.split('/') : [];
  const sortHeader = (key: SortKey, label: string) => (
    <span role="columnheader" class={`col-${key}`} aria-sort={sortKey === key ? (ascending ? 'ascending' : 'descending') : 'none'}>
      <button type="button" class="link" onClick={() => sortBy(key)}>
        {label}
        {sortKey === key ? (ascending ? ' ▲' : ' ▼') : ''}
      </button>
    </span>
  );

  return (
    <section
      class={`view files-view${dragging ? ' dragging' : ''}`}
      aria-labelledby="files-title"
      onDragOver={(e) => {
        if (e.dataTransfer?.types.includes('Files')) {
          e.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={(e) => {
        if (e.currentTarget === e.target) setDragging(false);
      }}
      onDrop={async (e) => {
        e.preventDefault();
        setDragging(false);
        if (e.dataTransfer) uploadFiles(await filesOfDrop(e.dataTransfer));
      }}
    >
      <div class="files-head">
        <h1 id="files-title" class="visually-hidden">
          Files
        </h1>
        <nav aria-label="Breadcrumbs" class="breadcrumbs">
          <ol>
            <li>
              <a href={href('files')} aria-current={crumbs.length === 0 ? 'page' : undefined}>
                My files
              </a>
            </li>
            {crumbs.map((c, i) => (
              <li key={i}>
                <a href={href('files', crumbs.slice(0, i + 1))} aria-current={i === crumbs.length - 1 ? 'page' : undefined}>
                  {c}
                </a>
              </li>
            ))}
          </ol>
        </nav>
        {quota && <QuotaBar usage={quota} />}
      </div>

      <div class="toolbar" role="toolbar" aria-label="File actions">
        <button type="button" class="primary" onClick={() => fileInput.current!.click()}>
          Upload files
        </button>
        <button type="button" onClick={() => folderInput.current!.click()}>
          Upload folder
        </button>
        <button type="button" onClick={() => setDialog({ kind: 'mkdir' })}>
          New folder
        </button>
        <span class="sep" />
        <button type="button" disabled={selectedEntries.length === 0} onClick={() => setDialog({ kind: 'move', entries: selectedEntries })}>
          {one ? 'Rename / move' : 'Move'}
        </button>
        <button type="button" disabled={selectedEntries.length === 0} onClick={() => setDialog({ kind: 'copy', entries: selectedEntries })}>
          Copy
        </button>
        <button type="button" disabled={!one || one.is_directory} onClick={() => one && void run(() => download(one.path, one.name))}>
          Download
        </button>
        <button type="button" disabled={!one} onClick={() => one && setDialog({ kind: 'share', entry: one })}>
          Share
        </button>
        <button type="button" class="danger" disabled={selectedEntries.length === 0} onClick={() => setDialog({ kind: 'delete', entries: selectedEntries })}>
          Delete
        </button>
        <input
          ref={fileInput}
          type="file"
          multiple
          hidden
          aria-label="Files to upload"
          data-testid="upload-input"
          onChange={(e) => {
            const files = Array.from(e.currentTarget.files ?? []);
            uploadFiles(files.map((file) => ({ file, relative: file.name })));
            e.currentTarget.value = '';
          }}
        />
        <input
          ref={folderInput}
          type="file"
          hidden
          aria-label="Folder to upload"
          {...{ webkitdirectory: '' }}
          onChange={(e) => {
            const files = Array.from(e.currentTarget.files ?? []);
            uploadFiles(files.map((file) => ({ file, relative: file.webkitRelativePath || file.name })));
            e.currentTarget.value = '';
          }}
        />
      </div>

      <ErrorBox error={loadError} />
      <p class="muted count" aria-live="polite" data-testid="file-count">
        {entries === null ? 'Loading…' : `${entries.length} ${entries.length === 1 ? 'item' : 'items'}${selected.size ? `, ${selected.size} selected` : ''}`}
      </p>

      <div class="file-table" role="table" aria-label="Folder contents" aria-rowcount={sorted.length + 1}>
        <div class="file-row file-header" role="row">
          <span role="columnheader" class="col-check">
            <input
              type="checkbox"
              aria-label="Select all"
              checked={sorted.length > 0 && selected.size === sorted.length}
              onChange={(e) => setSelected(e.currentTarget.checked ? new Set(sorted.map((x) => x.name)) : new Set())}
            />
          </span>
          {sortHeader('name', 'Name')}
          {sortHeader('size', 'Size')}
          {sortHeader('modified', 'Modified')}
        </div>
        {entries !== null && sorted.length === 0 && !loadError && <p class="empty">This folder is empty. Drop files here or use “Upload files”.</p>}
        <VirtualList
          count={sorted.length}
          rowHeight={ROW_HEIGHT}
          label="Files"
          renderRow={(i) => {
            const e = sorted[i]!;
            const isSelected = selected.has(e.name);
            return (
              <div class={`file-row${isSelected ? ' selected' : ''}`} role="row" aria-rowindex={i + 2} aria-selected={isSelected} data-name={e.name}>
                <span role="cell" class="col-check">
                  <input type="checkbox" aria-label={`Select ${e.name}`} checked={isSelected} onChange={() => toggle(e.name)} />
                </span>
                <span role="cell" class="col-name">
                  {e.is_directory ? (
                    <a href={href('files', e.path.split('/'))} class="entry-link">
                      <span class="icon-folder" aria-hidden="true" />
                      {e.name}
                    </a>
                  ) : (
                    <button type="button" class="link entry-link" onClick={() => setDialog({ kind: 'preview', entry: e })}>
                      <span class="icon-file" aria-hidden="true" />
                      {e.name}
                    </button>
                  )}
                </span>
                <span role="cell" class="col-size">
                  {textOf(e).size}
                </span>
                <span role="cell" class="col-modified">
                  {textOf(e).modified}
                </span>
              </div>
            );
          }}
        />
      </div>
      {dragging && (
        <div class="drop-hint" aria-hidden="true">
          Drop files or folders to upload them to {path || 'My files'}
        </div>
      )}

      <UploadPanel />

      {dialog?.kind === 'mkdir' && (
        <PromptDialog
          title="New folder"
          label="Folder name"
          initial=""
          submitLabel="Create"
          onClose={() => setDialog(null)}
          onSubmit={(name) => mkdir(joinPath(path, name)).then(() => (toast(`Created ${name}`), reload()))}
        />
      )}
      {(dialog?.kind === 'move' || dialog?.kind === 'copy') && (
        <TransferDialog
          kind={dialog.kind}
          entries={dialog.entries}
          folder={path}
          onClose={() => setDialog(null)}
          onDone={() => {
            setSelected(new Set());
            reload();
          }}
        />
      )}
      {dialog?.kind === 'delete' && (
        <Confirm
          title="Delete"
          danger
          confirmLabel="Delete"
          message={
            dialog.entries.length === 1
              ? `Delete “${dialog.entries[0]!.name}”${dialog.entries[0]!.is_directory ? ' and everything in it' : ''}? This cannot be undone.`
              : `Delete these ${dialog.entries.length} items? This cannot be undone.`
          }
          onClose={() => setDialog(null)}
          onConfirm={() =>
            run(async () => {
              for (const e of dialog.entries) await remove(e.path, e.is_directory);
            }, dialog.entries.length === 1 ? `Deleted ${dialog.entries[0]!.name}` : `Deleted ${dialog.entries.length} items`)
          }
        />
      )}
      {dialog?.kind === 'share' && <ShareDialog entry={dialog.entry} onClose={() => setDialog(null)} />}
      {dialog?.kind === 'preview' && <PreviewDialog entry={dialog.entry} onClose={() => setDialog(null)} />}
    </section>
  );
}

function QuotaBar({ usage: u }: { usage: Usage }) {
  const label = u.quota_bytes === null ? `${formatBytes(u.used_bytes)} used (no quota)` : `${formatBytes(u.used_bytes)} of ${formatBytes(u.quota_bytes)} used, ${formatBytes(u.available_bytes ?? 0)} available`;
  return (
    <div class="quota" data-testid="quota">
      {u.quota_bytes !== null && <progress max={u.quota_bytes} value={u.used_bytes} aria-label="Quota used" />}
      <span class="muted">{label}</span>
    </div>
  );
}

export function PromptDialog({ title, label, initial, submitLabel, onSubmit, onClose }: {
  title: string;
  label: string;
  initial: string;
  submitLabel: string;
  onSubmit: (value: string) => Promise<unknown>;
  onClose: () => void;
}) {
  const [value, setValue] = useState(initial);
  const [error, setError] = useState<unknown>(null);
  return (
    <Modal title={title} onClose={onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await onSubmit(value.trim());
            onClose();
          } catch (err) {
            setError(err);
          }
        }}
      >
        <label>
          {label}
          <input autoFocus required value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        </label>
        <ErrorBox error={error} />
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary">
            {submitLabel}
          </button>
        </div>
      </form>
    </Modal>
  );
}

/** Rename or move one entry (its full new path), or move/copy several into a folder. */
function TransferDialog({ kind, entries, folder, onClose, onDone }: { kind: 'move' | 'copy'; entries: Entry[]; folder: string; onClose: () => void; onDone: () => void }) {
  const single = entries.length === 1 ? entries[0]! : null;
  const verb = kind === 'move' ? 'Move' : 'Copy';
  return (
    <PromptDialog
      title={single ? (kind === 'move' ? `Rename or move “${single.name}”` : `Copy “${single.name}”`) : `${verb} ${entries.length} items`}
      label={single ? 'New path' : 'Into folder'}
      initial={single ? (kind === 'copy' ? joinPath(folder, `Copy of ${single.name}`) : single.path) : folder}
      submitLabel={verb}
      onClose={onClose}
      onSubmit={async (target) => {
        const op = kind === 'move' ? move : copy;
        const cleaned = target.replace(/^\/+|\/+$/g, '');
        if (single) await op(single.path, cleaned);
        else for (const e of entries) await op(e.path, joinPath(cleaned, baseName(e.path)));
        toast(single ? `${kind === 'move' ? 'Moved' : 'Copied'} to ${cleaned}` : `${kind === 'move' ? 'Moved' : 'Copied'} ${entries.length} items`);
        onDone();
      }}
    />
  );
}
