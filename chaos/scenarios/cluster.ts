/**
 * The cluster profile: a private 3-node RabbitMQ cluster, quorum queues with 3 replicas, the api
 * and workers given every node (RABBITMQ_URL as a list). Nodes are killed with kill -9, restarted
 * one by one, and brought back; tasks run throughout.
 */
import type { ClusterNode } from '@tasksys/testing';
import { sleepSpec } from '../lib/client';
import { ClusterBroker } from '../lib/cluster';
import { sleep } from '../lib/processes';
import {
  type ExtraCheck,
  type Scenario,
  type ScenarioContext,
  check,
  noCrashes,
  settleAndCheck,
} from '../lib/scenario';
import { NAMESPACE } from '../lib/stack';

/** The queues the scenarios' tasks (demo.sleep) wait in. */
const WORK_QUEUES = [`${NAMESPACE}.work.demo.sleep`, `${NAMESPACE}.work.demo.sleep.high`];

function brokerOf(ctx: ScenarioContext): ClusterBroker {
  const broker = ctx.stack.broker;
  if (!(broker instanceof ClusterBroker)) throw new Error('cluster scenarios need the cluster profile');
  return broker;
}

interface Fault {
  checks: ExtraCheck[];
  notes: string[];
  /** When the first node was killed or stopped. */
  startedAt: number;
}

/**
 * Runs `prepare` (picking victims, moving leaders: CLI calls that take seconds), then submits tasks
 * and, with them running and queued, `fault` (which returns once every node it touched is back).
 * Tasks keep coming during the fault, a batch a second, so work is in flight through all of it. Then
 * waits for every task to be terminal and every process and node back; recovery counts from the end
 * of the fault.
 */
async function underFault(
  ctx: ScenarioContext,
  owner: string,
  prepare: () => Promise<void>,
  fault: () => Promise<Fault>,
) {
  const { stack, profile } = ctx;
  const broker = brokerOf(ctx);
  const tasks = profile.cluster.tasks;
  const since = Date.now();
  const client = await ctx.client(owner);
  await prepare();
  const third = Math.ceil(tasks / 3);
  const ids = (await client.submitMany(Array.from({ length: third }, () => sleepSpec(1000, 4000)))).map((t) => t.id);
  await sleep(1500); // tasks running, more waiting in the work queues
  let faultOver = false;
  const trickle = (async () => {
    const out: string[] = [];
    while (!faultOver) {
      out.push(...(await client.submitMany(Array.from({ length: 5 }, () => sleepSpec(300, 2000)))).map((t) => t.id));
      await sleep(1000);
    }
    return out;
  })();
  let faulted: Fault;
  try {
    faulted = await fault();
  } finally {
    faultOver = true;
  }
  const faultEnd = Date.now();
  ids.push(...(await trickle));
  const nodesBack = await broker.allRunning();
  await stack.allReady(90_000);
  const readyMs = Date.now() - faultEnd;
  ids.push(...(await client.submitMany(Array.from({ length: third }, () => sleepSpec(300, 1500)))).map((t) => t.id));
  const { tasks: checked, recoverMs } = await settleAndCheck(ctx, ids, faultEnd);
  const leaders = await broker.cluster.leaders();
  // The point of a cluster: work goes on while a node is down, not only once it is back.
  const finishedDuring = (
    await stack.db.query(
      `SELECT count(DISTINCT task_id)::int AS n FROM task_events
        WHERE task_id = ANY($1::uuid[]) AND to_status IN ('succeeded', 'failed', 'cancelled')
          AND at BETWEEN to_timestamp($2 / 1000.0) AND to_timestamp($3 / 1000.0)`,
      [ids, faulted.startedAt, faultEnd],
    )
  ).rows[0].n as number;
  const fromFault = recoverMs === null ? null : Date.now() - faulted.startedAt;
  return {
    tasks: checked,
    recoverMs,
    extra: [
      ...faulted.checks,
      check(
        'tasks finished while the fault lasted',
        finishedDuring > 0,
        `${finishedDuring} of ${ids.length} in the ${((faultEnd - faulted.startedAt) / 1000).toFixed(1)} s from the first kill or stop to the node back; all terminal ${fromFault === null ? 'never' : `${(fromFault / 1000).toFixed(1)} s`} after it`,
      ),
      check('every node running again', true, `${nodesBack} ms after the fault ended`),
      check('api and workers ready, none restarted', true, `${readyMs} ms after the fault ended`),
      check(
        'work queues have a leader',
        WORK_QUEUES.every((q) => leaders.has(q)),
        WORK_QUEUES.map((q) => `${q} on ${leaders.get(q) ?? 'none'}`).join(', '),
      ),
      noCrashes(ctx, since),
    ],
    notes: faulted.notes,
  };
}

