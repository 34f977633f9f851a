import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// WAL checkpoints of a long-running process's SQLite database on a thread of their own.
//
// better-sqlite3 is synchronous, and SQLite runs an automatic checkpoint inside the commit that takes the
// WAL past wal_autocheckpoint pages (1,000 by default): it copies the WAL's pages into the database file
// and, with synchronous=NORMAL, fsyncs both. That commit — and with it the whole event loop — then waits
// for the disk: in bench/collect (issue 10) 79–237 database calls per run took over 1 ms, 0.4–1.4 s of
// the event loop in all, mostly such checkpoints.
//
// Here a worker thread with its own connection runs a PASSIVE checkpoint every `everyMs` (PASSIVE never
// waits for readers or writers, and writers keep appending to the WAL while it copies), so the fsyncs
// happen off the event loop, and the main connection's automatic checkpoint is moved up to
// `backstopPages`: it runs only when the thread falls far behind (a long reader, or the thread gone), so
// the WAL stays bounded whatever happens to the thread. When the WAL has been copied completely, the next
// writer starts it over from its beginning, as with automatic checkpoints.
//
// Only `serve` and `worker` start one (AppOptions.sqliteCheckpointThread): a one-shot command would pay
// the thread's start-up for nothing, and a process that stops runs a final checkpoint as it closes anyway.

export interface SqliteCheckpointerOptions {
  /** How often the thread runs a PASSIVE checkpoint (default 100 ms). */
  everyMs?: number;
  /** The main connection's wal_autocheckpoint while the thread runs (default 10,000 pages, ~40 MB). */
  backstopPages?: number;
}

export interface SqliteCheckpointer {
  /** Checkpoints the thread has run (successful or busy) so far, as it last reported. */
  readonly runs: number;
  /** Stops the thread and closes its connection; resolves when it has exited. */
  stop(): Promise<void>;
}

interface Pragmas {
  pragma(source: string, options?: { simple?: boolean }): unknown;
}

// CommonJS, run by `new Worker(…, { eval: true })`: dist/ is one bundle, with no separate file to point a
// worker at. `require` resolves from the path given (better-sqlite3's entry, resolved by the parent).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 0');
let runs = 0;
let stopping = false;
const run = () => {
  if (stopping) return;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    // SQLITE_BUSY: another connection (another process, or the backstop) is checkpointing right now.
    if (err && err.code !== 'SQLITE_BUSY' && err.code !== 'SQLITE_LOCKED') parentPort.postMessage({ error: String(err && err.message) });
  }
  runs++;
  parentPort.postMessage({ runs });
  timer = setTimeout(run, workerData.everyMs);
};
let timer = setTimeout(run, workerData.everyMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  stopping = true;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * Starts the checkpoint thread for the database file `file` that `main` (the process's connection) has
 * open in WAL mode, and moves `main`'s automatic checkpoint up to the backstop. `onError` hears of
 * checkpoint failures other than a busy database (they are retried at the next tick).
 */
export function startSqliteCheckpointer(main: Pragmas, file: string, options: SqliteCheckpointerOptions = {}, onError: (message: string) => void = () => {}): SqliteCheckpointer {
  const everyMs = options.everyMs ?? 100;
  const backstop = options.backstopPages ?? 10_000;
  const defaultPages = Number(main.pragma('wal_autocheckpoint', { simple: true }));
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file, everyMs }, resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8 } });
  worker.unref();
  let runs = 0;
  let exited = false;
  const gone = new Promise<void>((resolve) => worker.once('exit', () => {
    exited = true;
    // Without the thread the connection checkpoints for itself again, as SQLite does by default.
    try {
      main.pragma(`wal_autocheckpoint = ${defaultPages}`);
    } catch {
      // the connection is already closed: nothing to restore
    }
    resolve();
  }));
  worker.on('message', (m: { runs?: number; error?: string }) => {
    if (m.runs !== undefined) runs = m.runs;
    if (m.error !== undefined) onError(m.error);
  });
  worker.on('error', (err) => onError(err.message));
  main.pragma(`wal_autocheckpoint = ${backstop}`);
  return {
    get runs() {
      return runs;
    },
    stop: async () => {
      if (!exited) worker.postMessage('stop');
      await gone;
    },
  };
}
