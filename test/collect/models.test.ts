import { mkdtempSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/config.ts';
import { loadModelRegistry } from '../../src/modules/collect/model-loader.ts';
import { ModelRegistry } from '../../src/modules/collect/model-registry.ts';
import { shippedModelFiles } from '../../src/modules/collect/shipped-models.ts';

const SHIPPED = ['arista-eos', 'cisco-ios', 'cisco-nxos', 'fortios', 'generic-exec', 'juniper-junos', 'mikrotik-routeros'];

function dataDirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sv-models-'));
  mkdirSync(path.join(dir, 'models'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, 'models', name), text);
  return dir;
}

const minimal = (name: string, extra: object = {}) =>
  JSON.stringify({ name, prompt: '^\\S+# ?$', commands: [{ cmd: 'show config' }], ...extra });

describe(ModelRegistry.name, () => {
  it('loads every shipped model, valid, with defaults filled in', async () => {
    const sut = await loadModelRegistry(dataDirWith({}));
    expect(sut.list().map((m) => m.model.name)).toEqual(SHIPPED);
    for (const { model, source } of sut.list()) {
      expect(source).toBe('shipped');
      expect(model.commands.length).toBeGreaterThan(0);
      if (model.mode === 'shell') expect(model.prompt).toBeTruthy();
    }
    expect(sut.require('cisco-ios').commands.at(-1)!.cmd).toBe('show running-config');
    expect(sut.require('juniper-junos').commands.at(-1)!.cmd).toBe('show configuration | display set');
  });

  it('ships every file of src/modules/collect/models/ (each is imported by shipped-models.ts, so the bundle has it)', () => {
    const files = readdirSync(new URL('../../src/modules/collect/models/', import.meta.url)).filter((f) => f.endsWith('.json'));
    expect(shippedModelFiles().map((f) => f.file.replace('shipped/', '')).sort()).toEqual(files.sort());
  });

  it('lets a custom model override a shipped one and add a new one', async () => {
    const dir = dataDirWith({
      'cisco-ios.json': minimal('cisco-ios', { commands: [{ cmd: 'show startup-config' }] }),
      'acme-os.json': minimal('acme-os'),
    });
    const sut = await loadModelRegistry(dir);
    expect(sut.require('cisco-ios').commands.map((c) => c.cmd)).toEqual(['show startup-config']);
    expect(sut.list().find((m) => m.model.name === 'cisco-ios')!.source).toBe('custom');
    expect(sut.require('acme-os').mode).toBe('shell');
    expect(sut.require('acme-os').commands[0]!.as).toBe('config');
  });

  it.each([
    ['not JSON', '{ nope', /bad\.json: not valid JSON/],
    ['no commands', JSON.stringify({ name: 'bad', prompt: '^#$', commands: [] }), /bad\.json: commands: /],
    ['shell without prompt', JSON.stringify({ name: 'bad', commands: [{ cmd: 'x' }] }), /bad\.json: prompt: a shell model needs a prompt/],
    ['invalid regex', minimal('bad', { ignore_patterns: ['(unclosed'] }), /bad\.json: ignore_patterns\.0: invalid regular expression/],
    ['catastrophic regex', minimal('bad', { secrets: [{ pattern: '(a+)+$', with: 'x' }] }), /bad\.json: secrets\.0\.pattern: pattern may backtrack/],
    ['unknown field', minimal('bad', { promtp: 'x' }), /bad\.json: \(root\): .*promtp/],
    ['wrong as', minimal('bad', { commands: [{ cmd: 'x', as: 'data' }] }), /bad\.json: commands\.0\.as/],
    ['name not the file name', minimal('other'), /bad\.json: name "other" must match/],
  ])('refuses a malformed custom model (%s) naming the file and the reason', async (_, text, message) => {
    await expect(loadModelRegistry(dataDirWith({ 'bad.json': text }))).rejects.toThrow(message);
  });

  it('stops the app at start-up on a malformed custom model, naming the file and the reason', async () => {
    const dir = dataDirWith({ 'acme.json': minimal('acme', { commands: [{ cmd: 'x', as: 'data' }] }) });
    const config = loadConfig({ STORMVAULT_DATA_DIR: dir, STORMVAULT_LOG_LEVEL: 'silent', STORMVAULT_TASKS_BACKEND: 'immediate', STORMVAULT_MIN_FREE_BYTES: '0' });
    await expect(createApp(config, { http: false })).rejects.toThrow(/model .*models\/acme\.json: commands\.0\.as/);
  });

  it('answers not_found for an unknown model', () => {
    const sut = new ModelRegistry([], []);
    expect(() => sut.require('nope')).toThrow(/unknown backup model "nope"/);
  });
});
