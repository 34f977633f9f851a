import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

/**
 * axe-core (Deque's accessibility engine, a dev dependency) run inside a test page (issue 14: "axe-core
 * reports no serious violations on any view"). The script goes in through the DevTools protocol
 * (page.evaluate), which the page's Content-Security-Policy does not apply to: the CSP stays as served.
 */
const require = createRequire(import.meta.url);
let source: Promise<string> | null = null;

export interface AxeFinding {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string; html: string; summary: string }>;
}

/** The serious and critical violations on the page as it is now (everything that is rendered). */
/** STORMVAULT_AXE_ALL=1 also fails on moderate and minor findings (for a clean-up; the issue's bar is serious). */
const DEFAULT_IMPACTS = process.env.STORMVAULT_AXE_ALL ? ['minor', 'moderate', 'serious', 'critical'] : ['serious', 'critical'];

export async function axeViolations(page: Page, impacts: readonly string[] = DEFAULT_IMPACTS): Promise<AxeFinding[]> {
  source ??= readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(await source);
  const found = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[]; html: string; failureSummary?: string }> }> }> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    const debug = { passes: (result as unknown as { passes: Array<{ id: string }> }).passes.map((p) => p.id), incomplete: (result as unknown as { incomplete: Array<{ id: string; nodes: unknown[] }> }).incomplete.map((p) => `${p.id}×${p.nodes.length}`) };
    (window as unknown as { __axeDebug: unknown }).__axeDebug = debug;
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => ({ target: n.target.map(String).join(' '), html: n.html.slice(0, 200), summary: (n.failureSummary ?? '').slice(0, 300) })),
    }));
  });
  if (process.env.STORMVAULT_AXE_DEBUG) console.log('[axe]', page.url(), JSON.stringify(await page.evaluate(() => (window as unknown as { __axeDebug: unknown }).__axeDebug)));
  return found.filter((v) => v.impact !== null && impacts.includes(v.impact));
}

/** A readable one-line-per-node report for an assertion message. */
export function describeFindings(where: string, findings: AxeFinding[]): string {
  return findings.map((f) => `${where}: ${f.id} (${f.impact}) ${f.help}\n${f.nodes.map((n) => `    ${n.target}  ${n.html}\n      ${n.summary.replace(/\n/g, ' | ')}`).join('\n')}`).join('\n');
}
