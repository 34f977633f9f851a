import { useEffect, useRef, useState } from 'preact/hooks';
import { formatBytes, formatDate } from '../lib/format.ts';
import { href } from '../lib/router.ts';
import { DataTable } from '../lib/table.tsx';
import { api, apiJson, jsonBody } from '../lib/session.ts';
import { Confirm, ErrorBox, Spinner, messageOf, toast } from '../lib/ui.tsx';

interface NetworkDevice {
  id: string;
  name: string;
  address: string;
  group: string | null;
  enabled: boolean;
  last_backup_at: string | null;
  last_changed_at: string | null;
  last_status: string | null;
  last_error: string | null;
  consecutive_failures: number;
  model: string | null;
  credential_id: string | null;
}

/** How the last collection of a device ended (GET …/collection). */
interface CollectionState {
  host_key: string | null;
  last_task_id: string | null;
  last_attempt_at: string | null;
  last_success_at: string | null;
  last_stage: string | null;
  last_code: string | null;
  last_message: string | null;
  pending_host_key: string | null;
}

interface StoredBackup {
  id: string;
  sha256: string;
  size: number;
  collected_at: string;
  stored_at: string;
}

/** Network-device backups: devices with their status, a device's versions, a diff of any two, downloads. */
export function BackupsView({ rest }: { rest: string[] }) {
  return rest[0] ? <DeviceVersions id={rest[0]} /> : <DeviceList />;
}

function DeviceList() {
  const [devices, setDevices] = useState<NetworkDevice[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    apiJson<{ network_devices: NetworkDevice[] }>('/api/v1/network-devices?limit=500').then((r) => setDevices(r.network_devices), setError);
  }, []);
  return (
    <section class="view" aria-labelledby="backups-title">
      <h1 id="backups-title">Network devices</h1>
      <ErrorBox error={error} />
      {devices === null && !error && <Spinner />}
      {devices?.length === 0 && <p>No network devices yet (add them with the API or `stormvault network-devices add`).</p>}
      {devices && devices.length > 0 && (
        <DataTable
          caption="Network devices"
          rows={devices}
          rowKey={(d) => d.id}
          rowProps={(d) => ({ 'data-device': d.name })}
          columns={[
            {
              label: 'Device',
              cell: (d) => (
                <>
                  <a href={href('backups', [d.id])}>{d.name}</a>
                  {!d.enabled && <span class="muted"> (disabled)</span>}
                </>
              ),
            },
            { label: 'Address', cell: (d) => d.address },
            { label: 'Group', cell: (d) => d.group ?? '—' },
            { label: 'Status', cell: (d) => (d.last_status ? <span class={`badge badge-${d.last_status}`}>{d.last_status}</span> : '—') },
            { label: 'Last success', cell: (d) => formatDate(d.last_backup_at) },
            { label: 'Last change', cell: (d) => formatDate(d.last_changed_at) },
            { label: 'Failure', cell: (d) => (d.last_error ? `${d.last_error}${d.consecutive_failures > 1 ? ` (${d.consecutive_failures}×)` : ''}` : '—') },
          ]}
        />
      )}
    </section>
  );
}

