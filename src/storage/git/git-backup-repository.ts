import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { access, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import {
  BackupVersionNotFound,
  isBackupRelPath,
  type BackupRepository,
  type StoredVersion,
  type StoreVersionInput,
  type VersionInfo,
} from '../backup-repository.port.ts';
import { GitObjectReader } from './git-object-reader.ts';

export interface GitBackupRepositoryOptions {
  /** The bare repository's folder; created (with `git init --bare`) on first use. */
  readonly gitDir: string;
  /** Branch versions are committed to (default "main"). */
  readonly branch?: string;
  /** How often a lost compare-and-swap on the branch is retried before giving up (default 200). */
  readonly maxRetries?: number;
}

const ZERO = '0'.repeat(40);
const OID = /^[0-9a-f]{40}$/;
const BRANCH_RE = /^(?!.*\.\.)(?!.*\/\/)(?!\/)(?!.*\/$)(?!.*\.lock$)[A-Za-z0-9._/-]{1,100}$/;
// Storage refs: `<branch>:<group>/<device>@<commit>` (issue 9).
const REF_RE = /^([A-Za-z0-9._/-]{1,100}):([^@:]+)@([0-9a-f]{40})$/;

/** The parts of a git storage ref, or null when it is not one (or its path is not `<group>/<device>`). */
export function parseGitStorageRef(storageRef: string): { branch: string; relPath: string; commit: string } | null {
  const m = typeof storageRef === 'string' ? REF_RE.exec(storageRef) : null;
  if (!m || !isBackupRelPath(m[2]!)) return null;
  return { branch: m[1]!, relPath: m[2]!, commit: m[3]! };
}

/**
 * Earlier versions kept private index files in `<gitDir>/stormvault-index/` (`<host>.<pid>.<random>`);
 * those of processes of this host that are gone are still swept on first use.
 */
const INDEX_DIR = 'stormvault-index';

/** Thrown by git plumbing with its stderr (never shown to HTTP clients: workers log it). */
export class GitCommandError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`git ${args[0]} failed (exit ${exitCode}): ${stderr.trim().slice(0, 500)}`);
    this.name = 'GitCommandError';
  }
}

interface SyncedState {
  head: string | null;
  blobs: Map<string, string>;
}

/** A store waiting for its batch: stores queued while a batch is being written go in the next one. */
interface QueuedStore {
  input: StoreVersionInput;
  sha256: string;
  /** The content's git blob id, computed here: "unchanged" is decided before any git process runs. */
  blob: string;
  resolve: (v: StoredVersion) => void;
  reject: (err: unknown) => void;
}

/** At most this many stores of one repository object are written by one `git fast-import`. */
const MAX_BATCH = 64;

/** Private refs fast-import commits to before the branch's compare-and-swap: `<prefix><host>.<pid>.<uuid>`. */
const TMP_REF_PREFIX = 'refs/stormvault/tmp/';

/** `git gc --auto` runs after the first commit and then every GC_EVERY commits of one repository object. */
const GC_EVERY = 25;

interface GitRun {
  stdout: Buffer;
  stderr: string;
  code: number | null;
}

/**
 * A BackupRepository in a bare git repository, written with system git's plumbing only (issue 9), never
 * a work tree or the shared index: the stores queued on this object are written as one batch, each its
 * own commit — one `git fast-import` on a private temporary ref from the head this object last saw, then
 * one `git update-ref --stdin` transaction that moves the branch from that head (a compare-and-swap) and
 * deletes the temporary ref. A writer that lost the race re-reads the branch and writes its batch again,
 * so many worker processes share a repository without ever touching `index.lock` or losing a version
 * (Oxidized #3530). Commits are `update <group>/<device>`, authored by the location at the collection
 * time, readable with `git log`. `git gc --auto` runs after a repository's first commits and every 25
 * commits of a repository object (Oxidized #3269, #3121: repositories that grow without gc). While no
 * other process writes, a batch costs two git processes: the object keeps a path → blob map of the
 * branch it last saw (re-read whenever the swap fails) and computes blob ids itself, so an unchanged
 * configuration costs none.
 */
