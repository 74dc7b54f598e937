import type { z } from 'zod';
import type { TaskTypeDefinition, TaskTypesConfig } from './task-type';

export type PayloadCheck =
  | { ok: true; payload: unknown; definition: TaskTypeDefinition }
  | { ok: false; field: string; message: string };

/** The task types this deployment accepts, and payload validation shared by the api and the worker. */
export class TaskTypeRegistry {
  private readonly byType: Map<string, TaskTypeDefinition>;

  constructor(
    definitions: TaskTypeDefinition[],
    private readonly config: TaskTypesConfig,
  ) {
    this.byType = new Map(definitions.map((d) => [d.type, d]));
  }

  get(type: string): TaskTypeDefinition | undefined {
    return this.byType.get(type);
  }

  /** Every known type with whether it is available here. */
  list(): { definition: TaskTypeDefinition; unavailableReason: string | null }[] {
    return [...this.byType.values()].map((definition) => ({
      definition,
      unavailableReason: definition.unavailableReason?.(this.config) ?? null,
    }));
  }

  /** Why `type` cannot run with this process's settings (or is unknown here), or null when it can. */
  unavailable(type: string): string | null {
    const definition = this.byType.get(type);
    if (!definition) return `${type} is not a known task type here`;
    return definition.unavailableReason?.(this.config) ?? null;
  }

  /** Checks a type and its payload; failures name the offending field (`payload.ms`). */
  check(type: string, payload: unknown): PayloadCheck {
    const definition = this.byType.get(type);
    if (!definition) {
      return { ok: false, field: 'type', message: `type must be one of: ${[...this.byType.keys()].join(', ')}` };
    }
    const unavailable = definition.unavailableReason?.(this.config);
    if (unavailable) return { ok: false, field: 'type', message: unavailable };
    const parsed = definition.payload.safeParse(payload);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { ok: false, field: fieldOf(issue), message: `${fieldOf(issue)}: ${describe(issue)}` };
    }
    return { ok: true, payload: parsed.data, definition };
  }
}

function fieldOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return ['payload', ...issue.path, issue.keys[0]].join('.');
  return ['payload', ...issue.path].join('.');
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys')
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  return issue.message;
}
