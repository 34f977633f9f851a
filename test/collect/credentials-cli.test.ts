import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { orgWithUsers } from '../backups/helpers.ts';
import { runCliCaptured, cliEnvOf } from '../helpers/cli.ts';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';
import { newHostKey } from './fake-device.ts';

const SECRET = 'pw-CLI-Zq8#only-here';
const ENABLE = 'en-CLI-4ble#only-here';

/** `credentials add|list|remove` and `network-devices add --model/--port/--credential` (issue 10). */
describe('credentials and network-devices CLI', () => {
  let t: TestApp;
  let env: Record<string, string>;
  let u: Awaited<ReturnType<typeof orgWithUsers>>;
  beforeEach(async () => {
    t = await createTestApp();
    env = cliEnvOf(t);
    u = await orgWithUsers(t.app);
  });
  afterEach(() => t.cleanup());
  const cli = (args: string[], stdin = '') => runCliCaptured(args, env, stdin);
  const ctx = () => ({ organizationId: u.orgId, userId: 'test', role: 'admin' as const });

  it('add reads the secrets from standard input, prints JSON without them; list and remove', async () => {
    const add = await cli(['credentials', 'add', '--org', u.orgId, '--name', 'ops', '--username', 'backup', '--password-stdin', '--enable-password-stdin'], `${SECRET}\n${ENABLE}\n`);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    const created = JSON.parse(add.stdout);
    expect(created).toMatchObject({ name: 'ops', username: 'backup', has_password: true, has_private_key: false, has_enable_password: true });
    const opened = await t.app.collect.credentials.open(u.orgId, created.id);
    expect(opened).toMatchObject({ username: 'backup', password: SECRET, enablePassword: ENABLE });

    const json = await cli(['credentials', 'list', '--org', u.orgId, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([created]);
    const table = await cli(['credentials', 'list', '--org', u.orgId]);
    expect(table.stdout).toMatch(/^NAME +USERNAME +PASSWORD +KEY +ENABLE +ID\nops +backup +yes +- +yes +/);
    for (const out of [add, json, table]) expect(out.stdout + out.stderr).not.toMatch(/only-here/);

    // A key from a file (a path on argv, not the secret), checked like the API checks it.
    const keyFile = path.join(t.dir, 'id_ed25519');
    const key = newHostKey().privateKey;
    writeFileSync(keyFile, key, { mode: 0o600 });
    const keyed = await cli(['credentials', 'add', '--org', u.orgId, '--name', 'keyed', '--username', 'backup', '--private-key-file', keyFile]);
    expect(keyed.code, keyed.stderr).toBe(0);
    expect(JSON.parse(keyed.stdout)).toMatchObject({ name: 'keyed', has_password: false, has_private_key: true });
    expect(keyed.stdout).not.toContain(key.split('\n')[1]);
    writeFileSync(keyFile, 'not a key');
    const notKey = await cli(['credentials', 'add', '--org', u.orgId, '--name', 'bad', '--username', 'backup', '--private-key-file', keyFile]);
    expect(notKey.code).toBe(2);
    expect(notKey.stderr).toMatch(/private_key/);
    expect((await cli(['credentials', 'remove', 'keyed', '--org', u.orgId])).code).toBe(0);

    const removed = await cli(['credentials', 'remove', 'ops', '--org', u.orgId]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(JSON.parse(removed.stdout)).toEqual({ removed: 'ops', id: created.id });
    expect(await t.app.collect.credentials.list(ctx())).toEqual([]);
  });

  it('refuses a credential without a secret, an empty stdin line, a secret on argv and a taken name; creates nothing', async () => {
    const base = ['credentials', 'add', '--org', u.orgId, '--name', 'ops', '--username', 'backup'];
    const none = await cli(base);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/needs a password or a private key: --password-stdin/);
    const empty = await cli([...base, '--password-stdin', '--enable-password-stdin'], `${SECRET}\n`);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/--enable-password-stdin: no value on line 2 of standard input/);
    const argv = await cli([...base, '--password', SECRET]);
    expect(argv.code).toBe(2);
    expect(argv.stderr).toMatch(/unknown option '--password'/);
    const noKey = await cli([...base, '--private-key-file', `${t.dir}/missing.key`]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/--private-key-file .*missing\.key: cannot read it \(ENOENT\)/);
    const badKey = await cli([...base, '--passphrase-stdin'], 'x\n');
    expect(badKey.stderr).toMatch(/--passphrase-stdin needs --private-key-file/);
    expect(await t.app.collect.credentials.list(ctx())).toEqual([]);

    expect((await cli([...base, '--password-stdin'], SECRET)).code).toBe(0);
    const again = await cli([...base, '--password-stdin'], SECRET);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/a credential named "ops" exists/);
    expect(await t.app.collect.credentials.list(ctx())).toHaveLength(1);
  });

  it('network-devices add --model --port --credential; an unknown model or credential or a bad port changes nothing', async () => {
    const loc = await u.asOwner('POST', '/api/v1/backup-locations', { name: 'main', type: 'fs', config: { folder: 'configs' } });
    expect(loc.statusCode, loc.body).toBe(201);
    expect((await cli(['credentials', 'add', '--name', 'ops', '--username', 'backup', '--password-stdin'], SECRET)).code).toBe(0);
    const cred = (await t.app.collect.credentials.findByName(u.orgId, 'ops'))!;
    const add = (name: string, extra: string[]) => cli(['network-devices', 'add', '--name', name, '--address', '192.0.2.7', '--location', 'main', ...extra]);

    const ok = await add('r1', ['--model', 'cisco-ios', '--port', '2222', '--credential', 'ops']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ name: 'r1', model: 'cisco-ios', port: 2222, credential_id: cred.id });

    const badModel = await add('r2', ['--model', 'nope-os']);
    expect(badModel.code).toBe(2);
    expect(badModel.stderr).toMatch(/--model: no model named "nope-os"; known: .*cisco-ios/);
    const badCred = await add('r2', ['--model', 'cisco-ios', '--credential', 'nobody']);
    expect(badCred.code).toBe(2);
    expect(badCred.stderr).toMatch(/--credential: no credential named "nobody"/);
    for (const port of ['0', '70000', '22x']) {
      const badPort = await add('r2', ['--port', port]);
      expect(badPort.code).toBe(2);
      expect(badPort.stderr).toMatch(/expected a TCP port 1-65535/);
    }
    const names = (await t.app.backups.devices.list(ctx(), 10, undefined)).items.map((d) => d.name);
    expect(names).toEqual(['r1']);

    // backups collect --all: one batch of the collectable devices (database backend: no worker runs them here).
    await add('r3', ['--model', 'cisco-ios']); // no credential: not collectable
    await add('r4', ['--model', 'cisco-ios', '--credential', 'ops', '--disabled']);
    expect((await cli(['backups', 'collect'])).stderr).toMatch(/name one --device, or --all/);
    expect((await cli(['backups', 'collect', '--all', '--wait'])).stderr).toMatch(/--wait and --timeout follow one --device/);
    const all = await runCliCaptured(['backups', 'collect', '--all'], { ...env, STORMVAULT_TASKS_BACKEND: 'database' });
    expect(all.code, all.stderr).toBe(0);
    const batch = JSON.parse(all.stdout);
    expect(batch).toMatchObject({ enqueued: 1, tasks: [{ network_device: 'r1', task_id: expect.any(String) }] });

    // A credential in use is not removed.
    const inUse = await cli(['credentials', 'remove', 'ops']);
    expect(inUse.code).toBe(2);
    expect(inUse.stderr).toMatch(/used by 2 network device/);
    expect((await cli(['credentials', 'remove', 'nobody'])).stderr).toMatch(/no credential named "nobody"/);
  });
});
