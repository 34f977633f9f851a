import { constants, PerformanceObserver } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { configureUploadHeap, holdUploadHeap, noteUploadBytes, uploadHeapHolders } from '../../src/storage/upload-heap.ts';

// Issue 12 (upload throughput): V8's growing factor is raised only while large uploads stream, and young
// collections run every so many bytes received. The effect on V8 is measured by bench/files-throughput
// ("server GC per upload", peak RSS); here, which settings reach V8 and when.
describe('upload heap settings (issue 12)', () => {
  afterEach(() => configureUploadHeap(null, { setFlag: () => {} }));

  it('does nothing until configured (tests and other embedders keep V8 as it is)', () => {
    const release = holdUploadHeap();
    expect(uploadHeapHolders()).toBe(0);
    release();
    noteUploadBytes(1 << 30);
  });

  it('raises the factor for the first upload, keeps it while any holds it, and sets the idle value after the last', () => {
    const flags: string[] = [];
    configureUploadHeap({ idlePercent: 20, uploadPercent: 200 }, { setFlag: (f) => flags.push(f) });
    expect(flags).toEqual(['--heap-growing-percent=20']);
    const a = holdUploadHeap();
    const b = holdUploadHeap();
    expect(flags).toEqual(['--heap-growing-percent=20', '--heap-growing-percent=200']);
    a();
    a(); // idempotent: one upload cannot release another's hold
    expect(uploadHeapHolders()).toBe(1);
    expect(flags.at(-1)).toBe('--heap-growing-percent=200');
    b();
    expect(uploadHeapHolders()).toBe(0);
    expect(flags).toEqual(['--heap-growing-percent=20', '--heap-growing-percent=200', '--heap-growing-percent=20']);
  });

  it('with serialScavenge, scavenges on the main thread alone while uploads stream, in parallel again after', () => {
    const flags: string[] = [];
    configureUploadHeap({ idlePercent: 20, uploadPercent: 200, serialScavenge: true }, { setFlag: (f) => flags.push(f) });
    const release = holdUploadHeap();
    expect(flags.slice(-2)).toEqual(['--heap-growing-percent=200', '--no-parallel-scavenge']);
    release();
    expect(flags.slice(-2)).toEqual(['--heap-growing-percent=20', '--parallel-scavenge']);
  });

  it('puts the idle value back when switched off during an upload', () => {
    const flags: string[] = [];
    configureUploadHeap({ idlePercent: 20, uploadPercent: 200 }, { setFlag: (f) => flags.push(f) });
    const release = holdUploadHeap();
    configureUploadHeap(null, { setFlag: (f) => flags.push(f) });
    expect(flags.at(-1)).toBe('--heap-growing-percent=20');
    release();
    expect(flags.at(-1)).toBe('--heap-growing-percent=20');
  });

  it('runs a young collection every youngGcEveryBytes received, counted over all uploads', () => {
    let collections = 0;
    configureUploadHeap({ idlePercent: 20, uploadPercent: 200, youngGcEveryBytes: 1000 }, { setFlag: () => {}, youngGc: () => collections++ });
    noteUploadBytes(600);
    expect(collections).toBe(0);
    noteUploadBytes(600);
    expect(collections).toBe(1);
    for (let i = 0; i < 10; i++) noteUploadBytes(250);
    expect(collections).toBe(3);
  });

  it('obtains a real young collection from V8 without exposing gc() globally', async () => {
    const kinds: number[] = [];
    const observer = new PerformanceObserver((list) => kinds.push(...list.getEntries().map((e) => (e as unknown as { detail: { kind: number } }).detail.kind)));
    observer.observe({ entryTypes: ['gc'] });
    try {
      configureUploadHeap({ idlePercent: 20, uploadPercent: 200, youngGcEveryBytes: 1 }, { setFlag: () => {} });
      noteUploadBytes(1);
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      observer.disconnect();
    }
    expect(kinds).toContain(constants.NODE_PERFORMANCE_GC_MINOR);
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });
});
