import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

/**
 * zod for every schema of ours: its functional build, zod/mini, with the English messages the full build
 * has by default. The full build is ~150 KB of code that each process compiles and whose classes it sets
 * up at load, a tenth of a short CLI command's start-up (every command validates its config; issue 12,
 * CLI start-up). Import `z` from here, never from 'zod' itself, so that no bundle holds both builds and
 * every message is in English whichever module loads first. Import it as a namespace
 * (`import * as z from '…/lib/zod.ts'`): the bundler then keeps only the functions a schema uses.
 */
config(en());

export * from 'zod/mini';