function DeviceVersions({ id }: { id: string }) {
  const [device, setDevice] = useState<NetworkDevice | null>(null);
  const [versions, setVersions] = useState<StoredBackup[] | null>(null);
  const [from, setFrom] = useState<string | null>(null);
  const [to, setTo] = useState<string | null>(null);
  const [diff, setDiff] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  const [reloadTick, setReloadTick] = useState(0);

  useEffect(() => {
    const enc = encodeURIComponent(id);
    apiJson<NetworkDevice>(`/api/v1/network-devices/${enc}`).then(setDevice, setError);
    apiJson<{ stored_backups: StoredBackup[] }>(`/api/v1/network-devices/${enc}/backups?limit=500`).then((r) => {
      setVersions(r.stored_backups);
      // Newest against the one before it, as a first view.
      if (r.stored_backups.length >= 2) {
        setTo(r.stored_backups[0]!.id);
        setFrom(r.stored_backups[1]!.id);
      }
    }, setError);
  }, [id, reloadTick]);

  useEffect(() => {
    if (!from || !to || from === to) return setDiff(null);
    setDiff(null);
    api(`/api/v1/stored-backups/${encodeURIComponent(to)}/diff?against=${encodeURIComponent(from)}`)
      .then((r) => r.text())
      .then(setDiff, setError);
  }, [from, to]);

  const download = async (b: StoredBackup) => {
    try {
      const res = await api(`/api/v1/stored-backups/${encodeURIComponent(b.id)}/download`);
      const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `${b.id}.cfg`;
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      toast(messageOf(err), 'error');
    }
  };

  return (
    <section class="view" aria-labelledby="device-title">
      <p>
        <a href={href('backups')}>← Network devices</a>
      </p>
      <h1 id="device-title">{device?.name ?? 'Device'}</h1>
      {device && (
        <p class="muted">
          {device.address} · last success {formatDate(device.last_backup_at)} · last change {formatDate(device.last_changed_at)}
          {device.last_error ? ` · last failure: ${device.last_error}` : ''}
        </p>
      )}
      {device && <BackupNow device={device} onDone={() => setReloadTick((n) => n + 1)} />}
      {device && <CollectionPanel device={device} tick={reloadTick} onChange={() => setReloadTick((n) => n + 1)} />}
      <ErrorBox error={error} />
      {versions === null && !error && <Spinner />}
      {versions?.length === 0 && <p>No versions stored yet.</p>}
      {versions && versions.length > 0 && (
        <div class="two-pane">
          <DataTable
            caption="Versions, newest first"
            rows={versions}
            rowKey={(v) => v.id}
            rowProps={(v) => ({ 'data-version': v.id })}
            columns={[
              { label: 'From', cell: (v) => <input type="radio" name="from" aria-label={`Diff from ${formatDate(v.collected_at)}`} checked={from === v.id} onChange={() => setFrom(v.id)} /> },
              { label: 'To', cell: (v) => <input type="radio" name="to" aria-label={`Diff to ${formatDate(v.collected_at)}`} checked={to === v.id} onChange={() => setTo(v.id)} /> },
              { label: 'Collected', cell: (v) => formatDate(v.collected_at) },
              { label: 'Size', cell: (v) => formatBytes(v.size) },
              {
                label: 'Download',
                hideLabel: true,
                cell: (v) => (
                  <button type="button" onClick={() => download(v)} aria-label={`Download the version of ${formatDate(v.collected_at)}`}>
                    Download
                  </button>
                ),
              },
            ]}
          />
          <div>
            <h2>Diff</h2>
            {!from || !to || from === to ? <p class="muted">Pick two different versions.</p> : diff === null ? <Spinner /> : <DiffText text={diff} />}
          </div>
        </div>
      )}
    </section>
  );
}

/**
 * How the device is collected and how its last collection ended (stage, code, reason), its trusted SSH
 * host key, and a changed key waiting to be trusted (accept-host-key with that fingerprint, confirmed first:
 * an admin trusts what they checked, never whatever the device shows later).
 */
function CollectionPanel({ device, tick, onChange }: { device: NetworkDevice; tick: number; onChange: () => void }) {
  const [state, setState] = useState<CollectionState | null>(null);
  const [confirm, setConfirm] = useState(false);
  const enc = encodeURIComponent(device.id);
  useEffect(() => {
    apiJson<CollectionState>(`/api/v1/network-devices/${enc}/collection`).then(setState, () => setState(null));
  }, [device.id, tick]);
  if (!state) return null;
  const outcome = state.last_attempt_at
    ? state.last_code
      ? `failed at ${state.last_stage} (${state.last_code}): ${state.last_message}`
      : 'collected'
    : 'never collected';
  return (
    <details class="card collection" data-testid="collection">
      <summary>Collection: {outcome}</summary>
      <dl class="facts">
        <dt>Model</dt>
        <dd>{device.model ?? 'none (backups are pushed to the API)'}</dd>
        <dt>Last attempt</dt>
        <dd>{formatDate(state.last_attempt_at)}</dd>
        <dt>Last success</dt>
        <dd>{formatDate(state.last_success_at)}</dd>
        <dt>Trusted host key</dt>
        <dd>
          <code>{state.host_key ?? 'none yet (trusted on first use)'}</code>
        </dd>
      </dl>
      {state.pending_host_key && (
        <div class="notice">
          <p>
            The device presented a different host key: <code>{state.pending_host_key}</code>. Collections fail until it is trusted. Check it on the device first.
          </p>
          <button type="button" class="danger" onClick={() => setConfirm(true)}>
            Trust the new host key…
          </button>
        </div>
      )}
      {confirm && state.pending_host_key && (
        <Confirm
          title="Trust the new host key"
          danger
          confirmLabel="Trust this key"
          message={`Trust ${state.pending_host_key} for ${device.name}? Only do this if the key changed for a reason you know (new device, re-keyed).`}
          onClose={() => setConfirm(false)}
          onConfirm={() =>
            apiJson(`/api/v1/network-devices/${enc}/accept-host-key`, jsonBody('POST', { fingerprint: state.pending_host_key })).then(
              () => (toast('Host key trusted'), onChange()),
              (err) => toast(messageOf(err), 'error'),
            )
          }
        />
      )}
    </details>
  );
}

