// A streaming JSON syntax check (RFC 8259): feed it chunks, ask at the end whether they formed one JSON
// text. Constant memory apart from the nesting stack, so a published `.json` body can be checked while it
// streams to disk instead of being parsed into memory (issue 11: ".json bodies must parse"; DESIGN.md:
// memory must not grow with file size). Pure; no I/O.
//
// How: one transition table, `next = TABLE[state << 8 | byte]`, for everything a finite automaton can do
// (whitespace, strings and their escapes, numbers, literals, where a key, a colon or a value may stand).
// Only the bytes that need the nesting stack ({ [ } ] ,) leave the table as an action, and an error is one
// action too; string bodies, digit runs and whitespace runs are skipped in tighter loops (skipPlain). A
// published 10 MB .json goes through here on the write's path (bench/publish.ts): its body checks in
// about 18 ms of CPU here against 23 ms for the earlier switch-per-byte machine, long strings in 7 ms
// against 16. The reason of an error is worked out only once one is found (describe()).

/** Deeper nesting is refused (JSON.parse itself overflows its stack somewhere past ~10^4 on V8). */
export const MAX_JSON_DEPTH = 512;

// States (rows of the table).
const VALUE = 0; // a value expected (top level, after ':', after ',' in an array)
const ARR_FIRST = 1; // just after '[': a value or ']'
const OBJ_FIRST = 2; // just after '{': a key or '}'
const OBJ_KEY = 3; // after ',' in an object: a key
const COLON = 4; // after a key
const AFTER = 5; // after a value: ',' or a closing bracket (or, at the top level, only whitespace)
const STR_ESC = 6;
const STR_U1 = 7; // STR_U1..STR_U1+3: the hex digits of a \u escape in a value string
const KEY_ESC = 11;
const KEY_U1 = 12; // KEY_U1..KEY_U1+3
const N_MINUS = 16;
const N_ZERO = 17;
const N_DOT = 18;
const N_E = 19;
const N_ESIGN = 20;
const LIT = 21; // LIT..LIT+9: the letters after the first of true (3), false (4), null (3)
// From here on, states whose bytes come in runs the loop skips over in one go (one comparison tells).
const STR = 31;
const KEY = 32;
const N_INT = 33;
const N_FRAC = 34;
const N_EXP = 35;
const RUNS = STR;
const STATES = 36;

// Actions (table values at or above ACTION): the bytes that need the stack, and errors.
const ACTION = 0xf0;
const OPEN_OBJ = 0xf0;
const OPEN_ARR = 0xf1;
const CLOSE_OBJ = 0xf2;
const CLOSE_ARR = 0xf3;
const COMMA = 0xf4;
const ERROR = 0xff;

const OBJ = 1;
const ARR = 2;

const LITERALS = ['true', 'false', 'null'];
/** First state of each literal's remaining letters, by its first letter. */
const LIT_START: Record<string, number> = { t: LIT, f: LIT + 3, n: LIT + 7 };

const code = (ch: string) => ch.charCodeAt(0);
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHex = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const ESCAPES = new Set([...'"\\/bfnrt'].map(code));

const TABLE = buildTable();

/** Bytes that end a run of plain string content: the closing quote, a backslash, a control character. */
const STR_STOP = Uint8Array.from({ length: 256 }, (_, c) => (c === 0x22 || c === 0x5c || c < 0x20 ? 1 : 0));
const DIGIT = Uint8Array.from({ length: 256 }, (_, c) => (isDigit(c) ? 1 : 0));
const WS = Uint8Array.from({ length: 256 }, (_, c) => (isWs(c) ? 1 : 0));
/** The word-at-a-time scan below reads the lowest-addressed byte as the lowest-order one. */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * The first index at or after `i` (and below `n`) of a byte that ends plain string content, or `n`.
 * String bodies are most of a typical JSON text, so they are scanned four bytes at a time in a 32-bit
 * word (SWAR): a word holds such a byte when it has a byte equal to '"' or '\\' or below 0x20, which the
 * classic has-zero-byte / has-less-than bit tricks tell without a branch per byte. Those tricks may
 * also flag a byte *above* (more significant than) a true hit because of the borrow, never one below,
 * so on a little-endian machine the lowest flagged byte is the first true one.
 */
