/**
 * How a failed schema check is put into words for whoever sent the input:
 * the first issue, led by the path of the field it is about. The HTTP API
 * (`invalid_request`), the agent socket and the feed socket
 * (`invalid_message`) all say it this way.
 */
import type { z } from 'zod';

/** `min_severity: Too big: …`; an issue about the whole input has no path to name. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.join('.');
  return field ? `${field}: ${issue.message}` : issue.message;
}
