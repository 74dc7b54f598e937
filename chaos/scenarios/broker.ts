/** 2. Broker restart in the middle (stop_app / start_app), then server-side close of all connections; tasks in batches (bundles). */
import { sleepSpec } from '../lib/client';
import { sleep } from '../lib/processes';
import { type Scenario, check, noCrashes, settleAndCheck } from '../lib/scenario';

export const broker: Scenario = {
  id: 'broker-restart',
  title: 'RabbitMQ stop_app/start_app mid-run, then close_all_connections',
  async run(ctx) {
    const { stack, profile } = ctx;
    const p = profile.broker;
    const since = Date.now();
    const client = await ctx.client('broker');
    const third = Math.ceil(p.tasks / 3);
    const ids: string[] = (await client.submitBatch(Array.from({ length: third }, () => sleepSpec(500, 3000)))).map(
      (t) => t.id,
    );
    await sleep(1500); // tasks running

    const tStop = Date.now();
    await stack.rabbit.stopApp();
    ctx.log(`broker app stopped`);
    // the api keeps accepting: the outbox holds the messages until the broker is back
    const during = client.submitBatch(Array.from({ length: third }, () => sleepSpec(300, 1500)));
    await sleep(p.downMs);
    await stack.rabbit.startApp();
    const tStart = Date.now();
    ids.push(...(await during).map((t) => t.id));
    ctx.log(`broker app started after ${tStart - tStop} ms`);
    await stack.allReady(90_000);
    const readyAfter = Date.now() - tStart;

    ids.push(
      ...(await client.submitBatch(Array.from({ length: p.tasks - 2 * third }, () => sleepSpec(500, 2500)))).map(
        (t) => t.id,
      ),
    );
    await sleep(800);
    await stack.rabbit.closeAllConnections();
    const tClose = Date.now();
    await stack.allReady(90_000);
    const readyAfterClose = Date.now() - tClose;

    const { tasks, recoverMs } = await settleAndCheck(ctx, ids, tClose);
    return {
      tasks,
      recoverMs,
      extra: [
        check('api and workers ready after start_app', true, `${readyAfter} ms`),
        check('api and workers ready after close_all_connections', true, `${readyAfterClose} ms`),
        noCrashes(ctx, since),
      ],
      notes: [
        `broker app down ${tStart - tStop} ms with tasks running and ${third} submitted meanwhile; readiness back ${readyAfter} ms after start_app and ${readyAfterClose} ms after close_all_connections`,
      ],
    };
  },
};
