/**
 * Request input checked against a zod schema, after the storability guard
 * (no NUL, no lone surrogate, bounded depth); a failure is 400
 * `invalid_request` and changes nothing.
 */
import type { z } from 'zod';
import { CitadelError } from '../errors/catalogue.ts';
import { describeIssue } from '../errors/zod-issues.ts';
import { unstorableJson } from '../net/json-guard.ts';

export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const unstorable = unstorableJson(value ?? {});
  if (unstorable) {
    throw new CitadelError('invalid_request', {
      message: `the input cannot be stored: ${unstorable}`,
    });
  }
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.join('.');
  throw new CitadelError('invalid_request', {
    message: describeIssue(issue),
    details: field ? { field } : undefined,
  });
}
