import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(__dirname, '../../../../..');

describe('package-lock.json', () => {
  it('holds every optional platform entry, so `npm ci` accepts it on a fresh machine', () => {
    const r = spawnSync(process.execPath, ['scripts/complete-lockfile.mjs', '--check'], { cwd: root, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
