// A streaming JSON syntax check (RFC 8259): feed it chunks, ask at the end whether they formed one JSON
// text. Constant memory apart from the nesting stack, so a published `.json` body can be checked while it
// streams to disk instead of being parsed into memory (issue 11: ".json bodies must parse"; DESIGN.md:
// memory must not grow with file size). Pure; no I/O.

const enum M {
  Value,
  ArrValueOrEnd,
  ObjKeyOrEnd,
  ObjKey,
  Colon,
  AfterValue,
  Str,
  StrEsc,
  StrU,
  NumMinus,
  NumZero,
  NumInt,
  NumDot,
  NumFrac,
  NumE,
  NumESign,
  NumExp,
  Literal,
  Done,
}

const OBJ = 1;
const ARR = 2;
/** Deeper nesting is refused (JSON.parse itself overflows its stack somewhere past ~10^4 on V8). */
export const MAX_JSON_DEPTH = 512;

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHex = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/** Byte classes as tables (one look-up per byte in the hot loops). */
const table = (test: (c: number) => boolean) => Uint8Array.from({ length: 256 }, (_, c) => (test(c) ? 1 : 0));
/** Bytes that end a run of plain string content: the closing quote, a backslash, a control character. */
const STR_STOP = table((c) => c === 0x22 || c === 0x5c || c < 0x20);
const DIGIT = table(isDigit);
const WS = table((c) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09);

const LITERALS: Record<number, Uint8Array> = {
  0x74: new TextEncoder().encode('true'),
  0x66: new TextEncoder().encode('false'),
  0x6e: new TextEncoder().encode('null'),
};

export class JsonSyntaxCheck {
  private mode = M.Value;
  private readonly stack: number[] = [];
  private uCount = 0;
  private literal: Uint8Array | null = null;
  private litPos = 0;
  private offset = 0;
  private error: string | null = null;

