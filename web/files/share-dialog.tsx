import { useEffect, useState } from 'preact/hooks';
import { formatDate } from '../lib/format.ts';
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

export function ShareRow({ share, onRevoked }: { share: Share; onRevoked: () => void }) {
  return (
    <tr data-share-id={share.id}>
      <td>{share.path}</td>
      <td>
        <span class={`badge badge-${share.status}`}>{share.status}</span>
      </td>
      <td>{share.expires_at ? formatDate(share.expires_at) : 'never'}</td>
      <td>
        {share.download_count}
        {share.max_downloads !== null ? ` / ${share.max_downloads}` : ''}
      </td>
      <td>{share.has_password ? 'yes' : 'no'}</td>
      <td>
        {share.status !== 'revoked' && (
          <button
            type="button"
            class="danger"
            aria-label={`Revoke the link to ${share.path}`}
            onClick={() =>
              revokeShare(share.id).then(
                () => (toast('Link revoked'), onRevoked()),
                (err) => toast(messageOf(err), 'error'),
              )
            }
          >
            Revoke
          </button>
        )}
      </td>
    </tr>
  );
}

export function SharesTable({ shares, onChange }: { shares: Share[]; onChange: () => void }) {
  if (shares.length === 0) return <p class="muted">No links yet.</p>;
  return (
    <div class="table-wrap">
      <table class="data">
        <thead>
          <tr>
            <th scope="col">Path</th>
            <th scope="col">Status</th>
            <th scope="col">Expires</th>
            <th scope="col">Downloads</th>
            <th scope="col">Password</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {shares.map((s) => (
            <ShareRow key={s.id} share={s} onRevoked={onChange} />
          ))}
        </tbody>
      </table>
    </div>
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
