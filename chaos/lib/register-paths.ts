/**
 * `npm run chaos` runs under ts-node, which does not map tsconfig paths: loaded with `-r` before
 * main.ts, this maps `@tasksys/*` to the sources as tsconfig.base.json does for tsc and Jest.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { register } from 'tsconfig-paths';

const root = join(__dirname, '../..');
const base = JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')) as {
  compilerOptions: { paths: Record<string, string[]> };
};
register({ baseUrl: root, paths: base.compilerOptions.paths });
