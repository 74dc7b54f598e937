export * from './lib/config/validate-env';
