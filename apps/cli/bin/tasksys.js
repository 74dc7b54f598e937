#!/usr/bin/env node
// `npx tasksys` (linked by npm through the workspace package apps/cli): runs the built bundle.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const bundle = join(__dirname, '../../../dist/apps/cli/main.js');
if (!existsSync(bundle)) {
  process.stderr.write(`tasksys: ${bundle} is missing: run \`npm run build\` first\n`);
  process.exit(1);
}
require(bundle);
