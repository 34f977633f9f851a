import { AppError } from '../../errors.ts';
import { deviceModelSchema, type DeviceModel } from './collect-model.schema.ts';

/** One model file as read from disk: its name for messages, and its text. */
export interface ModelFile {
  readonly file: string;
  readonly text: string;
}

/** Where a model came from, for `GET /api/v1/backup-models` and for messages. */
export interface RegisteredModel {
  readonly model: DeviceModel;
  readonly source: 'shipped' | 'custom';
  readonly file: string;
}

/** Parses and validates one model file; a bad one is refused naming the file and the reason (issue 10). */
export function parseModelFile(f: ModelFile): DeviceModel {
  let json: unknown;
  try {
    json = JSON.parse(f.text);
  } catch (err) {
    throw new AppError('invalid_request', `model ${f.file}: not valid JSON: ${(err as Error).message}`);
  }
  const parsed = deviceModelSchema.safeParse(json);
  if (!parsed.success) {
    const reasons = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new AppError('invalid_request', `model ${f.file}: ${reasons}`);
  }
  const expected = f.file.replace(/^.*[\\/]/, '').replace(/\.json$/, '');
  if (parsed.data.name !== expected) {
    throw new AppError('invalid_request', `model ${f.file}: name "${parsed.data.name}" must match the file name "${expected}"`);
  }
  return parsed.data;
}

/**
 * The models a collector can use: the shipped ones, then custom files from `<data dir>/models/`, which
 * override a shipped model of the same name or add a new one. Any malformed file refuses the whole set,
 * so start-up fails loudly instead of a device silently losing its model.
 */
export class ModelRegistry {
  private readonly byName = new Map<string, RegisteredModel>();

  constructor(shipped: readonly ModelFile[], custom: readonly ModelFile[]) {
    for (const f of shipped) this.add(f, 'shipped');
    const seen = new Set<string>();
    for (const f of custom) {
      const name = this.add(f, 'custom');
      if (seen.has(name)) throw new AppError('invalid_request', `model ${f.file}: a second custom model named "${name}"`);
      seen.add(name);
    }
  }

  private add(f: ModelFile, source: RegisteredModel['source']): string {
    const model = parseModelFile(f);
    this.byName.set(model.name, { model, source, file: f.file });
    return model.name;
  }

  get(name: string): DeviceModel | undefined {
    return this.byName.get(name)?.model;
  }

  /** Throws not_found naming the model. */
  require(name: string): DeviceModel {
    const m = this.get(name);
    if (!m) throw new AppError('not_found', `unknown backup model "${name}"`);
    return m;
  }

  list(): RegisteredModel[] {
    return [...this.byName.values()].sort((a, b) => a.model.name.localeCompare(b.model.name));
  }
}
