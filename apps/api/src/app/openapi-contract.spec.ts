import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OpenAPIObject } from '@nestjs/swagger';
import { BUILTIN_TASK_TYPES } from '@tasksys/tasks';
import { WORKSPACE_ROOT } from '@tasksys/testing';
import { createOpenApiDocument } from './swagger';

const COMMITTED = join(WORKSPACE_ROOT, 'libs/client/openapi.json');
const REGENERATE = 'npx nx run client:generate';

function run(command: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(command, args, {
    cwd: WORKSPACE_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('the OpenAPI document as a contract', () => {
  let document: OpenAPIObject;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    document = await createOpenApiDocument();
    dir = mkdtempSync(join(tmpdir(), 'openapi-'));
    file = join(dir, 'openapi.json');
    writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is the committed libs/client/openapi.json (the controllers and the client agree)', () => {
    const committed = readFileSync(COMMITTED, 'utf8');
    if (committed !== readFileSync(file, 'utf8')) {
      throw new Error(`libs/client/openapi.json differs from the document the controllers give: run \`${REGENERATE}\``);
    }
  });

  it('generates exactly the committed client types (no drift between the document and the client)', () => {
    const r = run(process.execPath, ['libs/client/scripts/generate.mjs', '--document', file, '--check']);
    if (r.status !== 0) throw new Error(r.output.trim() || `the generator exited ${r.status}`);
  });

  it('passes redocly lint with the recommended rules', () => {
    const r = run(join(WORKSPACE_ROOT, 'node_modules/.bin/redocly'), ['lint', file, '--extends=recommended']);
    expect({ status: r.status, output: r.output }).toEqual({ status: 0, output: expect.stringContaining('is valid') });
  }, 120_000);

  it('describes each task type’s payload from its zod schema, the submit body discriminated by type', () => {
    const schemas = document.components?.schemas as Record<string, any>;
    const body = schemas['CreateTaskRequest'];
    expect(Object.keys(body.discriminator.mapping).sort()).toEqual(BUILTIN_TASK_TYPES.map((t) => t.type).sort());
    expect(schemas['DemoSleepPayload']).toMatchObject({
      type: 'object',
      required: ['ms'],
      additionalProperties: false,
      properties: { ms: { type: 'integer', minimum: 0, maximum: 3_600_000 } },
    });
    expect(schemas['DemoSleepTaskRequest'].properties.type).toMatchObject({ enum: ['demo.sleep'] });
    expect(schemas['CreateTaskBatchRequestDto'].properties.tasks.items).toEqual({
      $ref: '#/components/schemas/CreateTaskRequest',
    });
    const submit = document.paths['/v1/tasks'].post!;
    expect(submit.requestBody).toMatchObject({
      content: { 'application/json': { schema: { $ref: '#/components/schemas/CreateTaskRequest' } } },
    });
  });

  it('lists the Idempotency-Key header once, optional', () => {
    const headers = (document.paths['/v1/tasks'].post!.parameters ?? []).filter(
      (p) => 'in' in p && p.in === 'header' && p.name.toLowerCase() === 'idempotency-key',
    );
    expect(headers).toEqual([expect.objectContaining({ name: 'Idempotency-Key', required: false })]);
  });

  it('lists no header twice on any route (a @Headers() parameter beside an @ApiHeader declares it again)', () => {
    const twice: string[] = [];
    for (const [path, item] of Object.entries(document.paths))
      for (const [method, op] of Object.entries(item ?? {})) {
        const names = ((op as { parameters?: { in?: string; name?: string }[] }).parameters ?? [])
          .filter((p) => p.in === 'header')
          .map((p) => String(p.name).toLowerCase());
        for (const n of new Set(names.filter((n, i) => names.indexOf(n) !== i))) twice.push(`${method} ${path}: ${n}`);
      }
    expect(twice).toEqual([]);
  });

  it('names a server and declares security on every route, empty on the public ones', () => {
    expect(document.servers?.length).toBeGreaterThan(0);
    for (const path of ['/health/live', '/health/ready', '/metrics'])
      expect(document.paths[path].get!.security).toEqual([]);
    expect(document.paths['/v1/tasks/{id}'].get!.security).toEqual([{ bearer: [] }]);
  });
});
