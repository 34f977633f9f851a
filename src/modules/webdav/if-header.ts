// The WebDAV `If` request header (RFC 4918 §10.4): pure parsing, no I/O.

export interface IfCondition {
  not: boolean;
  /** A state token (lock token such as `urn:uuid:…`, or `DAV:no-lock`), or null for an entity-tag condition. */
  token: string | null;
  etag: string | null;
}

export interface IfList {
  /** The tagged resource (as written, a URL or absolute path), or null for a no-tag list (the request URL). */
  resource: string | null;
  conditions: IfCondition[];
}

/** Parses an If header; null when it is malformed (the caller answers 400). */
export function parseIfHeader(value: string): IfList[] | null {
  const lists: IfList[] = [];
  let i = 0;
  let resource: string | null = null;
  let sawTag = false;
  let sawUntagged = false;
  const skip = () => {
    while (i < value.length && /\s/.test(value[i]!)) i++;
  };
  skip();
  if (i >= value.length) return null;
  while (i < value.length) {
    skip();
    if (i >= value.length) break;
    const c = value[i];
    if (c === '<') {
      const end = value.indexOf('>', i);
      if (end < 0) return null;
      resource = value.slice(i + 1, end);
      sawTag = true;
      i = end + 1;
      skip();
      if (value[i] !== '(') return null;
      continue;
    }
    if (c !== '(') return null;
    if (!sawTag) sawUntagged = true;
    if (sawTag && sawUntagged) return null;
    i++;
    const conditions: IfCondition[] = [];
    for (;;) {
      skip();
      if (value[i] === ')') {
        i++;
        break;
      }
      let not = false;
      if (value.slice(i, i + 3).toLowerCase() === 'not' && /[\s<[]/.test(value[i + 3] ?? '')) {
        not = true;
        i += 3;
        skip();
      }
      if (value[i] === '<') {
        const end = value.indexOf('>', i);
        if (end < 0) return null;
        conditions.push({ not, token: value.slice(i + 1, end), etag: null });
        i = end + 1;
      } else if (value[i] === '[') {
        const end = value.indexOf(']', i);
        if (end < 0) return null;
        conditions.push({ not, token: null, etag: value.slice(i + 1, end).trim() });
        i = end + 1;
      } else return null;
    }
    if (conditions.length === 0) return null;
    lists.push({ resource: sawTag ? resource : null, conditions });
  }
  return lists.length > 0 ? lists : null;
}

/** Every state token the header mentions (RFC 4918 §10.4.1: these count as submitted, whatever their list's result). */
export function submittedTokens(lists: readonly IfList[]): Set<string> {
  const tokens = new Set<string>();
  for (const l of lists) for (const c of l.conditions) if (c.token !== null && !c.not) tokens.add(c.token);
  return tokens;
}
