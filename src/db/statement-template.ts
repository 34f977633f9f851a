import type { Compilable, CompiledQuery } from 'kysely';

const ARG = '\u0000sv-arg:';

/**
 * A statement that Kysely builds and compiles ONCE; every call binds new values to it. Kysely has no
 * prepared statements: it builds an immutable query tree and compiles it to SQL on every execution, which
 * for a task claim costs more CPU than SQLite takes to run it (~0.2 ms against ~0.1 ms, bench/collect).
 * For the statements that run once per task or per collected device (the claim, the completion, the
 * collector's reads and writes). `build` receives `arg(i)` and uses it wherever value i
 * goes (as often as needed); every other value stays the constant it was compiled with. The SQL is the
 * builder's own, so it stays dialect-correct; only the parameter list is rebuilt per call.
 */
export class StatementTemplate {
  readonly #sql: string;
  readonly #query: CompiledQuery['query'];
  /** Per parameter: the index of the argument it takes, or -1 for a constant. */
  readonly #slots: readonly number[];
  readonly #constants: readonly unknown[];
  readonly #arity: number;

  constructor(arity: number, build: (arg: (i: number) => string) => Compilable<unknown>) {
    const compiled = build((i) => `${ARG}${i}\u0000`).compile();
    const slots = compiled.parameters.map((p) => (typeof p === 'string' && p.startsWith(ARG) ? Number(p.slice(ARG.length, -1)) : -1));
    for (let i = 0; i < arity; i++) if (!slots.includes(i)) throw new Error(`statement template: argument ${i} is not used`);
    if (compiled.sql.includes('\u0000') || slots.some((i) => i >= arity)) throw new Error('statement template: an argument was inlined or is out of range');
    this.#sql = compiled.sql;
    this.#query = compiled.query;
    this.#slots = slots;
    this.#constants = compiled.parameters;
    this.#arity = arity;
  }

  /** The compiled query with `args` bound (exactly `arity` of them). */
  bind<R>(args: readonly unknown[]): CompiledQuery<R> {
    if (args.length !== this.#arity) throw new Error(`statement template: ${this.#arity} arguments expected, got ${args.length}`);
    const slots = this.#slots;
    const parameters = new Array<unknown>(slots.length);
    for (let i = 0; i < slots.length; i++) parameters[i] = slots[i]! < 0 ? this.#constants[i] : args[slots[i]!];
    return { sql: this.#sql, query: this.#query, parameters, queryId: { queryId: '' } } as CompiledQuery<R>;
  }
}

const perDialect = new WeakMap<object, Map<string, StatementTemplate>>();

/**
 * The template named `key` for `db`'s dialect, built on first use and kept for the process. Keyed by the
 * Kysely adapter, which a database's transactions and `withTables()` views share, so a repository bound to
 * a transaction reuses the templates its parent compiled.
 */
export function statementFor(db: { getExecutor(): { readonly adapter: object } }, key: string, arity: number, build: (arg: (i: number) => string) => Compilable<unknown>): StatementTemplate {
  const adapter = db.getExecutor().adapter;
  let templates = perDialect.get(adapter);
  if (!templates) perDialect.set(adapter, (templates = new Map()));
  let t = templates.get(key);
  if (!t) templates.set(key, (t = new StatementTemplate(arity, build)));
  return t;
}
