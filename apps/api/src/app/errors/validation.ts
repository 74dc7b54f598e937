import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { RequestValidationError } from './request-validation.error';

/** The first problem of a class-validator result, with its dotted path (`tasks.3.maxAttempts`). */
function firstProblem(errors: ValidationError[], prefix = ''): { field: string; message: string } | null {
  for (const e of errors) {
    const field = prefix
      ? /^\d+$/.test(e.property)
        ? `${prefix}[${e.property}]`
        : `${prefix}.${e.property}`
      : e.property;
    if (e.constraints && Object.keys(e.constraints).length > 0) {
      const [message] = Object.values(e.constraints);
      // class-validator phrases messages around the bare property name; show the full path instead.
      return {
        field,
        message: message.startsWith(e.property)
          ? `${field}${message.slice(e.property.length)}`
          : `${field}: ${message}`,
      };
    }
    const nested = firstProblem(e.children ?? [], field);
    if (nested) return nested;
  }
  return null;
}

/** Whitelisting validation: unknown fields are errors (named), types are converted only where DTOs say so. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    stopAtFirstError: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => {
      const p = firstProblem(errors) ?? { field: 'body', message: 'body: invalid request' };
      return new RequestValidationError(p.field, p.message);
    },
  });
}
