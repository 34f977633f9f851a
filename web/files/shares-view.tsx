import { useEffect, useState } from 'preact/hooks';
import { ErrorBox, Spinner } from '../lib/ui.tsx';
import { listShares, type Share } from './files-api.ts';
import { SharesTable } from './share-dialog.tsx';

export function SharesView() {
  const [shares, setShares] = useState<Share[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const refresh = () => listShares().then(setShares, setError);
  useEffect(() => void refresh(), []);
  return (
    <section class="view" aria-labelledby="shares-title">
      <h1 id="shares-title">Share links</h1>
      <p class="muted">Links are created from the Files view (select an item, then “Share”). Tokens are shown only when created.</p>
      <ErrorBox error={error} />
      {shares === null ? <Spinner /> : <SharesTable shares={shares} onChange={refresh} />}
    </section>
  );
}
