import { text } from 'node:stream/consumers';
import { runCli } from './cli/program.ts';

const code = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  readStdin: () => text(process.stdin),
  isTty: Boolean(process.stdout.isTTY),
});
process.exitCode = code;
