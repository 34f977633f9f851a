import { FilesView } from '../files/files-view.tsx';
import { lazyView } from '../lib/lazy.tsx';
import { href, route } from '../lib/router.ts';
import { logout, me, sessionChecked } from '../lib/session.ts';
import { Spinner, Toasts } from '../lib/ui.tsx';
import { LoginView } from '../login/login-view.tsx';

// Views other than files are separate chunks, fetched the first time they are opened.
const SharesView = lazyView(() => import('../files/shares-view.tsx').then((m) => m.SharesView));

const NAV: Array<{ view: string; label: string; admin?: boolean }> = [
  { view: 'files', label: 'Files' },
  { view: 'shares', label: 'Shares' },
];

function CurrentView() {
  const r = route.value;
  switch (r.view) {
    case 'files':
      return <FilesView path={r.rest.join('/')} />;
    case 'shares':
      return <SharesView />;
    default:
      return <NotFound />;
  }
}

function NotFound() {
  return (
    <section class="view">
      <h1>Not found</h1>
      <p>
        There is no such page. <a href={href('files')}>Go to your files</a>.
      </p>
    </section>
  );
}

export function App() {
  if (!sessionChecked.value) return <Spinner label="Loading Stormvault…" />;
  if (!me.value) return (
    <>
      <LoginView />
      <Toasts />
    </>
  );
  const current = route.value.view;
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <span class="brand">Stormvault</span>
        <nav aria-label="Main">
          <ul>
            {NAV.filter((n) => !n.admin || me.value!.is_admin).map((n) => (
              <li key={n.view}>
                <a href={href(n.view)} aria-current={current === n.view ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="user">
          <span class="username">{me.value.username}</span>
          <button type="button" onClick={() => void logout()}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <CurrentView />
      </main>
      <Toasts />
    </div>
  );
}
