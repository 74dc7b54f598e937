import { z } from 'zod';
import { ConfigurationError } from '../errors/configuration.error';

/**
 * Builds a `validate` function for `ConfigModule.forRoot` from a zod object schema
 * whose keys are environment variable names. Every problem names its variable.
 */
export function validateEnv<S extends z.ZodObject>(schema: S) {
  return (env: Record<string, unknown>): z.infer<S> => {
    // Empty strings mean "unset", so defaults apply (docker compose passes `VAR=` often).
    const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
    const parsed = schema.safeParse(cleaned);
    if (!parsed.success) {
      throw new ConfigurationError(
        parsed.error.issues.map((issue) => {
          const name = issue.path.join('.');
          const value = env[name];
          const shown = value === undefined ? 'unset' : JSON.stringify(value);
          return `${name} (${shown}): ${issue.message}`;
        }),
      );
    }
    return parsed.data;
  };
}

/** Common field builders, so every app parses the same variable the same way. */
const isUrlWith = (protocols: string[]) => (value: string) => {
  try {
    return protocols.includes(new URL(value).protocol.replace(/:$/, ''));
  } catch {
    return false;
  }
};

export const env = {
  url: (protocols: string[], fallback: string) =>
    z
      .string()
      .default(fallback)
      .refine(isUrlWith(protocols), `must be a URL with scheme ${protocols.join(' or ')}`),
  optionalUrl: (protocols: string[]) =>
    z
      .string()
      .refine(isUrlWith(protocols), `must be a URL with scheme ${protocols.join(' or ')}`)
      .optional(),
  int: (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
    z.coerce
      .number()
      .int(`must be a whole number`)
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`)
      .default(fallback),
  name: (fallback: string) =>
    z
      .string()
      .regex(/^[a-z][a-z0-9_.-]{0,62}$/, 'must be lowercase letters, digits, ".", "-" or "_", starting with a letter')
      .default(fallback),
  flag: (fallback: boolean) =>
    z
      .enum(['1', '0', 'true', 'false', 'yes', 'no'], 'must be one of 1, 0, true, false, yes, no')
      .default(fallback ? 'true' : 'false')
      .transform((v) => v === '1' || v === 'true' || v === 'yes'),
};

/** The validated values of `schema`'s variables, read back from Nest's ConfigService. */
export function configFrom<S extends z.ZodObject>(schema: S, config: { get(key: string): unknown }): z.infer<S> {
  return Object.fromEntries(Object.keys(schema.shape).map((key) => [key, config.get(key)])) as z.infer<S>;
}
