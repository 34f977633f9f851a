import { FilesView } from '../files/files-view.tsx';
import { lazyView } from '../lib/lazy.tsx';
import { href, route } from '../lib/router.ts';
import { logout, me, sessionChecked } from '../lib/session.ts';
import { Spinner, Toasts } from '../lib/ui.tsx';
import { LoginView } from '../login/login-view.tsx';

// Views other than files are separate chunks, fetched the first time they are opened.
const SharesView = lazyView(() => import('../files/shares-view.tsx').then((m) => m.SharesView));
const TasksView = lazyView(() => import('../tasks/tasks-view.tsx').then((m) => m.TasksView));
const ConflictsView = lazyView(() => import('../conflicts/conflicts-view.tsx').then((m) => m.ConflictsView));
const BackupsView = lazyView(() => import('../backups/backups-view.tsx').then((m) => m.BackupsView));
const PublishingView = lazyView(() => import('../publishing/publishing-view.tsx').then((m) => m.PublishingView));
const AdminView = lazyView(() => import('../admin/admin-view.tsx').then((m) => m.AdminView));

const NAV: Array<{ view: string; label: string; admin?: boolean }> = [
  { view: 'files', label: 'Files' },
  { view: 'shares', label: 'Shares' },
  { view: 'tasks', label: 'Tasks' },
  { view: 'conflicts', label: 'Conflicts' },
  { view: 'backups', label: 'Backups' },
  { view: 'publishing', label: 'Publishing' },
  { view: 'admin', label: 'Admin', admin: true },
];

function CurrentView() {
  const r = route.value;
  const isAdmin = me.value?.is_admin === true;
  switch (r.view) {
    case 'files':
      return <FilesView path={r.rest.join('/')} />;
    case 'shares':
      return <SharesView />;
    case 'tasks':
      return <TasksView rest={r.rest} />;
    case 'conflicts':
      return <ConflictsView />;
    case 'backups':
      return <BackupsView rest={r.rest} />;
    case 'publishing':
      return <PublishingView rest={r.rest} />;
    case 'admin':
      // Hidden from the menu and not rendered for members; the API refuses them anyway (403).
      return isAdmin ? <AdminView rest={r.rest} /> : <NotFound />;
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
      {/* Not a plain #main link: routes live in the hash, so it would navigate to a "main" view. */}
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
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
