/** Types for build.mjs (plain JavaScript: bin/stormvault.js runs it before any loader exists). */
/** Builds dist/ from src/ when it is stale (always with force); resolves to whether it built. */
export declare function buildDist(options?: { force?: boolean }): Promise<boolean>;
