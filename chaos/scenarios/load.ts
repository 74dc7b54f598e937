/**
 * 9. Load held: a sustained submit rate; the backlog (tasks not yet terminal) stays bounded and the
 * resident memory (VmRSS from /proc/<pid>/status) of the api and each worker stays flat: the
 * median of the last quarter of samples may exceed the median of the first quarter by at most
 * `rssGrowthMiB`.
 */
import { sleepSpec } from '../lib/client';
import { countNonTerminal } from '../lib/invariants';
import { sleep } from '../lib/processes';
import { type Scenario, check, noCrashes, settleAndCheck } from '../lib/scenario';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
};

export const load: Scenario = {
  id: 'load-held',
  title: 'sustained submit rate: bounded backlog, flat memory',
  async run(ctx) {
    const { stack, profile } = ctx;
    const p = profile.load;
    const since = Date.now();
    const client = await ctx.client('load');
    const ids: string[] = [];
    const failures: string[] = [];
    const inflight = new Set<Promise<void>>();
    const procs = [stack.api, ...stack.workers];
    const rss: Record<string, number[]> = Object.fromEntries(procs.map((x) => [x.name, []]));
    const backlog: number[] = [];
    const t0 = Date.now();
    const end = t0 + p.durationMs;
    let sent = 0;
    const sampler = (async () => {
      while (Date.now() < end) {
        await sleep(1000);
        for (const x of procs) {
          const v = x.rssMiB();
          if (v !== null) rss[x.name].push(v);
        }
        backlog.push(await countNonTerminal(stack.db, ids).catch(() => -1));
      }
    })();
    while (Date.now() < end) {
      const due = Math.floor(((Date.now() - t0) / 1000) * p.perSecond);
      while (sent < due) {
        sent++;
        const pr = client.submit(sleepSpec(100, 600), 30_000).then(
          (t) => void ids.push(t.id),
          (e) => void failures.push((e as Error).message),
        );
        inflight.add(pr);
        void pr.finally(() => inflight.delete(pr));
      }
      await sleep(20);
    }
    await Promise.all(inflight);
    await sampler;
    const { tasks, recoverMs } = await settleAndCheck(ctx, ids, Date.now());
    const growth = Object.entries(rss).map(([name, xs]) => {
      const q = Math.max(1, Math.floor(xs.length / 4));
      return { name, first: median(xs.slice(0, q)), last: median(xs.slice(-q)), max: Math.max(...xs) };
    });
    const worst = growth.reduce((a, b) => (b.last - b.first > a.last - a.first ? b : a));
    const maxBacklog = Math.max(0, ...backlog);
    const fmt = (g: (typeof growth)[number]) => `${g.name} ${g.first.toFixed(0)}->${g.last.toFixed(0)} MiB`;
    return {
      tasks,
      recoverMs,
      extra: [
        check(
          'every submit accepted',
          failures.length === 0,
          failures.length
            ? failures.slice(0, 3).join('; ')
            : `${sent} submits at ${p.perSecond}/s for ${p.durationMs / 1000} s`,
        ),
        check(
          `backlog bounded (<= ${p.backlogMax})`,
          maxBacklog <= p.backlogMax,
          `max ${maxBacklog} non-terminal, median ${median(backlog)}`,
        ),
        check(
          `RSS flat (growth <= ${p.rssGrowthMiB} MiB per process)`,
          growth.every((g) => g.last - g.first <= p.rssGrowthMiB),
          growth.map(fmt).join(', '),
        ),
        noCrashes(ctx, since),
      ],
      notes: [
        `${sent} submits at ${p.perSecond}/s for ${p.durationMs / 1000} s; backlog max ${maxBacklog}; largest RSS growth ${fmt(worst)} (first vs last quarter medians, ${backlog.length} samples)`,
      ],
    };
  },
};
