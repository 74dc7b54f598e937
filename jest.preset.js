const nxPreset = require('@nx/jest/preset').default;

module.exports = {
  ...nxPreset,
  // *.spec.ts: unit; *.int-spec.ts: one lib against real PostgreSQL/RabbitMQ; *.e2e-spec.ts: whole apps.
  testMatch: ['**/?(*.)+(spec|int-spec|e2e-spec).ts'],
  testTimeout: 30_000,
};
