import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * parseArgs for bench scripts with a `--help` that prints the script's own header comment (its usage and
 * what it measures) and a one-line error with exit code 2 for unknown or malformed flags.
 */
export function parseBenchArgs<O extends NonNullable<ParseArgsConfig['options']>>(scriptUrl: string, options: O) {
  const file = fileURLToPath(scriptUrl);
  if (process.argv.slice(2).some((a) => a === '--help' || a === '-h')) {
    const header = /\/\*\*([\s\S]*?)\*\//.exec(readFileSync(file, 'utf8'))?.[1] ?? '';
    console.log(header.split('\n').map((l) => l.replace(/^\s*\* ?/, '')).join('\n').trim());
    process.exit(0);
  }
  try {
    return parseArgs({ options, allowPositionals: false }).values;
  } catch (err) {
    console.error(`${file.split('/').pop()}: ${(err as Error).message} (see --help)`);
    process.exit(2);
  }
}
