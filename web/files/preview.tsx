import { useEffect, useState } from 'preact/hooks';
import { formatBytes } from '../lib/format.ts';
import { ErrorBox, Modal, Spinner, messageOf, toast } from '../lib/ui.tsx';
import { download, fetchFile, type Entry } from './files-api.ts';

const TEXT_LIMIT = 256 * 1024;

function kindOf(e: Entry): 'image' | 'text' | 'pdf' | null {
  const t = e.content_type;
  if (t.startsWith('image/') && t !== 'image/svg+xml') return 'image';
  if (t === 'application/pdf') return 'pdf';
  if (t.startsWith('text/') || /json|xml|yaml|javascript|x-sh/.test(t)) return 'text';
  return null;
}

/** Images, text (the first 256 KB) and PDF, fetched with the access token and shown from blob URLs. */
export function PreviewDialog({ entry, onClose }: { entry: Entry; onClose: () => void }) {
  const kind = kindOf(entry);
  const [url, setUrl] = useState<string | null>(null);
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    if (!kind) return;
    const abort = new AbortController();
    let objectUrl: string | null = null;
    (async () => {
      if (kind === 'text') {
        const res = await fetchFile(entry.path, { signal: abort.signal, headers: { range: `bytes=0-${TEXT_LIMIT - 1}` } });
        setText(await res.text());
      } else {
        objectUrl = URL.createObjectURL(await (await fetchFile(entry.path, { signal: abort.signal })).blob());
        setUrl(objectUrl);
      }
    })().catch((err) => !abort.signal.aborted && setError(err));
    return () => {
      abort.abort();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [entry.path]);

  return (
    <Modal title={entry.name} onClose={onClose} wide>
      <p class="muted">
        {entry.content_type} · {formatBytes(entry.size)}
      </p>
      <ErrorBox error={error} />
      {!kind && <p>No preview for this kind of file.</p>}
      {kind && !error && !url && text === null && <Spinner />}
      {kind === 'image' && url && <img class="preview-image" src={url} alt={entry.name} />}
      {kind === 'pdf' && url && <iframe class="preview-pdf" src={url} title={entry.name} />}
      {kind === 'text' && text !== null && (
        <pre class="preview-text" tabIndex={0} aria-label={`Contents of ${entry.name}`}>
          {text}
          {entry.size > TEXT_LIMIT ? '\n…' : ''}
        </pre>
      )}
      <div class="actions">
        <button type="button" onClick={() => download(entry.path, entry.name).catch((err) => toast(messageOf(err), 'error'))}>
          Download
        </button>
        <button type="button" class="primary" onClick={onClose}>
          Done
        </button>
      </div>
    </Modal>
  );
}
