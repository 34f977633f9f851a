/**
 * The layering rules of DESIGN.md ("Rules of the house"), checked by `npm test` (`depcruise src`), so they
 * are checked, not hoped for (issue 8). docs/architecture.md says which rule lives where.
 * test/architecture/dependency-rules.test.ts proves on fixtures that each rule catches a violation.
 */

/** Start-up code that may touch the disk outside src/storage: it creates the data dir, reads the config file. */
const STARTUP_FS = ['^src/app\\.ts$', '^src/config/config\\.ts$', '^src/db/database\\.ts$'];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles between files (DESIGN.md: layering).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-module-folder-cycles',
      severity: 'error',
      comment: 'No import cycles between module folders: a capability depends on another in one direction only.',
      scope: 'folder',
      from: { path: '^src/modules/[^/]+$' },
      to: { path: '^src/modules/[^/]+$', circular: true },
    },
    {
      name: 'kysely-only-in-repositories',
      severity: 'error',
      comment:
        'Only *.repository.ts imports Kysely. src/db/ is the database layer itself (connection, table types, migrations, ' +
        'the one transaction helper); services reach it through type names from db/schema.ts, never kysely.',
      from: { path: '^src/', pathNot: ['\\.repository\\.ts$', '^src/db/'] },
      to: { path: '(^|/)node_modules/kysely/' },
    },
    {
      name: 'zod-only-through-lib-zod',
      severity: 'error',
      comment:
        'Schemas import zod from src/lib/zod.ts (zod/mini with its English messages), never zod itself: a bundle holding ' +
        'the full build too compiles ~150 KB more at every CLI command (issue 12, CLI start-up).',
      from: { path: '^src/', pathNot: '^src/lib/zod\\.ts$' },
      to: { path: '(^|/)node_modules/zod/' },
    },
    {
      name: 'http-core-knows-no-module',
      severity: 'error',
      comment: 'The HTTP core never imports a feature module; app.ts hands it what it needs (e.g. authenticate).',
      from: { path: '^src/http/' },
      to: { path: '^src/modules/' },
    },
    {
      name: 'core-knows-no-module',
      severity: 'error',
      comment: 'config, db, storage, tasks, streams and lib are the core: modules plug into them, not the other way round.',
      from: { path: '^src/(config|db|storage|tasks|streams|lib)/' },
      to: { path: '^src/modules/' },
    },
    {
      name: 'lib-is-pure',
      severity: 'error',
      comment: 'src/lib/ holds pure helpers (cron, crypto, codecs): they import nothing of the app.',
      from: { path: '^src/lib/' },
      to: { path: '^src/', pathNot: '^src/lib/' },
    },
    {
      name: 'no-foreign-repository',
      severity: 'error',
      comment: "A module uses another module through its service, never its repository (or tables).",
      from: { path: '^src/modules/([^/]+)/' },
      to: { path: '^src/modules/[^/]+/[^/]+\\.repository\\.ts$', pathNot: '^src/modules/$1/' },
    },
    {
      name: 'routes-skip-no-layer',
      severity: 'error',
      comment: 'routes → services → repositories: a routes file never imports a repository.',
      from: { path: '\\.routes\\.ts$' },
      to: { path: '\\.repository\\.ts$' },
    },
    {
      name: 'storage-owns-the-disk',
      severity: 'error',
      comment: 'Only src/storage/ touches fs, git or S3 SDKs; the start-up code named in STARTUP_FS creates the data dir.',
      from: { path: '^src/', pathNot: ['^src/storage/', ...STARTUP_FS] },
      to: { path: '^(node:)?(fs|fs/promises|child_process)$|(^|/)node_modules/@aws-sdk/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
