import { join } from 'node:path';
import nx from '@nx/eslint-plugin';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';

const TS_EXTENSIONS = ['.ts', '.tsx', '.cts', '.mts'];
const EXTENSIONS = [...TS_EXTENSIONS, '.js', '.jsx', '.cjs', '.mjs'];
const ALL_SOURCES = EXTENSIONS.map((extension) => `**/*${extension}`);
// import-x/order and import-x/no-cycle are errors: the tree was formatted once (`npm run format`
// fixes the import order and the layout; `npm run lint` checks both before the Nx lint targets).
const IMPORT_HYGIENE = 'error';

// Apps may use libs; libs never use apps. Within libs the arrows point one way:
// tasks -> messaging -> platform (DESIGN.md section 2).
const DEP_CONSTRAINTS = [
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:lib'] },
  { sourceTag: 'type:lib', onlyDependOnLibsWithTags: ['type:lib'] },
  { sourceTag: 'scope:platform', onlyDependOnLibsWithTags: ['scope:platform'] },
  { sourceTag: 'scope:messaging', onlyDependOnLibsWithTags: ['scope:platform', 'scope:messaging'] },
  {
    sourceTag: 'scope:tasks',
    onlyDependOnLibsWithTags: ['scope:platform', 'scope:messaging', 'scope:tasks'],
  },
  // Checks of the repository itself (tools/repo-checks) read the product's files as text and
  // import none of its projects, so they never need building to run.
  { sourceTag: 'type:tooling', onlyDependOnLibsWithTags: ['type:tooling'] },
  // The test helpers (libs/testing) import no product project, so every project's tests can use
  // them without a cycle (the tasks lib's own tests included).
  { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:testing'] },
  // The chaos suite drives the built apps as processes, over HTTP and AMQP: it imports nothing of
  // the product, only the test helpers and the api's client, as a user would.
  { sourceTag: 'type:test', onlyDependOnLibsWithTags: ['type:testing', 'scope:client'] },
  // The api's typed client stands alone (browser-safe: the console bundles it), on no other project.
  { sourceTag: 'scope:client', onlyDependOnLibsWithTags: [] },
];

// Where type:testing may be imported from: specs, and the helpers only specs import (a lib's
// src/testing.ts entry and its testing/ folder, an app's src/testing/ and test/ folders).
const TEST_FILES = [
  '**/*.spec.ts',
  '**/*.int-spec.ts',
  '**/*.e2e-spec.ts',
  '**/src/testing.ts',
  '**/testing/**/*.ts',
  '**/test/**/*.ts',
];

const moduleBoundaries = (depConstraints) => [
  'error',
  {
    enforceBuildableLibDependency: true,
    allow: ['^.*/eslint(\\.base)?\\.config\\.[cm]?[jt]s$'],
    depConstraints,
  },
];

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  ...nx.configs['flat/javascript'],
  {
    // The client's types are generated from the OpenAPI document (npx nx run client:generate).
    ignores: ['**/dist', '**/out-tsc', 'libs/client/src/generated'],
  },
  {
    files: ['**/*.ts', '**/*.tsx', '**/*.js', '**/*.jsx'],
    rules: { '@nx/enforce-module-boundaries': moduleBoundaries(DEP_CONSTRAINTS) },
  },
  {
    // Test code may also use the test helpers (libs/testing, type:testing); product code may not.
    files: TEST_FILES,
    rules: {
      '@nx/enforce-module-boundaries': moduleBoundaries(
        DEP_CONSTRAINTS.map((c) => ({
          ...c,
          onlyDependOnLibsWithTags: [...c.onlyDependOnLibsWithTags, 'type:testing'],
        })),
      ),
    },
  },
  {
    // Import hygiene: one import order (fixed by `eslint --fix`) and no circular imports, within a
    // project or across projects through the @tasksys/* paths (the resolver reads them from
    // tsconfig.base.json). Type-only imports do not count as cycles.
    files: ALL_SOURCES,
    plugins: { 'import-x': importX },
    settings: {
      // Without these, no-cycle cannot parse the .ts files it follows and finds no cycle at all.
      'import-x/extensions': EXTENSIONS,
      'import-x/parsers': { '@typescript-eslint/parser': TS_EXTENSIONS },
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          alwaysTryTypes: true,
          project: join(import.meta.dirname, 'tsconfig.base.json'),
        }),
      ],
      'import-x/internal-regex': '^@tasksys/',
    },
    rules: {
      'import-x/order': [
        IMPORT_HYGIENE,
        {
          // node:*, then packages, then the workspace's libs, then relative paths; no blank lines.
          groups: ['builtin', 'external', 'internal', ['parent', 'sibling', 'index']],
          'newlines-between': 'never',
          alphabetize: { order: 'asc', caseInsensitive: true },
        },
      ],
      'import-x/no-cycle': [IMPORT_HYGIENE, { ignoreExternal: true }],
    },
  },
  {
    files: ALL_SOURCES,
    // Override or add rules here
    rules: {},
  },
];
