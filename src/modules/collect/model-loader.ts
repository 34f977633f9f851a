import path from 'node:path';
import { readJsonFiles } from '../../storage/model-files.ts';
import type { ModelFile } from './model-registry.ts';
import { ModelRegistry } from './model-registry.ts';
import { shippedModelFiles } from './shipped-models.ts';

/** Shipped models plus `<dataDir>/models/*.json` (custom ones override or add); throws on a malformed file. */
export async function loadModelRegistry(dataDir: string, shipped: readonly ModelFile[] = shippedModelFiles()): Promise<ModelRegistry> {
  const custom = await readJsonFiles(path.join(dataDir, 'models'));
  return new ModelRegistry(shipped, custom);
}
