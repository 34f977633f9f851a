/** Types for build.mjs (plain JavaScript: bin/stormvault.js runs it before any loader exists). */
/** Builds dist/ from src/ when it is stale (always with force); resolves to whether it built. */
export declare function buildDist(options?: { force?: boolean }): Promise<boolean>;
/** Bundles the web UI (web/) into `outdir` with hashed names and writes its index.html; resolves to the initial asset names. */
export declare function buildWeb(options: { outdir: string; build?: unknown }): Promise<{ script: string; style: string | null }>;
/**
 * The end state of this build's migrations on an empty SQLite database, as a JSON string (what dist/
 * embeds; src/db/sqlite-snapshot.ts), or null with a warning when it cannot be captured.
 */
export declare function sqliteSnapshot(build: typeof import('esbuild').build, src?: string): Promise<string | null>;
