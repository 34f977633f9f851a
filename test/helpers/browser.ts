import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildWeb } from '../../scripts/build.mjs';

/**
 * Debian's Chromium driven by playwright-core (issue 14). `.ci/run` installs it; in CI (CI=true) a browser
 * that cannot launch fails the suite, elsewhere the suite is skipped with a notice.
 */
export const CHROMIUM = process.env.STORMVAULT_CHROMIUM ?? '/usr/bin/chromium';
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * Flags for a quiet, reproducible browser: no GPU, no QUIC, no first-run UI, no background traffic to
 * Google. playwright-core gives every launch a fresh temporary --user-data-dir of its own (it refuses one
 * in `args`), so no profile is shared between runs.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
}

/**
 * Launches the browser for a test file, or explains why not: null means "skip" (never in CI, where it throws).
 * Called at the top of the file (top-level await), so `describe.skipIf(!browser)` can decide.
 */
export async function browserOrSkip(): Promise<Browser | null> {
  try {
    return await launchChromium();
  } catch (err) {
    if (IN_CI) throw new Error(`Chromium (${CHROMIUM}) did not launch; in CI the web UI suites must run: ${(err as Error).message}`);
    console.warn(`[stormvault tests] Chromium (${CHROMIUM}) did not launch, skipping the web UI suite: ${(err as Error).message.split('\n')[0]}`);
    return null;
  }
}

/** The UI built once per test file into its own temp dir (esbuild: well under a second). */
export async function buildWebInto(dir: string): Promise<string> {
  const out = path.join(dir, 'web');
  await buildWeb({ outdir: out });
  return out;
}

/**
 * Where screenshots go: STORMVAULT_E2E_SCREENSHOTS, or a temp dir kept after the run (it is printed),
 * so the views can be reviewed; never inside the repository.
 */
export async function screenshotDir(name: string): Promise<{ dir: string; shot: (page: Page, file: string) => Promise<void> }> {
  const dir = process.env.STORMVAULT_E2E_SCREENSHOTS
    ? path.join(process.env.STORMVAULT_E2E_SCREENSHOTS, name)
    : await mkdtemp(path.join(tmpdir(), `stormvault-e2e-${name}-`));
  await mkdir(dir, { recursive: true });
  console.log(`[stormvault tests] ${name} screenshots: ${dir}`);
  return { dir, shot: async (page, file) => void (await page.screenshot({ path: path.join(dir, `${file}.png`), fullPage: true })) };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * expect.poll with a timeout fit for a browser on a shared machine (vitest's default is 1 s: a listing or
 * an SSH collection under load takes longer, and the suite failed on that, not on the UI).
 */
export const BROWSER_POLL = { timeout: 15_000, interval: 100 } as const;
