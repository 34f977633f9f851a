/**
 * A Server-Sent Events parser for text that arrives in arbitrary chunks (a fetch body read piece by piece):
 * events end with a blank line; `event:` names one, `data:` lines are joined with "\n", lines starting with
 * ":" are comments (keep-alives), other fields (`id`, `retry`) are ignored. CR LF and LF both end a line.
 * Returns `feed(chunk)`; `onEvent` runs for every complete event ("message" when unnamed).
 */
export function createSseParser(onEvent: (type: string, data: string) => void): (chunk: string) => void {
  let buffer = '';
  return (chunk) => {
    buffer += chunk;
    // Normalise line ends once a line is complete (a lone \r at the end may be the first half of \r\n).
    buffer = buffer.replace(/\r\n|\r(?=.)/gs, '\n');
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') type = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0 || type !== 'message') onEvent(type, data.join('\n'));
    }
  };
}
