/** Request input checked against a zod schema; a failure is 400 `invalid_request`. */
import type { z } from 'zod';
import { CitadelError } from '../errors/catalogue.ts';

export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.join('.');
  throw new CitadelError('invalid_request', {
    message: field ? `${field}: ${issue.message}` : issue.message,
    details: field ? { field } : undefined,
  });
}
