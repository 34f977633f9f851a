import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { heapGrowingFlag, heapPercents, SERVE_HEAP_GROWING_PERCENT, UPLOAD_HEAP_GROWING_PERCENT } from '../../src/cli/serve-heap.ts';

// Issue 12 (upload throughput): `serve` pins V8's old-generation growing factor so that the HTTP parser's
// transient body buffers do not trigger a full GC every ~25 MB received. The effect is measured by
// bench/files-throughput ("server GC per upload"); here, only which flag is set and when it is left alone.
describe('serve heap tuning (issue 12, upload throughput)', () => {
  it('sets --heap-growing-percent when node was started without one', () => {
    expect(heapGrowingFlag([])).toBe(`--heap-growing-percent=${SERVE_HEAP_GROWING_PERCENT}`);
    expect(heapGrowingFlag(['--max-semi-space-size=4'])).toBe(`--heap-growing-percent=${SERVE_HEAP_GROWING_PERCENT}`);
  });

  it('is the factor npm start writes on its command line: one behaviour whichever way serve is launched', () => {
    const start = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).scripts.start as string;
    expect(start).toContain(`--heap-growing-percent=${SERVE_HEAP_GROWING_PERCENT} `);
  });

  it("leaves an operator's own setting alone, in either spelling", () => {
    expect(heapGrowingFlag(['--max-semi-space-size=4', '--heap-growing-percent=50'])).toBeNull();
    expect(heapGrowingFlag(['--heap_growing_percent=0'])).toBeNull();
    expect(heapGrowingFlag(['--heap-growing-percent', '80'])).toBeNull();
    // A flag that only starts alike is not it.
    expect(heapGrowingFlag(['--heap-growing-percentage=5'])).not.toBeNull();
  });

  it('raises the factor only while large uploads stream: idle is npm start\'s (or the operator\'s) value', () => {
    expect(heapPercents([])).toEqual({ idlePercent: SERVE_HEAP_GROWING_PERCENT, uploadPercent: UPLOAD_HEAP_GROWING_PERCENT });
    expect(heapPercents(['--max-semi-space-size=4', `--heap-growing-percent=${SERVE_HEAP_GROWING_PERCENT}`])).toEqual({ idlePercent: SERVE_HEAP_GROWING_PERCENT, uploadPercent: UPLOAD_HEAP_GROWING_PERCENT });
    expect(heapPercents(['--heap_growing_percent=50'])).toEqual({ idlePercent: 50, uploadPercent: UPLOAD_HEAP_GROWING_PERCENT });
    expect(heapPercents(['--heap-growing-percent', '80'])).toEqual({ idlePercent: 80, uploadPercent: UPLOAD_HEAP_GROWING_PERCENT });
    // An operator's higher value is never lowered for uploads.
    expect(heapPercents(['--heap-growing-percent=300'])).toEqual({ idlePercent: 300, uploadPercent: 300 });
    expect(UPLOAD_HEAP_GROWING_PERCENT).toBeGreaterThan(SERVE_HEAP_GROWING_PERCENT);
  });
});