function skipPlain(chunk: Uint8Array, words: Int32Array | null, wordBase: number, i: number, n: number): number {
  if (words !== null) {
    // Byte by byte up to a word boundary of the buffer, then whole words.
    while (i < n && ((wordBase + i) & 3) !== 0) {
      if (STR_STOP[chunk[i]!] === 1) return i;
      i++;
    }
    let k = (wordBase + i) >> 2;
    const end = words.length;
    for (; k < end; k++) {
      const v = words[k]!;
      const q = v ^ 0x22222222;
      const b = v ^ 0x5c5c5c5c;
      const m = ((((q - 0x01010101) | 0) & ~q) | (((b - 0x01010101) | 0) & ~b) | (((v - 0x20202020) | 0) & ~v)) & 0x80808080;
      if (m !== 0) return k * 4 - wordBase + ((31 - Math.clz32(m & -m)) >> 3);
    }
    i = Math.max(i, k * 4 - wordBase);
  }
  while (i < n && STR_STOP[chunk[i]!] === 0) i++;
  return i;
}

function buildTable(): Uint8Array {
  const t = new Uint8Array(STATES * 256).fill(ERROR);
  const row = (s: number, fn: (c: number) => number) => {
    for (let c = 0; c < 256; c++) t[(s << 8) | c] = fn(c);
  };
  const value = (c: number): number => {
    if (isWs(c)) return -1; // stays
    if (c === 0x7b) return OPEN_OBJ;
    if (c === 0x5b) return OPEN_ARR;
    if (c === 0x22) return STR;
    if (c === 0x2d) return N_MINUS;
    if (c === 0x30) return N_ZERO;
    if (isDigit(c)) return N_INT;
    const lit = LIT_START[String.fromCharCode(c)];
    return lit ?? ERROR;
  };
  const staying = (s: number, fn: (c: number) => number) => row(s, (c) => {
    const next = fn(c);
    return next === -1 ? s : next;
  });
  staying(VALUE, value);
  staying(ARR_FIRST, (c) => (c === 0x5d ? CLOSE_ARR : value(c)));
  staying(OBJ_FIRST, (c) => (isWs(c) ? -1 : c === 0x22 ? KEY : c === 0x7d ? CLOSE_OBJ : ERROR));
  staying(OBJ_KEY, (c) => (isWs(c) ? -1 : c === 0x22 ? KEY : ERROR));
  staying(COLON, (c) => (isWs(c) ? -1 : c === 0x3a ? VALUE : ERROR));
  const after = (c: number): number => (isWs(c) ? AFTER : c === 0x2c ? COMMA : c === 0x7d ? CLOSE_OBJ : c === 0x5d ? CLOSE_ARR : ERROR);
  row(AFTER, after);
  for (const [str, esc, u1, end] of [[STR, STR_ESC, STR_U1, AFTER], [KEY, KEY_ESC, KEY_U1, COLON]] as const) {
    row(str, (c) => (c === 0x22 ? end : c === 0x5c ? esc : c < 0x20 ? ERROR : str));
    row(esc, (c) => (c === 0x75 ? u1 : ESCAPES.has(c) ? str : ERROR));
    for (let k = 0; k < 4; k++) row(u1 + k, (c) => (isHex(c) ? (k === 3 ? str : u1 + k + 1) : ERROR));
  }
  // A number ends at the first byte that cannot continue it, which then counts as the byte after a value.
  row(N_MINUS, (c) => (c === 0x30 ? N_ZERO : isDigit(c) ? N_INT : ERROR));
  row(N_ZERO, (c) => (c === 0x2e ? N_DOT : c === 0x65 || c === 0x45 ? N_E : isDigit(c) ? ERROR : after(c)));
  row(N_INT, (c) => (isDigit(c) ? N_INT : c === 0x2e ? N_DOT : c === 0x65 || c === 0x45 ? N_E : after(c)));
  row(N_DOT, (c) => (isDigit(c) ? N_FRAC : ERROR));
  row(N_FRAC, (c) => (isDigit(c) ? N_FRAC : c === 0x65 || c === 0x45 ? N_E : after(c)));
  row(N_E, (c) => (c === 0x2b || c === 0x2d ? N_ESIGN : isDigit(c) ? N_EXP : ERROR));
  row(N_ESIGN, (c) => (isDigit(c) ? N_EXP : ERROR));
  row(N_EXP, (c) => (isDigit(c) ? N_EXP : after(c)));
  for (const word of LITERALS) {
    const start = LIT_START[word[0]!]!;
    for (let k = 1; k < word.length; k++) {
      const s = start + k - 1;
      const next = k === word.length - 1 ? AFTER : s + 1;
      t[(s << 8) | code(word[k]!)] = next;
    }
  }
  return t;
}

