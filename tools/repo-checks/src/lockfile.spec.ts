import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from './repo-root';

describe('package-lock.json', () => {
  it('holds every optional platform entry, so `npm ci` accepts it on a fresh machine', () => {
    const r = spawnSync(process.execPath, ['scripts/complete-lockfile.mjs', '--check'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
