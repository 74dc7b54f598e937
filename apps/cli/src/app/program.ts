import { Command, InvalidArgumentError, Option } from 'commander';
import { type CreateTaskRequest, type TaskStatus, TasksysClient, type TaskType } from '@tasksys/client';
import { EXIT_CODES_HELP, exitCodeOf } from './exit-codes';
import { eventTable, json, messageTable, type Output, table, taskSummary, taskTable, workerTable } from './output';
import { type Terminal, watchTask } from './watch';

export const DEFAULT_URL = 'http://localhost:3000';
const STATUSES: TaskStatus[] = [
  'new',
  'scheduled',
  'queued',
  'running',
  'retrying',
  'succeeded',
  'failed',
  'cancelled',
];

export interface CliContext {
  env: Record<string, string | undefined>;
  output: Output;
  /** The terminal a live progress bar draws on (absent: plain lines only). */
  terminal?: Terminal;
  /** Set by a command whose outcome is not plain success (a task that failed under --wait). */
  setExitCode(code: number): void;
}

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function jsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    throw new InvalidArgumentError(`not JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new InvalidArgumentError('must be a JSON object, e.g. \'{"ms": 1000}\'');
  return parsed as Record<string, unknown>;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const jsonFlag = () => new Option('--json', 'print the api’s JSON answer instead of a table');

/**
 * The `tasksys` command line: every command is one or two calls of @tasksys/client. Errors
 * propagate to main.ts, which prints the api's message and exits 1.
 */
export function buildProgram(ctx: CliContext): Command {
  const o = ctx.output;
  const client = () =>
    new TasksysClient({ baseUrl: ctx.env['TASKSYS_URL'] || DEFAULT_URL, key: ctx.env['TASKSYS_KEY'] || null });
  const finish = (status: string) => ctx.setExitCode(exitCodeOf(status));

  const program = new Command('tasksys')
    .description('Submit, follow and operate tasksys tasks from a shell.')
    .addHelpText(
      'after',
      `
Environment:
  TASKSYS_URL  the api (default ${DEFAULT_URL})
  TASKSYS_KEY  an API key (admin commands need an admin key)
${EXIT_CODES_HELP}`,
    )
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: (s) => o.out(s.trimEnd()), writeErr: (s) => o.err(s.trimEnd()) })
    .exitOverride();

  program
    .command('submit')
    .description('submit a task; prints its id (or the task with --json)')
    .argument('<type>', 'a task type, e.g. demo.sleep')
    .requiredOption('--payload <json>', 'the payload, a JSON object', jsonObject)
    .option('--priority <n>', '0-9, higher runs first', integer('--priority', 0, 9))
    .option('--idempotency-key <key>', 'retries with the same key and payload return the same task')
    .option('--wait', 'wait until the task ends; the exit code says how (see below)')
    .addOption(jsonFlag())
    .addHelpText('after', `\nExample:\n  tasksys submit demo.sleep --payload '{"ms": 2000}' --wait\n${EXIT_CODES_HELP}`)
    .action(
      async (
        type: string,
        opts: {
          payload: Record<string, unknown>;
          priority?: number;
          idempotencyKey?: string;
          wait?: boolean;
          json?: boolean;
        },
      ) => {
        const c = client();
        const fields = opts.priority === undefined ? {} : { priority: opts.priority };
        // The type is checked by the api (it names the types it knows), so any string goes through here.
        const task = await c.submit(type as TaskType, opts.payload as CreateTaskRequest['payload'], {
          ...fields,
          idempotencyKey: opts.idempotencyKey,
        });
        if (!opts.wait) return opts.json ? json(o, task) : o.out(task.id);
        if (!opts.json) o.err(`${task.id} ${task.status}, waiting`);
        const done = await c.waitFor(task.id);
        if (opts.json) json(o, done);
        else o.out(`${done.id} ${done.status}${done.error ? `: ${done.error.code}: ${done.error.message}` : ''}`);
        finish(done.status);
      },
    );

  program
    .command('get')
    .description('show one task')
    .argument('<id>', 'task id')
    .addOption(jsonFlag())
    .action(async (id: string, opts: { json?: boolean }) => {
      const task = await client().get(id);
      if (opts.json) json(o, task);
      else taskSummary(o, task);
    });

  program
    .command('watch')
    .description('follow a task until it ends: a live progress bar on a terminal, one line per change otherwise')
    .argument('<id>', 'task id')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (id: string) => {
      const done = await watchTask(client(), id, o, ctx.terminal);
      o.out(`${done.id} ${done.status}${done.error ? `: ${done.error.code}: ${done.error.message}` : ''}`);
      finish(done.status);
    });

  program
    .command('list')
    .description('list tasks, newest first (admins: everyone’s, or --owner’s)')
    .addOption(new Option('--status <status>', 'only this status').choices(STATUSES))
    .option('--type <type>', 'only this task type')
    .option('--owner <owner>', 'admins: only this owner’s tasks')
    .option('--limit <n>', 'tasks per page (1-100)', integer('--limit', 1, 100), 20)
    .option('--cursor <cursor>', 'the next page: the cursor the previous page printed')
    .addOption(jsonFlag())
    .action(
      async (opts: {
        status?: TaskStatus;
        type?: string;
        owner?: string;
        limit: number;
        cursor?: string;
        json?: boolean;
      }) => {
        const page = await client().list({
          status: opts.status,
          type: opts.type,
          owner: opts.owner,
          limit: opts.limit,
          cursor: opts.cursor,
        });
        if (opts.json) return json(o, page);
        taskTable(o, page.items);
        if (page.nextCursor) o.err(`more: tasksys list --cursor ${page.nextCursor}`);
      },
    );

  for (const [name, description] of [
    ['cancel', 'cancel a task that has not finished (a running one is told to stop)'],
    ['retry', 'run a failed or cancelled task again, with a fresh attempt budget'],
  ] as const) {
    program
      .command(name)
      .description(description)
      .argument('<id>', 'task id')
      .addOption(jsonFlag())
      .action(async (id: string, opts: { json?: boolean }) => {
        const c = client();
        const task = name === 'cancel' ? await c.cancel(id) : await c.retry(id);
        if (opts.json) json(o, task);
        else o.out(`${task.id} ${task.status}`);
      });
  }

  program
    .command('events')
    .description('the transition log of a task, oldest first')
    .argument('<id>', 'task id')
    .addOption(jsonFlag())
    .action(async (id: string, opts: { json?: boolean }) => {
      const events = await client().events(id);
      if (opts.json) json(o, events);
      else eventTable(o, events);
    });

  const brokerQueue = (name: 'dlq' | 'unrouted', description: string) => {
    const group = program.command(name).description(`${description} (admin key)`);
    group
      .command('list')
      .description(`messages at the head of the queue (they stay there)`)
      .option('--limit <n>', 'messages to show (1-1000)', integer('--limit', 1, 1000), 50)
      .addOption(jsonFlag())
      .action(async (opts: { limit: number; json?: boolean }) => {
        const c = client();
        const list = name === 'dlq' ? await c.admin.deadLetters(opts.limit) : await c.admin.unrouted(opts.limit);
        if (opts.json) json(o, list);
        else messageTable(o, list.queue, list.total, list.items);
      });
    const redrive = group
      .command('redrive')
      .description(
        name === 'dlq'
          ? 'run dead-lettered tasks again (all, or --task ones)'
          : 'republish unrouted messages to the work exchange (all, or --task ones)',
      )
      .option('--task <id>', 'only this task’s messages (repeatable)', collect)
      .addOption(jsonFlag());
    if (name === 'dlq') redrive.option('--purge-malformed', 'also remove dead letters that are not task messages');
    redrive.action(async (opts: { task?: string[]; purgeMalformed?: boolean; json?: boolean }) => {
      const c = client();
      const result =
        name === 'dlq'
          ? await c.admin.redriveDeadLetters({ taskIds: opts.task, purgeMalformed: opts.purgeMalformed })
          : await c.admin.redriveUnrouted({ taskIds: opts.task });
      if (opts.json) return json(o, result);
      table(
        o,
        Object.keys(result).map((k) => k.toUpperCase()),
        [Object.values(result).map((v) => (v === null ? '-' : String(v)))],
      );
    });
    group.addHelpText('after', `\nExample:\n  tasksys ${name} list\n  tasksys ${name} redrive --task <id>`);
  };
  brokerQueue('dlq', 'the dead-letter queue');
  brokerQueue('unrouted', 'messages no binding matched (a type no worker serves yet)');

  program
    .command('workers')
    .description('the worker fleet: alive ones against WORKERS_EXPECTED (admin key)')
    .addOption(jsonFlag())
    .action(async (opts: { json?: boolean }) => {
      const fleet = await client().admin.workers();
      if (opts.json) json(o, fleet);
      else workerTable(o, fleet.expected, fleet.alive, fleet.workers);
    });

  const keys = program.command('keys').description('API keys (admin key)');
  keys
    .command('create')
    .description('issue an API key for an owner; prints the key, shown only this once')
    .argument('<owner>', 'the owner the key acts as')
    .addOption(new Option('--role <role>', 'the key’s role').choices(['user', 'admin']).default('user'))
    .addOption(jsonFlag())
    .action(async (owner: string, opts: { role: 'user' | 'admin'; json?: boolean }) => {
      const key = await client().admin.createKey(owner, opts.role);
      if (opts.json) json(o, key);
      else o.out(key.key);
    });

  return program;
}
