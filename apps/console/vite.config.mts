import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * The web console: a static build the api serves at /console (apps/api/src/app/admin/console).
 * `npx nx serve console` runs Vite's dev server with the API proxied to a local api on :3000.
 */
export default defineConfig({
  root,
  base: '/console/',
  // The api's typed client, from source (tsconfig.base.json's path, which the console's own tsconfig repeats).
  resolve: { alias: { '@tasksys/client': fileURLToPath(new URL('../../libs/client/src/index.ts', import.meta.url)) } },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../../dist/apps/console', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    proxy: { '/v1': 'http://127.0.0.1:3000', '/metrics': 'http://127.0.0.1:3000' },
  },
});
