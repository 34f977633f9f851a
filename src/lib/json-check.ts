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

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHex = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

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
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      const c = chunk[i]!;
      switch (this.mode) {
        case M.Str:
          // The hot loop: scan plain string bytes without leaving the case.
          while (i < n) {
            const d = chunk[i]!;
            if (d === 0x22) {
              this.mode = this.keyPending ? M.Colon : this.afterValue();
              this.keyPending = false;
              i++;
              break;
            }
            if (d === 0x5c) {
              this.mode = M.StrEsc;
              i++;
              break;
            }
            if (d < 0x20) return this.fail(i, 'a control character inside a string');
            i++;
          }
          continue;
        case M.StrEsc:
          if (c === 0x75) {
            this.mode = M.StrU;
            this.uCount = 0;
          } else if (c === 0x22 || c === 0x5c || c === 0x2f || c === 0x62 || c === 0x66 || c === 0x6e || c === 0x72 || c === 0x74) this.mode = M.Str;
          else return this.fail(i, 'an invalid escape in a string');
          i++;
          continue;
        case M.StrU:
          if (!isHex(c)) return this.fail(i, 'an invalid \\u escape');
          if (++this.uCount === 4) this.mode = M.Str;
          i++;
          continue;
        case M.Literal:
          if (c !== this.literal![this.litPos]) return this.fail(i, 'an invalid literal (true, false or null expected)');
          i++;
          if (++this.litPos === this.literal!.length) this.mode = this.afterValue();
          continue;
        case M.NumMinus:
          if (c === 0x30) this.mode = M.NumZero;
          else if (isDigit(c)) this.mode = M.NumInt;
          else return this.fail(i, 'a digit expected after "-"');
          i++;
          continue;
        case M.NumZero:
          if (c === 0x2e) this.mode = M.NumDot;
          else if (c === 0x65 || c === 0x45) this.mode = M.NumE;
          else if (isDigit(c)) return this.fail(i, 'a leading zero in a number');
          else {
            this.mode = this.afterValue();
            continue; // the same byte again, as what follows the number
          }
          i++;
          continue;
        case M.NumInt:
          if (isDigit(c)) {
            i++;
            continue;
          }
          if (c === 0x2e) this.mode = M.NumDot;
          else if (c === 0x65 || c === 0x45) this.mode = M.NumE;
          else {
            this.mode = this.afterValue();
            continue;
          }
          i++;
          continue;
        case M.NumDot:
          if (!isDigit(c)) return this.fail(i, 'a digit expected after "."');
          this.mode = M.NumFrac;
          i++;
          continue;
        case M.NumFrac:
          if (isDigit(c)) {
            i++;
            continue;
          }
          if (c === 0x65 || c === 0x45) {
            this.mode = M.NumE;
            i++;
            continue;
          }
          this.mode = this.afterValue();
          continue;
        case M.NumE:
          if (c === 0x2b || c === 0x2d) this.mode = M.NumESign;
          else if (isDigit(c)) this.mode = M.NumExp;
          else return this.fail(i, 'an invalid exponent');
          i++;
          continue;
        case M.NumESign:
          if (!isDigit(c)) return this.fail(i, 'an invalid exponent');
          this.mode = M.NumExp;
          i++;
          continue;
        case M.NumExp:
          if (isDigit(c)) {
            i++;
            continue;
          }
          this.mode = this.afterValue();
          continue;
        default:
          break;
      }
      // Structural modes: whitespace is skipped everywhere here.
      if (isWs(c)) {
        i++;
        continue;
      }
      switch (this.mode) {
        case M.Value:
        case M.ArrValueOrEnd:
          if (this.mode === M.ArrValueOrEnd && c === 0x5d) {
            this.stack.pop();
            this.mode = this.afterValue();
          } else if (!this.startValue(c)) return this.fail(i, 'a value expected');
          break;
        case M.ObjKeyOrEnd:
        case M.ObjKey:
          if (c === 0x22) {
            this.mode = M.Str;
            this.keyPending = true;
          } else if (this.mode === M.ObjKeyOrEnd && c === 0x7d) {
            this.stack.pop();
            this.mode = this.afterValue();
          } else return this.fail(i, 'a string key expected');
          break;
        case M.Colon:
          if (c !== 0x3a) return this.fail(i, '":" expected');
          this.mode = M.Value;
          break;
        case M.AfterValue: {
          const top = this.stack[this.stack.length - 1];
          if (top === OBJ && c === 0x2c) this.mode = M.ObjKey;
          else if (top === OBJ && c === 0x7d) {
            this.stack.pop();
            this.mode = this.afterValue();
          } else if (top === ARR && c === 0x2c) this.mode = M.Value;
          else if (top === ARR && c === 0x5d) {
            this.stack.pop();
            this.mode = this.afterValue();
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

  private startValue(c: number): boolean {
    if (c === 0x7b || c === 0x5b) {
      if (this.stack.length >= MAX_JSON_DEPTH) return false;
      this.stack.push(c === 0x7b ? OBJ : ARR);
      this.mode = c === 0x7b ? M.ObjKeyOrEnd : M.ArrValueOrEnd;
      return true;
    }
    if (c === 0x22) {
      this.mode = M.Str;
      this.keyPending = false;
      return true;
    }
    if (c === 0x2d) return (this.mode = M.NumMinus), true;
    if (c === 0x30) return (this.mode = M.NumZero), true;
    if (isDigit(c)) return (this.mode = M.NumInt), true;
    const lit = LITERALS[c];
    if (lit) {
      this.literal = lit;
      this.litPos = 1;
      this.mode = M.Literal;
      return true;
    }
    return false;
  }

  private afterValue(): M {
    return this.stack.length === 0 ? M.Done : M.AfterValue;
  }

  private fail(i: number, why: string): false {
    this.error = `not valid JSON at byte ${this.offset + i}: ${why}`;
    return false;
  }
}
