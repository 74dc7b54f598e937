const { join } = require('path');
const { NxAppWebpackPlugin } = require('@nx/webpack/app-plugin');

module.exports = {
  output: {
    path: join(__dirname, '../../dist/apps/api'),
    clean: true,
    ...(process.env.NODE_ENV !== 'production' && {
      devtoolModuleFilenameTemplate: '[absolute-resource-path]',
    }),
  },
  plugins: [
    new NxAppWebpackPlugin({
      target: 'node',
      compiler: 'tsc',
      main: './src/main.ts',
      // openapi.js writes the OpenAPI document without connecting to anything (the client is generated from it).
      additionalEntryPoints: [{ entryName: 'openapi', entryPath: './src/openapi.ts' }],
      tsConfig: './tsconfig.app.json',
      // The web console (apps/console, built first through the implicit dependency) ships inside
      // the api's bundle, served at /console.
      assets: ['./src/assets', { input: '../../dist/apps/console', glob: '**/*', output: 'console' }],
      optimization: false,
      outputHashing: 'none',
      generatePackageJson: true,
      sourceMap: true,
    }),
  ],
};