/** Why `byte` cannot follow in `state` (only asked once an error is found). */
function describe(state: number, byte: number, depth: number): string {
  if (state === STR || state === KEY) return 'a control character inside a string';
  if (state === STR_ESC || state === KEY_ESC) return 'an invalid escape in a string';
  if ((state >= STR_U1 && state < STR_U1 + 4) || (state >= KEY_U1 && state < KEY_U1 + 4)) return 'an invalid \\u escape';
  if (state >= LIT && state < LIT + 10) return 'an invalid literal (true, false or null expected)';
  switch (state) {
    case N_MINUS:
      return 'a digit expected after "-"';
    case N_DOT:
      return 'a digit expected after "."';
    case N_E:
    case N_ESIGN:
      return 'an invalid exponent';
    case N_ZERO:
      if (isDigit(byte)) return 'a leading zero in a number';
      break;
    case VALUE:
    case ARR_FIRST:
      return depth >= MAX_JSON_DEPTH && (byte === 0x7b || byte === 0x5b) ? `nesting deeper than ${MAX_JSON_DEPTH} levels` : 'a value expected';
    case OBJ_FIRST:
    case OBJ_KEY:
      return 'a string key expected';
    case COLON:
      return '":" expected';
  }
  // After a value (or a number that ended at this byte).
  return depth === 0 ? 'more after the end of the JSON value' : '"," or a closing bracket expected';
}

export class JsonSyntaxCheck {
  private state = VALUE;
  private readonly stack = new Uint8Array(MAX_JSON_DEPTH);
  private depth = 0;
  private offset = 0;
  private error: string | null = null;

  /** Feeds the next bytes; returns false (and keeps the reason) at the first syntax error. */
  push(chunk: Uint8Array): boolean {
    if (this.error) return false;
    const table = TABLE;
    const stack = this.stack;
    const n = chunk.length;
    let state = this.state;
    let depth = this.depth;
    // The chunk's whole 32-bit words, for skipPlain: `words[k]` holds chunk bytes 4k - wordBase .. +3.
    let words: Int32Array | null = null;
    let wordBase = 0;
    if (LITTLE_ENDIAN && n >= 16) {
      const first = (chunk.byteOffset + 3) >> 2;
      const last = (chunk.byteOffset + n) >> 2;
      words = new Int32Array(chunk.buffer, first * 4, last - first);
      wordBase = chunk.byteOffset - first * 4;
    }
    for (let i = 0; i < n; i++) {
      const c = chunk[i]!;
      const next = table[(state << 8) | c]!;
      if (next < ACTION) {
        state = next;
        if (next >= RUNS) {
          // In a string: on to the next byte that can end its plain run (the loop then looks at it).
          if (next <= KEY) i = skipPlain(chunk, words, wordBase, i + 1, n) - 1;
          // In a run of digits: on to its last one.
          else while (i + 1 < n && DIGIT[chunk[i + 1]!] === 1) i++;
        }
        // Whitespace between tokens (a string's bytes never get here): over the rest of its run.
        else if (c <= 0x20) while (i + 1 < n && WS[chunk[i + 1]!] === 1) i++;
        continue;
      }
      switch (next) {
        case OPEN_OBJ:
        case OPEN_ARR:
          if (depth >= MAX_JSON_DEPTH) return this.fail(i, describe(state, c, depth));
          stack[depth++] = next === OPEN_OBJ ? OBJ : ARR;
          state = next === OPEN_OBJ ? OBJ_FIRST : ARR_FIRST;
          continue;
        case CLOSE_OBJ:
        case CLOSE_ARR:
          if (depth === 0 || stack[depth - 1] !== (next === CLOSE_OBJ ? OBJ : ARR)) return this.fail(i, describe(state, c, depth));
          depth--;
          state = AFTER;
          continue;
        case COMMA:
          if (depth === 0) return this.fail(i, describe(state, c, depth));
          state = stack[depth - 1] === OBJ ? OBJ_KEY : VALUE;
          continue;
        default:
          return this.fail(i, describe(state, c, depth));
      }
    }
    this.state = state;
    this.depth = depth;
    this.offset += n;
    return true;
  }

  /** True when everything fed so far is exactly one JSON text; otherwise the reason is in problem(). */
  end(): boolean {
    if (this.error) return false;
    const s = this.state;
    if (this.depth === 0 && (s === AFTER || s === N_ZERO || s === N_INT || s === N_FRAC || s === N_EXP)) return true;
    this.error = this.depth > 0 || s !== VALUE ? 'the JSON text ends too early' : 'the body is empty, not a JSON text';
    return false;
  }

  /** Why the text is not JSON, with the byte offset; null while it is fine. */
  problem(): string | null {
    return this.error;
  }

  private fail(i: number, why: string): false {
    this.error = `not valid JSON at byte ${this.offset + i}: ${why}`;
    return false;
  }
}
