import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  DocumentBuilder,
  type OpenAPIObject,
  type ReferenceObject,
  type SchemaObject,
  SwaggerModule,
} from '@nestjs/swagger';
import { z } from 'zod';
import { BUILTIN_TASK_TYPES, type TaskTypeDefinition } from '@tasksys/tasks';
import { AppModule } from './app.module';
import { createHttpAdapter } from './http-adapter';

/** The submit body's DTO: its fields are class-validator's, its `payload` is replaced per task type below. */
const SUBMIT_DTO = 'CreateTaskRequestDto';
/** The submit body as the contract states it: one variant per task type, discriminated by `type`. */
const SUBMIT_BODY = 'CreateTaskRequest';
const ref = (name: string): ReferenceObject => ({ $ref: `#/components/schemas/${name}` });

/** `demo.sleep` -> `DemoSleep` (component names of the per-type schemas). */
function pascal(type: string): string {
  return type
    .split(/[^A-Za-z0-9]+/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

/**
 * Payloads are validated by each type's zod schema (the api at submit time, the worker again), while
 * the DTO that class-validator checks sees an open object. The document takes the payload schemas
 * from the same zod source, so the contract and the validation cannot disagree.
 */
function describeTaskTypes(document: OpenAPIObject, types: TaskTypeDefinition[]): void {
  const schemas = (document.components ??= {}).schemas ?? {};
  const dto = schemas[SUBMIT_DTO] as SchemaObject | undefined;
  if (!dto?.properties) throw new Error(`${SUBMIT_DTO} is missing from the document`);
  const mapping: Record<string, string> = {};
  for (const t of types) {
    const name = pascal(t.type);
    const payload = z.toJSONSchema(t.payload, { target: 'openapi-3.0' }) as SchemaObject & { $schema?: string };
    delete payload.$schema; // the dialect marker: OpenAPI 3.0 has no such keyword
    schemas[`${name}Payload`] = { ...payload, description: t.description };
    schemas[`${name}TaskRequest`] = {
      ...dto,
      description: `Submit a \`${t.type}\` task`,
      properties: {
        ...dto.properties,
        type: { type: 'string', enum: [t.type], description: 'The task type' },
        payload: ref(`${name}Payload`),
      },
    };
    mapping[t.type] = ref(`${name}TaskRequest`).$ref;
  }
  schemas[SUBMIT_BODY] = {
    oneOf: Object.values(mapping).map(($ref) => ({ $ref })),
    discriminator: { propertyName: 'type', mapping },
  };
  delete schemas[SUBMIT_DTO];
  // Every reference to the DTO (the submit body, the batch's items) now points at the union.
  const retarget = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(retarget);
    if (node === null || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    if (record['$ref'] === ref(SUBMIT_DTO).$ref) record['$ref'] = ref(SUBMIT_BODY).$ref;
    Object.values(record).forEach(retarget);
  };
  retarget(document.paths);
  retarget(schemas);
  document.components.schemas = schemas;
}

/**
 * Routes declared without a security requirement are the public ones (health probes, metrics, the
 * console's files): state that with an empty list, as OpenAPI asks, instead of leaving it unsaid.
 */
function declarePublicRoutes(document: OpenAPIObject): void {
  for (const item of Object.values(document.paths))
    for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const) {
      const operation = item[method];
      if (operation && operation.security === undefined) operation.security = [];
    }
}

/** The OpenAPI document, generated from the controllers and DTOs. */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('tasksys API')
    .setDescription(
      'Reliable long-running tasks. Authenticate with `Authorization: Bearer <key>`. Errors are ' +
        '`{statusCode, error, message, code}`; the message names the field at fault.',
    )
    .setVersion('1')
    .setLicense('MIT', 'https://opensource.org/licenses/MIT')
    .addServer('http://localhost:3000', 'A local api (`npm start`); set PORT to change it')
    .addBearerAuth()
    .build();
  const document = SwaggerModule.createDocument(app, config);
  describeTaskTypes(document, BUILTIN_TASK_TYPES);
  declarePublicRoutes(document);
  return document;
}

/**
 * The document without a running system: Nest's preview mode scans the modules and controllers but
 * instantiates no provider, so nothing connects to PostgreSQL or RabbitMQ (the client's generator
 * runs this at build time, in about a second).
 */
export async function createOpenApiDocument(): Promise<OpenAPIObject> {
  const app = await NestFactory.create(AppModule.forRoot(), createHttpAdapter(), {
    preview: true,
    logger: false,
    abortOnError: false,
  });
  try {
    return buildOpenApiDocument(app);
  } finally {
    await app.close();
  }
}

/** UI at /docs, JSON at /docs-json. */
export function setupSwagger(app: INestApplication): void {
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), { jsonDocumentUrl: 'docs-json' });
}