/** Waits until no client connection is on `node` (the apps moved to another). */
async function connectionsMovedOff(broker: ClusterBroker, node: string): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const counts = await broker.connectionsByNode().catch(() => new Map<string, number>());
    if ((counts.get(node) ?? 0) === 0 && [...counts.values()].some((n) => n > 0)) return Date.now() - t0;
    if (Date.now() - t0 > 60_000) throw new Error(`connections still on ${node}: ${JSON.stringify([...counts])}`);
    await sleep(500);
  }
}

export const clusterLeaderKill: Scenario = {
  id: 'cluster-leader-kill',
  title: "kill -9 of the node holding the work queues' leaders mid-run (apps connected elsewhere), then it returns",
  async run(ctx) {
    const broker = brokerOf(ctx);
    const { cluster } = broker;
    let connected: ClusterNode;
    let victim: ClusterNode;
    const prepare = async () => {
      // Leaders start where the declaring connection was (client-local), which is where the apps
      // are: move them, so that this kill is a leader loss alone, not also a connection loss.
      connected = await broker.busiestNode();
      for (const q of WORK_QUEUES) await broker.moveLeaderOff(q, connected);
      const leader = await cluster.leaderOf(WORK_QUEUES[1]);
      if (!leader) throw new Error(`${WORK_QUEUES[1]} has no leader`);
      victim = leader;
    };
    return underFault(ctx, 'cluster-leader-kill', prepare, async () => {
      const led = [...(await cluster.leaders())].filter(([q, n]) => WORK_QUEUES.includes(q) && n === victim.name);
      const tKill = Date.now();
      cluster.kill9(victim);
      ctx.log(`kill -9 ${victim.name} (leader of ${led.map(([q]) => q).join(', ')}; apps on ${connected.name})`);
      let newLeader = '';
      const electedMs = await timeUntil(async () => {
        const l = await cluster.leaderOf(WORK_QUEUES[1]);
        newLeader = l?.name ?? '';
        return l !== undefined && l.name !== victim.name;
      });
      await sleep(ctx.profile.cluster.downMs);
      await cluster.start(victim);
      ctx.log(`${victim.name} back after ${Date.now() - tKill} ms`);
      return {
        startedAt: tKill,
        checks: [
          check('the victim held the leaders, not the connections', victim.name !== connected.name, victim.name),
          check('a new leader was elected', electedMs !== null, `${newLeader} after ${electedMs} ms`),
        ],
        notes: [
          `leader node ${victim.name} killed with tasks running and queued; a new leader (${newLeader}) in ${electedMs} ms; the node down ${Date.now() - tKill} ms, then started again`,
        ],
      };
    });
  },
};

export const clusterConnectedKill: Scenario = {
  id: 'cluster-connected-kill',
  title: 'kill -9 of the node the api and workers are connected to, then it returns',
  async run(ctx) {
    const broker = brokerOf(ctx);
    const { cluster } = broker;
    let victim: ClusterNode;
    const prepare = async () => {
      victim = await broker.busiestNode();
      // Leaders away from it: this kill is a connection loss alone (the leader kill is the other scenario).
      for (const q of WORK_QUEUES) await broker.moveLeaderOff(q, victim);
    };
    return underFault(ctx, 'cluster-connected-kill', prepare, async () => {
      const before = Object.fromEntries(await broker.connectionsByNode());
      const tKill = Date.now();
      cluster.kill9(victim);
      ctx.log(`kill -9 ${victim.name} (connections ${JSON.stringify(before)})`);
      const movedMs = await connectionsMovedOff(broker, victim.name);
      const after = Object.fromEntries(await broker.connectionsByNode());
      await ctx.stack.allReady(90_000);
      const readyMs = Date.now() - tKill;
      await sleep(ctx.profile.cluster.downMs);
      await cluster.start(victim);
      ctx.log(`${victim.name} back after ${Date.now() - tKill} ms`);
      return {
        startedAt: tKill,
        checks: [
          check(
            'every app reconnected to another node',
            true,
            `${movedMs} ms; connections now ${JSON.stringify(after)}`,
          ),
          check('api and workers ready on the other nodes', true, `${readyMs} ms after the kill`),
        ],
        notes: [
          `${victim.name} (the apps' node) killed; the apps reconnected to the others in ${movedMs} ms and were ready ${readyMs} ms after the kill; the node came back ${Date.now() - tKill} ms after it`,
        ],
      };
    });
  },
};

