import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonFiles } from '../../storage/model-files.ts';
import { ModelRegistry } from './model-registry.ts';

/** The shipped models sit beside this file (scripts/build.mjs copies src/**\/*.json into dist/). */
export const SHIPPED_MODELS_DIR = fileURLToPath(new URL('./models/', import.meta.url));

/** Shipped models plus `<dataDir>/models/*.json` (custom ones override or add); throws on a malformed file. */
export async function loadModelRegistry(dataDir: string, shippedDir = SHIPPED_MODELS_DIR): Promise<ModelRegistry> {
  const [shipped, custom] = await Promise.all([readJsonFiles(shippedDir), readJsonFiles(path.join(dataDir, 'models'))]);
  return new ModelRegistry(shipped, custom);
}
