import aristaEos from './models/arista-eos.json' with { type: 'json' };
import ciscoIos from './models/cisco-ios.json' with { type: 'json' };
import ciscoNxos from './models/cisco-nxos.json' with { type: 'json' };
import fortios from './models/fortios.json' with { type: 'json' };
import genericExec from './models/generic-exec.json' with { type: 'json' };
import juniperJunos from './models/juniper-junos.json' with { type: 'json' };
import mikrotikRouteros from './models/mikrotik-routeros.json' with { type: 'json' };
import type { ModelFile } from './model-registry.ts';

/**
 * The shipped models, imported statically so that esbuild bundles them into dist/ (scripts/build.mjs
 * bundles src/main.ts and copies no data files: a folder read beside `import.meta.url` found nothing
 * there). A new shipped model is one JSON file in models/ and one line here; test/collect/models.test.ts
 * checks that every file in models/ is listed.
 */
const SHIPPED: Record<string, unknown> = {
  'arista-eos': aristaEos,
  'cisco-ios': ciscoIos,
  'cisco-nxos': ciscoNxos,
  fortios,
  'generic-exec': genericExec,
  'juniper-junos': juniperJunos,
  'mikrotik-routeros': mikrotikRouteros,
};

export function shippedModelFiles(): ModelFile[] {
  return Object.entries(SHIPPED).map(([name, json]) => ({ file: `shipped/${name}.json`, text: JSON.stringify(json) }));
}
