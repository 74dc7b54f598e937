import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLUSTER_ROOT, RabbitmqCluster } from './rabbitmq-cluster';

/** The clean-up of crashed runs; starting real clusters is covered by the specs that use them. */
describe('RabbitmqCluster.removeLeftovers', () => {
  const made: string[] = [];
  const leftover = (owner: number | null) => {
    const dir = join(CLUSTER_ROOT, `spec-${randomBytes(4).toString('hex')}`);
    mkdirSync(join(dir, 'n1', 'mnesia'), { recursive: true });
    if (owner !== null) writeFileSync(join(dir, 'owner.json'), JSON.stringify({ pid: owner, nodes: [] }));
    made.push(dir);
    return dir;
  };

  afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  it('removes the dir of a cluster whose starting process is gone, and keeps one whose process lives', async () => {
    // A pid that existed and exited: the process of a crashed run.
    const gone = spawnSync('true').pid;
    const dead = leftover(gone);
    const orphan = leftover(null);
    const live = leftover(process.pid);
    await RabbitmqCluster.removeLeftovers();
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  it("never kills a pid a dead run recorded unless it is still that run's node (pids are reused)", async () => {
    const dir = leftover(spawnSync('true').pid);
    // This test process's pid under a node's name: its command line names no such node, so it lives.
    writeFileSync(join(dir, 'n1', 'mnesia', 'tsys-spec-1@localhost.pid'), String(process.pid));
    await RabbitmqCluster.removeLeftovers();
    expect(existsSync(dir)).toBe(false);
  });
});
