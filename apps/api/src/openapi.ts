/**
 * Writes the OpenAPI document to the file named by the first argument (stdout without one), from
 * the controllers alone: nothing connects (`npx nx run api:openapi` writes libs/client/openapi.json).
 */
import { writeFileSync } from 'node:fs';
import { createOpenApiDocument } from './app/swagger';

createOpenApiDocument()
  .then((document) => {
    const json = `${JSON.stringify(document, null, 2)}\n`;
    if (process.argv[2]) writeFileSync(process.argv[2], json);
    else process.stdout.write(json);
  })
  .catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
