/** Types for dist-fresh.mjs (plain JavaScript so bin/stormvault.js can use it before any loader exists). */
export declare const STAMP: string;
export declare function newestMtime(dir: string): number;
export declare function isDistFresh(root: string): boolean;
