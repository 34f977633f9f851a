import { describe, expect, it } from 'vitest';
import { createSseParser } from '../../web/lib/sse.ts';

/** The web UI's SSE parser (web/lib/sse.ts): the live board reads the sync events stream through it. */
describe('web UI SSE parser', () => {
  const parse = (chunks: string[]) => {
    const out: Array<[string, string]> = [];
    const feed = createSseParser((type, data) => out.push([type, data]));
    for (const c of chunks) feed(c);
    return out;
  };
  const stream = 'event: ready\ndata: {"cursor":"c1"}\n\n: keep-alive\n\nevent: poke\ndata: {"cursor":"c2"}\n\n';

  it('reads the events the server writes, skipping keep-alive comments', () => {
    expect(parse([stream])).toEqual([
      ['ready', '{"cursor":"c1"}'],
      ['poke', '{"cursor":"c2"}'],
    ]);
  });

  it('gives the same events whatever the chunk boundaries (every split of the stream)', () => {
    const whole = parse([stream]);
    for (let i = 0; i <= stream.length; i++) expect(parse([stream.slice(0, i), stream.slice(i)]), `split at ${i}`).toEqual(whole);
    expect(parse([...stream])).toEqual(whole);
  });

  it('takes CR LF line ends, split anywhere, multi-line data and unnamed events; holds an unfinished event', () => {
    const crlf = 'event: poke\r\ndata: a\r\ndata: b\r\n\r\ndata: plain\r\n\r\nevent: poke\r\ndata: half';
    for (let i = 0; i <= crlf.length; i++) {
      expect(parse([crlf.slice(0, i), crlf.slice(i)]), `split at ${i}`).toEqual([
        ['poke', 'a\nb'],
        ['message', 'plain'],
      ]);
    }
  });
});
