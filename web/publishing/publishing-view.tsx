import { useEffect, useState } from 'preact/hooks';
import { listAlerts, type Alert } from '../lib/alerts.ts';
import { formatBytes, formatDate } from '../lib/format.ts';
import { href } from '../lib/router.ts';
import { DataTable } from '../lib/table.tsx';
import { apiJson, jsonBody } from '../lib/session.ts';
import { ErrorBox, Spinner, messageOf, toast } from '../lib/ui.tsx';

interface Site {
  name: string;
  cdn_enabled: boolean;
  local_fallback_mode: boolean;
  cdn_base_url: string | null;
  serving: 'cdn' | 'local';
  local_base_url: string;
  settings_version: number;
  health: { last_check_at: string | null; last_check_ok: boolean | null; business_hours: string | null };
  failover: { pin: 'auto' | 'cdn' | 'local'; state: string; consecutive_failures: number; changed_at: string | null };
}

interface PublishedFile {
  path: string;
  size: number;
  modified_at: string;
  url?: string;
  source?: 'cdn' | 'local';
  cdn: { status: string; sync_verified: boolean; attempts: number; last_error: string | null };
}

interface Manifest {
  mode: 'cdn' | 'local';
  settings_version: number;
  files: Array<{ path: string; url: string; source: 'cdn' | 'local' }>;
}

/** Publishing: sites, the CDN switch and fallback mode (and what they do), the publish log, health, alerts. */
export function PublishingView({ rest }: { rest: string[] }) {
  return rest[0] ? <SiteDetail name={rest[0]} /> : <SiteList />;
}

function SiteList() {
  const [sites, setSites] = useState<Site[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    apiJson<{ sites: Site[] }>('/api/v1/sites').then((r) => setSites(r.sites), setError);
  }, []);
  return (
    <section class="view" aria-labelledby="sites-title">
      <h1 id="sites-title">Sites</h1>
      <ErrorBox error={error} />
      {sites === null && !error && <Spinner />}
      {sites?.length === 0 && <p>No sites yet (create one with POST /api/v1/sites).</p>}
      {sites && sites.length > 0 && (
        <DataTable
          caption="Sites"
          rows={sites}
          rowKey={(s) => s.name}
          columns={[
            { label: 'Site', cell: (s) => <a href={href('publishing', [s.name])}>{s.name}</a> },
            { label: 'Serving', cell: (s) => s.serving },
            { label: 'CDN', cell: (s) => (s.cdn_enabled ? 'on' : 'off') },
            { label: 'Fallback mode', cell: (s) => (s.local_fallback_mode ? 'on' : 'off') },
            { label: 'Last health check', cell: (s) => (s.health.last_check_at ? `${formatDate(s.health.last_check_at)} (${s.health.last_check_ok ? 'ok' : 'failed'})` : '—') },
          ]}
        />
      )}
    </section>
  );
}

