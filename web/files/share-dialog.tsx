import { useEffect, useState } from 'preact/hooks';
import { formatDate } from '../lib/format.ts';
import { DataTable } from '../lib/table.tsx';
import { ErrorBox, Modal, messageOf, toast } from '../lib/ui.tsx';
import { createShare, listShares, revokeShare, type Entry, type Share } from './files-api.ts';

export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    toast('Link copied');
  } catch {
    // No clipboard permission (plain http on a LAN address): the URL field is selected for Ctrl+C.
    toast('Copy the selected link with Ctrl+C');
  }
}

export function SharesTable({ shares, onChange }: { shares: Share[]; onChange: () => void }) {
  if (shares.length === 0) return <p class="muted">No links yet.</p>;
  return (
    <DataTable
      caption="Share links"
      rows={shares}
      rowKey={(s) => s.id}
      rowProps={(s) => ({ 'data-share-id': s.id })}
      columns={[
        { label: 'Path', cell: (s) => s.path },
        { label: 'Status', cell: (s) => <span class={`badge badge-${s.status}`}>{s.status}</span> },
        { label: 'Expires', cell: (s) => (s.expires_at ? formatDate(s.expires_at) : 'never') },
        { label: 'Downloads', cell: (s) => `${s.download_count}${s.max_downloads !== null ? ` / ${s.max_downloads}` : ''}` },
        { label: 'Password', cell: (s) => (s.has_password ? 'yes' : 'no') },
        {
          label: 'Actions',
          hideLabel: true,
          cell: (s) =>
            s.status !== 'revoked' && (
              <button
                type="button"
                class="danger"
                aria-label={`Revoke the link to ${s.path}`}
                onClick={() =>
                  revokeShare(s.id).then(
                    () => (toast('Link revoked'), onChange()),
                    (err) => toast(messageOf(err), 'error'),
                  )
                }
              >
                Revoke
              </button>
            ),
        },
      ]}
    />
  );
}

/** Create a link (expiry, password, download limit), copy its URL, see and revoke this item's links. */
export function ShareDialog({ entry, onClose }: { entry: Entry; onClose: () => void }) {
  const [expires, setExpires] = useState('');
  const [password, setPassword] = useState('');
  const [limit, setLimit] = useState('');
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [shares, setShares] = useState<Share[]>([]);
  const refresh = () => listShares().then((all) => setShares(all.filter((s) => s.path === entry.path)), setError);
  useEffect(() => void refresh(), [entry.path]);

  return (
    <Modal title={`Share “${entry.name}”`} onClose={onClose} wide>
      <form
        class="share-form"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          try {
            const share = await createShare({
              path: entry.path,
              expires_at: expires ? new Date(expires).toISOString() : null,
              password: password || null,
              max_downloads: limit ? Number(limit) : null,
            });
            setCreated(share.url);
            setPassword('');
            await refresh();
          } catch (err) {
            setError(err);
          }
        }}
      >
        <div class="grid3">
          <label>
            Expires
            <input type="datetime-local" name="expires" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
          </label>
          <label>
            Password
            <input type="password" name="share-password" autocomplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          </label>
          <label>
            Download limit
            <input type="number" name="max-downloads" min={1} step={1} value={limit} onInput={(e) => setLimit(e.currentTarget.value)} />
          </label>
        </div>
        <ErrorBox error={error} />
        <div class="actions">
          <button type="submit" class="primary">
            Create link
          </button>
        </div>
      </form>
      {created && (
        <div class="created-link">
          <label>
            Link (shown once: the server keeps only a hash of it)
            <input readOnly value={created} data-testid="share-url" onFocus={(e) => e.currentTarget.select()} />
          </label>
          <button type="button" onClick={() => copyText(created)}>
            Copy link
          </button>
        </div>
      )}
      <h3>Links to this item</h3>
      <SharesTable shares={shares} onChange={refresh} />
    </Modal>
  );
}