  /** Feeds the next bytes; returns false (and keeps the reason) at the first syntax error. */
  push(chunk: Uint8Array): boolean {
    if (this.error) return false;
    // The state lives in locals while the chunk is scanned (written back at the end): a published 10 MB
    // .json goes through here byte by byte, on the request's path (issue 11, bench/publish write p99).
    const n = chunk.length;
    const stack = this.stack;
    let mode = this.mode;
    let keyPending = this.keyPending;
    let i = 0;
    while (i < n) {
      switch (mode) {
        case M.Str: {
          // The hot loop: plain string bytes, one table look-up each.
          while (i < n && STR_STOP[chunk[i]!] === 0) i++;
          if (i >= n) break;
          const d = chunk[i]!;
          if (d === 0x22) {
            mode = keyPending ? M.Colon : stack.length === 0 ? M.Done : M.AfterValue;
            keyPending = false;
          } else if (d === 0x5c) mode = M.StrEsc;
          else return this.fail(i, 'a control character inside a string');
          i++;
          continue;
        }
        case M.StrEsc: {
          const c = chunk[i]!;
          if (c === 0x75) {
            mode = M.StrU;
            this.uCount = 0;
          } else if (c === 0x22 || c === 0x5c || c === 0x2f || c === 0x62 || c === 0x66 || c === 0x6e || c === 0x72 || c === 0x74) mode = M.Str;
          else return this.fail(i, 'an invalid escape in a string');
          i++;
          continue;
        }
        case M.StrU:
          if (!isHex(chunk[i]!)) return this.fail(i, 'an invalid \\u escape');
          if (++this.uCount === 4) mode = M.Str;
          i++;
          continue;
        case M.Literal:
          if (chunk[i] !== this.literal![this.litPos]) return this.fail(i, 'an invalid literal (true, false or null expected)');
          i++;
          if (++this.litPos === this.literal!.length) mode = stack.length === 0 ? M.Done : M.AfterValue;
          continue;
        case M.NumMinus: {
          const c = chunk[i]!;
          if (c === 0x30) mode = M.NumZero;
          else if (DIGIT[c] === 1) mode = M.NumInt;
          else return this.fail(i, 'a digit expected after "-"');
          i++;
          continue;
        }
        case M.NumZero: {
          const c = chunk[i]!;
          if (c === 0x2e) mode = M.NumDot;
          else if (c === 0x65 || c === 0x45) mode = M.NumE;
          else if (DIGIT[c] === 1) return this.fail(i, 'a leading zero in a number');
          else {
            mode = stack.length === 0 ? M.Done : M.AfterValue;
            continue; // the same byte again, as what follows the number
          }
          i++;
          continue;
        }
        case M.NumInt: {
          while (i < n && DIGIT[chunk[i]!] === 1) i++;
          if (i >= n) break;
          const c = chunk[i]!;
          if (c === 0x2e) mode = M.NumDot;
          else if (c === 0x65 || c === 0x45) mode = M.NumE;
          else {
            mode = stack.length === 0 ? M.Done : M.AfterValue;
            continue;
          }
          i++;
          continue;
        }
        case M.NumDot:
          if (DIGIT[chunk[i]!] !== 1) return this.fail(i, 'a digit expected after "."');
          mode = M.NumFrac;
          i++;
          continue;
        case M.NumFrac: {
          while (i < n && DIGIT[chunk[i]!] === 1) i++;
          if (i >= n) break;
          const c = chunk[i]!;
          if (c === 0x65 || c === 0x45) {
            mode = M.NumE;
            i++;
            continue;
          }
          mode = stack.length === 0 ? M.Done : M.AfterValue;
          continue;
        }
        case M.NumE: {
          const c = chunk[i]!;
          if (c === 0x2b || c === 0x2d) mode = M.NumESign;
          else if (DIGIT[c] === 1) mode = M.NumExp;
          else return this.fail(i, 'an invalid exponent');
          i++;
          continue;
        }
        case M.NumESign:
          if (DIGIT[chunk[i]!] !== 1) return this.fail(i, 'an invalid exponent');
          mode = M.NumExp;
          i++;
          continue;
        case M.NumExp: {
          while (i < n && DIGIT[chunk[i]!] === 1) i++;
          if (i >= n) break;
          mode = stack.length === 0 ? M.Done : M.AfterValue;
          continue;
        }
        default:
          break;
      }
      if (i >= n) break;
      // Structural modes: whitespace is skipped everywhere here.
      const c = chunk[i]!;
      if (WS[c] === 1) {
        i++;
        continue;
      }
      switch (mode) {
        case M.Value:
        case M.ArrValueOrEnd:
          if (mode === M.ArrValueOrEnd && c === 0x5d) {
            stack.pop();
            mode = stack.length === 0 ? M.Done : M.AfterValue;
          } else if (c === 0x7b || c === 0x5b) {
            if (stack.length >= MAX_JSON_DEPTH) return this.fail(i, 'a value expected');
            stack.push(c === 0x7b ? OBJ : ARR);
            mode = c === 0x7b ? M.ObjKeyOrEnd : M.ArrValueOrEnd;
          } else if (c === 0x22) {
            mode = M.Str;
            keyPending = false;
          } else if (c === 0x2d) mode = M.NumMinus;
          else if (c === 0x30) mode = M.NumZero;
          else if (DIGIT[c] === 1) mode = M.NumInt;
          else {
            const lit = LITERALS[c];
            if (!lit) return this.fail(i, 'a value expected');
            this.literal = lit;
            this.litPos = 1;
            mode = M.Literal;
          }
          break;
        case M.ObjKeyOrEnd:
        case M.ObjKey:
          if (c === 0x22) {
            mode = M.Str;
            keyPending = true;
          } else if (mode === M.ObjKeyOrEnd && c === 0x7d) {
            stack.pop();
            mode = stack.length === 0 ? M.Done : M.AfterValue;
          } else return this.fail(i, 'a string key expected');
          break;
        case M.Colon:
          if (c !== 0x3a) return this.fail(i, '":" expected');
          mode = M.Value;
          break;
        case M.AfterValue: {
          const top = stack[stack.length - 1];
          if (top === OBJ && c === 0x2c) mode = M.ObjKey;
          else if (top === ARR && c === 0x2c) mode = M.Value;
          else if ((top === OBJ && c === 0x7d) || (top === ARR && c === 0x5d)) {
            stack.pop();
            mode = stack.length === 0 ? M.Done : M.AfterValue;
          } else return this.fail(i, top === undefined ? 'more after the end of the JSON value' : '"," or a closing bracket expected');
          break;
        }
        case M.Done:
          return this.fail(i, 'more after the end of the JSON value');
        default:
          return this.fail(i, 'unexpected byte');
      }
      i++;
    }
    this.mode = mode;
    this.keyPending = keyPending;
    this.offset += n;
    return true;
  }

  private keyPending = false;

  /** True when everything fed so far is exactly one JSON text; otherwise the reason is in problem(). */
  end(): boolean {
    if (this.error) return false;
    const m = this.mode;
    if (this.stack.length === 0 && (m === M.Done || m === M.NumZero || m === M.NumInt || m === M.NumFrac || m === M.NumExp)) return true;
    this.error = this.stack.length > 0 || m !== M.Value ? 'the JSON text ends too early' : 'the body is empty, not a JSON text';
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