function SiteDetail({ name }: { name: string }) {
  const [site, setSite] = useState<Site | null>(null);
  const [files, setFiles] = useState<PublishedFile[] | null>(null);
  const [manifest, setManifest] = useState<Manifest | null>(null);
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [error, setError] = useState<unknown>(null);
  const enc = encodeURIComponent(name);
  const load = () => {
    apiJson<Site>(`/api/v1/sites/${enc}`).then(setSite, setError);
    apiJson<{ files: PublishedFile[] }>(`/api/v1/sites/${enc}/content?limit=500`).then((r) => setFiles(r.files), setError);
    apiJson<Manifest>(`/api/v1/sites/${enc}/manifest`).then(setManifest, setError);
    listAlerts(100).then((all) => setAlerts(all.filter((a) => a.subject.includes(name))), () => setAlerts([]));
  };
  useEffect(load, [name]);

  const change = async (patch: Record<string, unknown>, done: string) => {
    try {
      setSite(await apiJson<Site>(`/api/v1/sites/${enc}`, jsonBody('PATCH', patch)));
      toast(done);
      load();
    } catch (err) {
      toast(messageOf(err), 'error');
    }
  };

  return (
    <section class="view" aria-labelledby="site-title">
      <p>
        <a href={href('publishing')}>← Sites</a>
      </p>
      <h1 id="site-title">{name}</h1>
      <ErrorBox error={error} />
      {!site && !error && <Spinner />}
      {site && (
        <div class="card">
          <p>
            Serving now: <strong data-testid="serving">{site.serving === 'cdn' ? 'the CDN' : 'this server (local)'}</strong> · failover {site.failover.state}
            {site.failover.pin !== 'auto' ? ` (pinned to ${site.failover.pin})` : ''} · settings version {site.settings_version}
          </p>
          <label class="inline">
            <input type="checkbox" checked={site.cdn_enabled} onChange={(e) => change({ cdn_enabled: e.currentTarget.checked }, e.currentTarget.checked ? 'CDN switched on' : 'CDN switched off')} />
            CDN enabled
          </label>
          <p class="muted">
            On: files are mirrored to the bucket and, once a file is verified there, its URL points at {site.cdn_base_url ?? 'the CDN base URL'}. Off: every URL points at this server ({site.local_base_url}).
          </p>
          <label class="inline">
            <input type="checkbox" checked={site.local_fallback_mode} onChange={(e) => change({ local_fallback_mode: e.currentTarget.checked }, e.currentTarget.checked ? 'Fallback mode on: URLs point at this server' : 'Fallback mode off')} />
            Local fallback mode
          </label>
          <p class="muted">On: every URL handed out (manifest, URL lookups) points at this server, whatever the CDN state; the mirror keeps running, so switching back is instant. Reaches every server process within a second.</p>
          <label>
            Failover pin
            <select value={site.failover.pin} onChange={(e) => change({ failover: { pin: e.currentTarget.value } }, `Failover pinned to ${e.currentTarget.value}`)}>
              <option value="auto">auto (health checks decide)</option>
              <option value="cdn">always the CDN</option>
              <option value="local">always local</option>
            </select>
          </label>
          <p>
            Health: {site.health.last_check_at ? `${formatDate(site.health.last_check_at)}, ${site.health.last_check_ok ? 'ok' : 'failed'}` : 'never checked'}{' '}
            <button
              type="button"
              onClick={() =>
                apiJson(`/api/v1/sites/${enc}/health-check`, { method: 'POST' }).then(
                  () => (toast('Health check done'), load()),
                  (err) => toast(messageOf(err), 'error'),
                )
              }
            >
              Run health check
            </button>
          </p>
        </div>
      )}
      <h2>Manifest</h2>
      {manifest && (
        <p class="muted">
          mode <strong data-testid="manifest-mode">{manifest.mode}</strong> · settings version {manifest.settings_version}
        </p>
      )}
      {manifest && (
        <ul class="plain" data-testid="manifest">
          {manifest.files.map((f) => (
            <li key={f.path}>
              <code>{f.path}</code> → <a href={f.url} data-source={f.source}>{f.url}</a>
            </li>
          ))}
        </ul>
      )}
      <h2>Publish log</h2>
      {files && (
        <DataTable
          caption="Publish log"
          rows={files}
          rowKey={(f) => f.path}
          columns={[
            { label: 'File', cell: (f) => f.path },
            { label: 'Size', cell: (f) => formatBytes(f.size) },
            { label: 'Published', cell: (f) => formatDate(f.modified_at) },
            { label: 'Mirror', cell: (f) => `${f.cdn.status}${f.cdn.last_error ? ` (${f.cdn.last_error})` : ''}` },
            { label: 'Verified', cell: (f) => (f.cdn.sync_verified ? 'yes' : 'no') },
          ]}
        />
      )}
      <h2>Alerts</h2>
      {alerts.length === 0 ? (
        <p class="muted">No alerts for this site.</p>
      ) : (
        <ul class="plain">
          {alerts.map((a) => (
            <li key={a.id}>
              <span class={`badge badge-${a.severity}`}>{a.severity}</span> {a.message} <span class="muted">({a.status}, {formatDate(a.last_seen_at)})</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
