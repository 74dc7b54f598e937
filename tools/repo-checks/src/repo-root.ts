import { join } from 'node:path';

/** The repository root (this file is tools/repo-checks/src/repo-root.ts); the checks read everything from it. */
export const REPO_ROOT = join(__dirname, '../../..');
