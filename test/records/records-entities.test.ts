import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, parseRecordData, recordChecksum, transitionProblem } from '../../src/modules/records/records.entities.ts';
import { decodeCursor, encodeCursor } from '../../src/modules/sync/sync.cursor.ts';

describe('records entities', () => {
  it('allows reopening finished work but not jumping back into progress', () => {
    expect(transitionProblem('todo', 'in_progress')).toBeNull();
    expect(transitionProblem('done', 'todo')).toBeNull();
    expect(transitionProblem('done', 'done')).toBeNull();
    expect(transitionProblem('done', 'in_progress')).toMatch(/cannot change from done to in_progress/);
    expect(transitionProblem('cancelled', 'done')).toMatch(/allowed: todo/);
  });

  it('validates partial data strictly', () => {
    expect(parseRecordData('task', { title: ' t ', tags: ['a', 'b'] })).toEqual({ data: { title: ' t ', tags: ['a', 'b'] } });
    expect(parseRecordData('task', { title: '   ' })).toMatchObject({ problem: expect.stringMatching(/blank/) });
    expect(parseRecordData('task', { tags: ['a', 'a'] })).toMatchObject({ problem: expect.stringMatching(/unique/) });
    expect(parseRecordData('task', { colour: 'red' })).toMatchObject({ problem: expect.any(String) });
    expect(parseRecordData('task', { due_date: '2026-02-30T25:00:00Z' })).toMatchObject({ problem: expect.stringMatching(/due_date/) });
    expect(parseRecordData('comment', { parent_id: '../x' })).toMatchObject({ problem: expect.stringMatching(/parent_id/) });
    expect(parseRecordData('project', { archived: 'yes' })).toMatchObject({ problem: expect.stringMatching(/archived/) });
  });

  it('serialises canonically: key order never changes the checksum, values do', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 }), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
        expect(JSON.parse(canonicalJson(obj))).toEqual(JSON.parse(JSON.stringify(obj)));
      }),
      { numRuns: 300 },
    );
    const a = recordChecksum('task', { title: 'x', tags: ['a'], custom_fields: { b: 1, a: 2 } }, false);
    expect(recordChecksum('task', { custom_fields: { a: 2, b: 1 }, tags: ['a'], title: 'x' }, false)).toBe(a);
    expect(recordChecksum('task', { title: 'x', tags: ['a'], custom_fields: { b: 1, a: 2 } }, true)).not.toBe(a);
    expect(recordChecksum('task', { title: 'y', tags: ['a'], custom_fields: { b: 1, a: 2 } }, false)).not.toBe(a);
  });

  it('round-trips cursors and refuses another organization or garbage', () => {
    const c = encodeCursor('org-1', 42);
    expect(decodeCursor('org-1', c)).toBe(42);
    expect(() => decodeCursor('org-2', c)).toThrow(/cursor/);
    expect(() => decodeCursor('org-1', 'x%y')).toThrow(/cursor/);
    expect(() => decodeCursor('org-1', Buffer.from('org-1:-5').toString('base64url'))).toThrow(/cursor/);
  });
});
