import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

function findWorkspaceRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'nx.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no nx.json in ${from} or above it`);
  }
}

/** The repository's root (where nx.json is), which the built bundles and tmp/ are under. */
export const WORKSPACE_ROOT = findWorkspaceRoot(__dirname);

/** Where processes started by tests write their output: tmp/test-logs/<name>.log. */
export const TEST_LOG_DIR = join(WORKSPACE_ROOT, 'tmp/test-logs');