const POLL_MS = 1000;
const POLL_FOR_MS = 180_000;
const statusKey = (d: NetworkDevice) => [d.last_backup_at, d.last_changed_at, d.last_status, d.last_error, d.consecutive_failures].join('|');

type RunState =
  | { phase: 'queued' | 'collecting' | 'storing'; taskId: string; note?: string }
  | { phase: 'done'; taskId: string; ok: boolean; note: string }
  | { phase: 'timeout'; taskId: string };

/**
 * *Backup now*: queues one collection (POST …/backup-now answers 202 with the task), then follows it:
 * the collection's outcome (GET …/collection: which task ran last, the stage and reason of a failure,
 * "attempt 1 of 2" while retrying), and the device's status once the pipeline has stored the result.
 */
function BackupNow({ device, onDone }: { device: NetworkDevice; onDone: () => void }) {
  const [run, setRun] = useState<RunState | null>(null);
  const [polling, setPolling] = useState(false);
  const alive = useRef(true);
  useEffect(() => () => void (alive.current = false), []);
  const enc = encodeURIComponent(device.id);
  const configured = device.enabled && device.model !== null && device.credential_id !== null;

  const start = async () => {
    const before = statusKey(device);
    setPolling(true);
    setRun(null);
    try {
      const queued = await apiJson<{ task_id: string; status: string }>(`/api/v1/network-devices/${enc}/backup-now`, { method: 'POST' });
      const taskId = queued.task_id;
      setRun({ phase: 'queued', taskId, note: queued.status });
      const until = Date.now() + POLL_FOR_MS;
      while (alive.current && Date.now() < until) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        const [state, now] = await Promise.all([apiJson<CollectionState>(`/api/v1/network-devices/${enc}/collection`), apiJson<NetworkDevice>(`/api/v1/network-devices/${enc}`)]);
        if (!alive.current) return;
        const ours = state.last_task_id === taskId;
        if (ours && statusKey(now) !== before) {
          const ok = now.last_status === 'success';
          setRun({ phase: 'done', taskId, ok, note: ok ? `Backed up at ${formatDate(now.last_backup_at)}; last change ${formatDate(now.last_changed_at)}.` : `Failed${state.last_stage ? ` at ${state.last_stage}` : ''}: ${state.last_message ?? now.last_error ?? 'unknown reason'}` });
          onDone();
          return;
        }
        if (ours && state.last_code === null) setRun({ phase: 'storing', taskId, note: 'collected, storing the configuration' });
        else if (ours) setRun({ phase: 'collecting', taskId, note: `${state.last_stage}: ${state.last_message}` });
      }
      if (alive.current) setRun({ phase: 'timeout', taskId });
    } catch (err) {
      toast(messageOf(err), 'error');
    } finally {
      if (alive.current) setPolling(false);
    }
  };

  return (
    <div class="backup-now">
      <button type="button" class="primary" disabled={polling || !configured} onClick={() => void start()}>
        Backup now
      </button>
      {!configured && <span class="muted"> Collection needs the device enabled, with a model and a credential.</span>}
      <p role="status" aria-live="polite" data-testid="backup-now" data-phase={run?.phase ?? ''}>
        {run?.phase === 'queued' && `Queued (task ${run.taskId.slice(0, 12)}, ${run.note}).`}
        {run?.phase === 'collecting' && `Collecting… ${run.note}`}
        {run?.phase === 'storing' && `Collected; storing…`}
        {run?.phase === 'done' && <span class={run.ok ? 'ok' : 'failed'}>{run.note}</span>}
        {run?.phase === 'timeout' && 'Still running after 3 minutes: the device status will show the outcome.'}
      </p>
    </div>
  );
}

/** A unified diff, one line per row, added/removed lines marked (also in text, for screen readers). */
function DiffText({ text }: { text: string }) {
  if (!text.trim()) return <p>The two versions are identical.</p>;
  return (
    <pre class="diff" data-testid="diff" tabIndex={0} aria-label="Differences">
      {text.split('\n').map((line, i) => {
        const cls = line.startsWith('@@') ? 'hunk' : line.startsWith('+') && !line.startsWith('+++') ? 'add' : line.startsWith('-') && !line.startsWith('---') ? 'del' : undefined;
        return (
          <span key={i} class={cls}>
            {line}
            {'\n'}
          </span>
        );
      })}
    </pre>
  );
}