export class GitBackupRepository implements BackupRepository {
  readonly #gitDir: string;
  readonly #branch: string;
  readonly #maxRetries: number;
  #initialised: Promise<void> | undefined;
  /**
   * Stores of this object are written one batch at a time (in-process writers would only lose CAS races
   * to each other): every store queued while a batch is written goes in the next one.
   */
  #queue: QueuedStore[] = [];
  #writing: Promise<void> | undefined;
  /** The branch as this object last saw it (head, path → blob); dropped on any doubt. */
  #synced: SyncedState | undefined;
  #commitsSinceGc = 0;
  /** One long-lived `git cat-file --batch` for reads (diffs, index rebuilds), opened on first use. */
  #reader: GitObjectReader | undefined;

  constructor(options: GitBackupRepositoryOptions) {
    this.#gitDir = path.resolve(options.gitDir);
    this.#branch = options.branch ?? 'main';
    if (!BRANCH_RE.test(this.#branch)) throw new Error(`invalid branch name ${JSON.stringify(this.#branch)}`);
    this.#maxRetries = options.maxRetries ?? 200;
  }

  get gitDir(): string {
    return this.#gitDir;
  }

  store(input: StoreVersionInput): Promise<StoredVersion> {
    if (!isBackupRelPath(input.relPath)) return Promise.reject(new Error(`invalid backup path ${JSON.stringify(input.relPath)}`));
    return new Promise<StoredVersion>((resolve, reject) => {
      const content = input.content;
      this.#queue.push({ input, sha256: createHash('sha256').update(content).digest('hex'), blob: gitBlobId(content), resolve, reject });
      this.#writing ??= this.#writeQueued();
    });
  }

  /** Writes batches until the queue is empty; `#writing` is cleared in the same tick the queue is seen empty. */
  async #writeQueued(): Promise<void> {
    await Promise.resolve(); // never finishes synchronously: `#writing` is assigned before it is cleared
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, MAX_BATCH);
      try {
        const results = await this.#storeBatch(batch);
        batch.forEach((q, i) => {
          const r = results[i]!;
          if (r instanceof Error) q.reject(r);
          else q.resolve(r);
        });
      } catch (err) {
        for (const q of batch) q.reject(err);
      }
    }
    this.#writing = undefined;
  }

  /**
   * Writes a batch of stores in order, each its own commit (`update <group>/<device>`, authored at its
   * collection time): one `git fast-import` writes every blob and commit, on a private temporary ref,
   * then one `git update-ref --stdin` moves the branch from the head this object last saw to the last
   * commit (the compare-and-swap) and deletes the temporary ref, in one transaction. Two git processes
   * per batch instead of five per store. A lost swap re-reads the branch and writes the whole batch again
   * on the new head ("unchanged" judged again too); the commits of the lost attempt are unreachable and
   * gc prunes them. A store whose sameContent throws fails alone.
   */
  async #storeBatch(batch: readonly QueuedStore[]): Promise<Array<StoredVersion | Error>> {
    await this.#init();
    const ref = `refs/heads/${this.#branch}`;
    for (let attempt = 0; ; attempt++) {
      const synced = (this.#synced ??= await this.#sync(ref));
      const headAtStart = synced.head;
      const results: Array<Error | { commitIndex: number } | { atCommit: number }> = [];
      /** Paths this batch changed so far → blob; contents of blobs not yet in the repository. */
      const changedTo = new Map<string, string>();
      const newBlobs = new Map<string, Buffer>();
      const commits: QueuedStore[] = [];
      for (const q of batch) {
        const current = changedTo.get(q.input.relPath) ?? synced.blobs.get(q.input.relPath) ?? null;
        let same = current === q.blob;
        if (!same && current !== null && q.input.sameContent) {
          try {
            const previous = newBlobs.get(current) ?? (await this.readObject(current));
            same = previous !== null && q.input.sameContent(previous, q.input.content);
          } catch (err) {
            results.push(err instanceof Error ? err : new Error(String(err)));
            continue;
          }
        }
        if (same) {
          // Current at the last commit so far (or at the head this object saw, none yet).
          results.push({ atCommit: commits.length - 1 });
          continue;
        }
        commits.push(q);
        changedTo.set(q.input.relPath, q.blob);
        newBlobs.set(q.blob, q.input.content);
        results.push({ commitIndex: commits.length - 1 });
      }

      let ids: string[] = [];
      let moved = false;
      if (commits.length === 0) {
        // "Unchanged" must be judged against the real head: another process may have moved the branch.
        moved = (await this.#head(ref)) !== synced.head;
      } else {
        const tmpRef = `${TMP_REF_PREFIX}${safeHost()}.${process.pid}.${randomUUID()}`;
        try {
          ids = await this.#fastImport(tmpRef, synced.head, commits);
        } catch (err) {
          this.#drop();
          await this.#run(['update-ref', '-d', tmpRef]);
          throw err;
        }
        // Optimistic: the branch is where this object last saw it. The swap proves it (or fails, and this
        // object re-reads the branch and writes the batch again).
        const swap = `update ${ref} ${ids.at(-1)} ${synced.head ?? ZERO}\ndelete ${tmpRef}\n`;
        const swapped = await this.#run(['update-ref', '-m', `update ${commits.map((c) => c.input.relPath).join(' ')}`.slice(0, 200), '--stdin'], { input: Buffer.from(swap) });
        if (swapped.code !== 0) {
          await this.#run(['update-ref', '-d', tmpRef]);
          moved = true;
          if (attempt >= this.#maxRetries) throw new GitCommandError(['update-ref'], swapped.code, swapped.stderr);
        } else {
          synced.head = ids.at(-1)!;
          for (const [p, b] of changedTo) synced.blobs.set(p, b);
          // gc --auto only counts loose objects unless there is work; every GC_EVERY commits keeps that cheap.
          this.#commitsSinceGc += ids.length;
          if (this.#commitsSinceGc >= GC_EVERY || headAtStart === null) {
            this.#commitsSinceGc = 0;
            await this.#run(['-c', 'gc.autoDetach=false', 'gc', '--auto', '--quiet']);
          }
        }
      }
      if (moved) {
        this.#drop();
        if (attempt >= this.#maxRetries) throw new GitCommandError(['update-ref'], null, 'the branch kept moving');
        // Lost the race (the branch moved, or another writer holds the ref's lock): back off a little, jittered.
        await new Promise((r) => setTimeout(r, Math.min(50, 2 + attempt * 2) * Math.random()));
        continue;
      }
      return results.map((r, i) => {
        if (r instanceof Error) return r;
        const q = batch[i]!;
        const out = { sha256: q.sha256, size: q.input.content.length };
        if ('commitIndex' in r) return { storageRef: `${this.#branch}:${q.input.relPath}@${ids[r.commitIndex]}`, ...out, changed: true };
        const at = r.atCommit >= 0 ? ids[r.atCommit]! : headAtStart!;
        return { storageRef: `${this.#branch}:${q.input.relPath}@${at}`, ...out, changed: false };
      });
    }
  }

  /** Reads the branch's head and its path → blob map, so that while no other process writes, a batch costs two git processes. */
  async #sync(ref: string): Promise<SyncedState> {
    const head = await this.#head(ref);
    const blobs = new Map<string, string>();
    if (head) {
      const listing = (await this.#git(['ls-tree', '-r', '-z', head])).toString();
      for (const entry of listing.split('\0')) {
        const m = /^\d+ blob ([0-9a-f]{40})\t(.+)$/s.exec(entry);
        if (m) blobs.set(m[2]!, m[1]!);
      }
    }
    return { head, blobs };
  }

  #drop(): void {
    this.#synced = undefined;
  }

  /**
   * One `git fast-import`: a blob and a commit per store, chained on `tmpRef` from `parent`; answers the
   * commit ids in order (`get-mark`). Authors are the location's, at the collection time; the committer
   * date is now (an index rebuild reads it as "stored at").
   */
  async #fastImport(tmpRef: string, parent: string | null, commits: readonly QueuedStore[]): Promise<string[]> {
    const parts: Buffer[] = [Buffer.from('feature done\n')];
    const now = `${Math.floor(Date.now() / 1000)} +0000`;
    commits.forEach((q, i) => {
      const { input } = q;
      const message = [`update ${input.relPath}`, '', `Collected-At: ${input.collectedAt.toISOString()}`];
      if (input.taskIdentifier) message.push(`Task-Identifier: ${input.taskIdentifier}`);
      const msg = Buffer.from(message.join('\n') + '\n');
      const who = `${identPart(input.author.name)} <${identPart(input.author.email)}>`;
      parts.push(Buffer.from(`blob\nmark :${2 * i + 1}\ndata ${input.content.length}\n`), input.content, Buffer.from('\n'));
      parts.push(
        Buffer.from(
          `commit ${tmpRef}\nmark :${2 * i + 2}\nauthor ${who} ${Math.floor(input.collectedAt.getTime() / 1000)} +0000\ncommitter ${who} ${now}\ndata ${msg.length}\n`,
        ),
        msg,
        Buffer.from(`${i === 0 && parent ? `from ${parent}\n` : ''}M 100644 :${2 * i + 1} ${input.relPath}\n\n`),
      );
    });
    parts.push(Buffer.from(commits.map((_, i) => `get-mark :${2 * i + 2}\n`).join('') + 'done\n'));
    const out = (await this.#git(['fast-import', '--quiet', '--done'], { input: Buffer.concat(parts) })).toString().trim().split('\n');
    if (out.length !== commits.length || !out.every((id) => OID.test(id))) throw new GitCommandError(['fast-import'], 0, `unexpected output: ${out.join(' ').slice(0, 200)}`);
    return out;
  }

  async read(storageRef: string): Promise<{ size: number; stream: Readable }> {
    const m = REF_RE.exec(storageRef);
    if (!m || !isBackupRelPath(m[2]!)) throw new BackupVersionNotFound(storageRef);
    await this.#init();
    const object = `${m[3]}:${m[2]}`;
    const sized = await this.#run(['cat-file', '-s', object]);
    if (sized.code !== 0) throw new BackupVersionNotFound(storageRef);
    const child = spawn('git', ['cat-file', 'blob', object], { env: this.#env(), stdio: ['ignore', 'pipe', 'ignore'] });
    return { size: Number(sized.stdout.toString().trim()), stream: child.stdout };
  }

  /** Daily upkeep (Oxidized #3269, #3121): git's own maintenance, which repacks only when needed. */
  async maintain(): Promise<void> {
    if (!(await this.#exists())) return;
    await this.#git(['-c', 'maintenance.autoDetach=false', 'maintenance', 'run', '--auto', '--quiet']);
  }

  /** One version's content in memory, through the long-lived `git cat-file --batch` (storage.read tasks). */
  async readBuffer(storageRef: string): Promise<Buffer> {
    const ref = parseGitStorageRef(storageRef);
    if (!ref) throw new BackupVersionNotFound(storageRef);
    const content = await this.readObject(`${ref.commit}:${ref.relPath}`);
    if (content === null) throw new BackupVersionNotFound(storageRef);
    return content;
  }

  /**
   * Every version on the branch, newest first (all paths, or one path), streamed from one `git log --raw`
   * so memory does not grow with the history: for index rebuilds, never for serving history pages. The
   * collection time and task identifier come from the commit's `Collected-At:` / `Task-Identifier:`
   * trailers (the author date and null for commits made by other tools, e.g. Oxidized's). Paths that are
   * not `<group>/<device>` are yielded with `valid: false` so a rebuild can report them.
   */
  async *history(relPath?: string): AsyncIterable<VersionInfo> {
    if (relPath !== undefined && !isBackupRelPath(relPath)) throw new Error(`invalid backup path ${JSON.stringify(relPath)}`);
    if (!(await this.#exists())) return;
    await this.#init();
    if (!(await this.#head(`refs/heads/${this.#branch}`))) return;
    // One record per commit: \x1e hash \x1f committer time \x1f author date \x1f body \x1d, then its raw
    // changes (`:100644 100644 <old> <new> M\t<path>`). Merges list no changes (their parents do).
    const args = ['log', '--no-renames', '--raw', '--no-abbrev', '--format=%x1e%H%x1f%ct%x1f%aI%x1f%B%x1d', this.#branch, '--'];
    if (relPath) args.push(relPath);
    const child = spawn('git', args, { env: this.#env(), stdio: ['ignore', 'pipe', 'ignore'] });
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    let commit = '';
    let committedAt = new Date(0);
    let authorDate = '';
    let body = '';
    let inBody = false;
    const RAW = /^:\d{6} (\d{6}) [0-9a-f]{40} ([0-9a-f]{40}) ([A-Z])\d*\t(.+)$/;
    try {
      for await (const line of lines) {
        if (line.startsWith('\x1e')) {
          const [hash, ct, date, rest] = line.slice(1).split('\x1f');
          commit = hash ?? '';
          committedAt = new Date(Number(ct) * 1000);
          authorDate = date ?? '';
          body = rest ?? '';
          inBody = !body.includes('\x1d');
          body = body.replace(/\x1d.*$/, '');
          continue;
        }
        if (inBody) {
          const end = line.indexOf('\x1d');
          if (end >= 0) {
            body += `\n${line.slice(0, end)}`;
            inBody = false;
          } else body += `\n${line}`;
          continue;
        }
        const m = RAW.exec(line);
        if (!m || !OID.test(commit)) continue;
        const [, mode, blob, status, p] = m;
        // Deletions are not versions; only regular files are configurations.
        if (status === 'D' || (mode !== '100644' && mode !== '100755')) continue;
        const collected = /^Collected-At: (\S+)$/m.exec(body)?.[1];
        const task = /^Task-Identifier: (\S+)$/m.exec(body)?.[1] ?? null;
        const when = collected && !Number.isNaN(Date.parse(collected)) ? new Date(collected) : new Date(authorDate);
        yield {
          storageRef: `${this.#branch}:${p}@${commit}`,
          relPath: p!,
          valid: isBackupRelPath(p!),
          collectedAt: when,
          taskIdentifier: task,
          blob: blob!,
          committedAt,
        };
      }
    } finally {
      child.kill();
    }
  }

  /**
   * Creates the bare repository on first use. Several processes may race: each initialises a temporary
   * folder next to it and renames it into place, so nobody ever sees a half-initialised repository.
   */
  #init(): Promise<void> {
    return (this.#initialised ??= (async () => {
      if (await this.#exists()) {
        await this.#sweepIndexFiles();
        return;
      }
      await mkdir(path.dirname(this.#gitDir), { recursive: true });
      const tmp = `${this.#gitDir}.sv-init-${randomUUID()}`;
      try {
        const r = await this.#run(['init', '--bare', '--quiet', `--initial-branch=${this.#branch}`], { noGitDir: true, extraArgs: [tmp] });
        if (r.code !== 0) throw new GitCommandError(['init'], r.code, r.stderr);
        await rename(tmp, this.#gitDir).catch(async (err: NodeJS.ErrnoException) => {
          // Another process won the race (the folder exists and is not empty): use its repository.
          if (!(await this.#exists())) throw err;
        });
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    })().catch((err) => {
      this.#initialised = undefined;
      throw err;
    }));
  }

  /**
   * Removes what processes of this host that are gone (killed, crashed) left: temporary refs between a
   * fast-import and its swap, and private index files of earlier versions of this class.
   */
  async #sweepIndexFiles(): Promise<void> {
    const dir = path.join(this.#gitDir, INDEX_DIR);
    const names = await readdir(dir).catch(() => [] as string[]);
    const host = safeHost();
    const dead = (name: string) => {
      const m = /^(.+)\.(\d+)\.[0-9a-f-]{36}(?:\.lock)?$/.exec(name);
      return m !== null && m[1] === host && !processAlive(Number(m[2]));
    };
    for (const name of names) if (dead(name)) await rm(path.join(dir, name), { force: true });
    // Temporary refs of a process killed between its fast-import and its swap (they keep garbage alive).
    const refs = await this.#run(['for-each-ref', '--format=%(refname)', TMP_REF_PREFIX]);
    const stale = refs.stdout.toString().split('\n').filter((r) => r.startsWith(TMP_REF_PREFIX) && dead(r.slice(TMP_REF_PREFIX.length)));
    if (stale.length > 0) await this.#run(['update-ref', '--stdin'], { input: Buffer.from(stale.map((r) => `delete ${r}\n`).join('')) });
  }

  /** Ends this object's long-lived git processes once its queued stores are written. The object stays usable. */
  async close(): Promise<void> {
    await this.#writing;
    this.#reader?.close();
    this.#reader = undefined;
    this.#synced = undefined;
  }

  /** The bytes of one object by name (`<commit>:<path>` or a blob id) through the long-lived reader; null when absent. */
  async readObject(name: string): Promise<Buffer | null> {
    await this.#init();
    if (!this.#reader || this.#reader.closed) this.#reader = new GitObjectReader(this.#env());
    return this.#reader.read(name);
  }

  /** Sizes of objects by name, with one `git cat-file --batch-check` (index rebuilds). Absent objects are left out. */
  async objectSizes(names: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (names.length === 0 || !(await this.#exists())) return out;
    const check = new GitObjectReader(this.#env(), { check: true });
    try {
      const sizes = await Promise.all(names.map((n) => check.size(n)));
      names.forEach((n, i) => {
        if (sizes[i] !== null) out.set(n, sizes[i]!);
      });
    } finally {
      check.close();
    }
    return out;
  }

  /** Whether `storageRef` names a version on this repository's branch now (its commit reachable, its path there). */
  async contains(storageRef: string): Promise<boolean> {
    const ref = parseGitStorageRef(storageRef);
    if (!ref || ref.branch !== this.#branch || !(await this.#exists())) return false;
    const present = await this.#run(['cat-file', '-e', `${ref.commit}:${ref.relPath}`]);
    if (present.code !== 0) return false;
    const onBranch = await this.#run(['merge-base', '--is-ancestor', ref.commit, `refs/heads/${this.#branch}`]);
    return onBranch.code === 0;
  }

  async #exists(): Promise<boolean> {
    return access(path.join(this.#gitDir, 'HEAD')).then(
      () => true,
      () => false,
    );
  }

  async #head(ref: string): Promise<string | null> {
    const r = await this.#run(['rev-parse', '-q', '--verify', `${ref}^{commit}`]);
    const out = r.stdout.toString().trim();
    return r.code === 0 && OID.test(out) ? out : null;
  }

  #env(extra: Record<string, string> = {}, noGitDir = false): NodeJS.ProcessEnv {
    // Only what git needs: no user or system config can change how plumbing behaves (hooks, gpg signing…).
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: this.#gitDir,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_TERMINAL_PROMPT: '0',
      LC_ALL: 'C',
      ...extra,
    };
    if (!noGitDir) env.GIT_DIR = this.#gitDir;
    return env;
  }

  async #git(args: string[], opts: { input?: Buffer; env?: Record<string, string> } = {}): Promise<Buffer> {
    const r = await this.#run(args, opts);
    if (r.code !== 0) throw new GitCommandError(args, r.code, r.stderr);
    return r.stdout;
  }

  #run(args: string[], opts: { input?: Buffer; env?: Record<string, string>; noGitDir?: boolean; extraArgs?: string[] } = {}): Promise<GitRun> {
    return new Promise((resolve, reject) => {
      const child = spawn('git', [...args, ...(opts.extraArgs ?? [])], { env: this.#env(opts.env, opts.noGitDir), stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(), code }));
      child.stdin.on('error', () => {}); // git may exit before reading all input (it reports on stderr)
      child.stdin.end(opts.input);
    });
  }
}

/** The git (SHA-1) blob id of `content`: what `git hash-object` would print. */
function gitBlobId(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

/** A name or e-mail as fast-import's ident line allows it (no angle brackets, no line breaks). */
function identPart(v: string): string {
  return v.replace(/[<>\n\r\0]/g, '').trim() || 'unknown';
}

function safeHost(): string {
  return hostname().replace(/[^A-Za-z0-9-]/g, '_').slice(0, 64) || 'host';
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