export const clusterRollingRestart: Scenario = {
  id: 'cluster-rolling-restart',
  title: 'rolling restart of all three nodes one by one (rabbitmqctl stop, start, wait for it to rejoin)',
  async run(ctx) {
    const broker = brokerOf(ctx);
    const { cluster } = broker;
    return underFault(
      ctx,
      'cluster-rolling-restart',
      async () => undefined,
      async () => {
        const steps: string[] = [];
        const startedAt = Date.now();
        for (const node of cluster.nodes) {
          const t0 = Date.now();
          await cluster.stop(node);
          const stoppedMs = Date.now() - t0;
          await cluster.start(node);
          await broker.allRunning();
          steps.push(
            `${node.name}: stopped in ${stoppedMs} ms, back and rejoined ${Date.now() - t0} ms after the stop`,
          );
          ctx.log(steps[steps.length - 1]);
        }
        return { startedAt, checks: [check('every node restarted in turn', true, steps.join('; '))], notes: steps };
      },
    );
  },
};

export const clusterNodeReturn: Scenario = {
  id: 'cluster-node-return',
  title: 'a node down while work flows comes back, catches up, and then carries the quorum when another node dies',
  async run(ctx) {
    const broker = brokerOf(ctx);
    const { cluster } = broker;
    let connected: ClusterNode;
    const prepare = async () => {
      connected = await broker.busiestNode();
    };
    return underFault(ctx, 'cluster-node-return', prepare, async () => {
      // The returning node: one the apps are not on, so they keep working while it is down.
      const returning = cluster.nodes.find((n) => n.name !== connected.name && n.pid !== undefined);
      if (!returning) throw new Error('no node to take down');
      cluster.kill9(returning);
      const tDown = Date.now();
      ctx.log(`kill -9 ${returning.name}; work goes on with two nodes`);
      await sleep(ctx.profile.cluster.downMs * 2);
      await cluster.start(returning);
      const rejoinMs = await broker.allRunning();
      ctx.log(`${returning.name} back after ${Date.now() - tDown} ms (rejoined in ${rejoinMs} ms)`);
      // Now kill the third node: the quorum is the returned node plus the apps' node, so the work
      // queues go on only if the returned node really caught up.
      const third = cluster.nodes.find((n) => n.name !== connected.name && n.name !== returning.name);
      if (!third) throw new Error('no third node');
      cluster.kill9(third);
      const tThird = Date.now();
      ctx.log(`kill -9 ${third.name}: ${returning.name} must now carry the quorum`);
      const electedMs = await timeUntil(async () => {
        const l = await cluster.leaderOf(WORK_QUEUES[1]);
        return l !== undefined && l.name !== third.name;
      });
      await sleep(ctx.profile.cluster.downMs);
      await cluster.start(third);
      return {
        startedAt: tDown,
        checks: [
          check('the returned node rejoined', true, `${rejoinMs} ms after its start`),
          check('leaders on the returned node and the apps node', electedMs !== null, `${electedMs} ms`),
        ],
        notes: [
          `${returning.name} killed and down ${Date.now() - tDown} ms while tasks ran on two nodes; back, it rejoined in ${rejoinMs} ms; then ${third.name} was killed and the work queues went on with ${returning.name} in their quorum (a leader in ${electedMs} ms); ${third.name} down ${Date.now() - tThird} ms`,
        ],
      };
    });
  },
};

/** ms until `cond` holds (polled every 250 ms), or null after 60 s. */
async function timeUntil(cond: () => Promise<boolean>): Promise<number | null> {
  const t0 = Date.now();
  while (Date.now() - t0 < 60_000) {
    if (await cond().catch(() => false)) return Date.now() - t0;
    await sleep(250);
  }
  return null;
}

export const CLUSTER_SCENARIOS: Scenario[] = [
  clusterLeaderKill,
  clusterConnectedKill,
  clusterRollingRestart,
  clusterNodeReturn,
];
