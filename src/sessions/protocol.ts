/**
 * The agent socket's messages, agent to server, checked by guard clauses
 * before anything changes. A message that fails a check gets an `error`
 * frame with `invalid_message` and changes nothing.
 */
import { z } from 'zod';
import { describeIssue } from '../errors/zod-issues.ts';
import { unstorableJson } from '../net/json-guard.ts';

/** Invalid messages a socket may send before it is closed with 1008. */
export const maxInvalidMessages = 5;

/** The largest frame a socket accepts; a larger one closes it with 1009. */
export const maxFrameBytes = 64 * 1024;

/** A threat's type, as every report must name it (the agent checks with the same schema). */
export const threatTypeSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only');

/** A threat's severity, 1 to 10. */
export const severitySchema = z.int().min(1).max(10);

/** 10000-01-01T00:00:00Z: the first instant past four-digit years. */
const yearTenThousandMs = 253_402_300_800_000;

/**
 * When a threat was seen: an ISO 8601 time with an offset, from 1970 up to
 * the end of year 9999. JavaScript reads more (year 0000, six-digit years)
 * than PostgreSQL stores; a report the database would refuse is refused here.
 */
export const detectedAtSchema = z.iso.datetime({ offset: true }).refine((text) => {
  const ms = Date.parse(text);
  return ms >= 0 && ms < yearTenThousandMs;
}, 'must be a time from 1970 to 9999');

const threatMessage = z.strictObject({
  type: z.literal('threat'),
  id: z.uuid(),
  threat_type: threatTypeSchema,
  severity: severitySchema,
  title: z.string().min(1).max(256),
  details: z.record(z.string(), z.unknown()).default({}),
  detected_at: detectedAtSchema,
});

const inbound = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('heartbeat') }),
  threatMessage,
  z.strictObject({ type: z.literal('refresh') }),
]);

export type InboundMessage = z.infer<typeof inbound>;
export type ThreatMessage = z.infer<typeof threatMessage>;

export type ParseResult =
  | { ok: true; message: InboundMessage }
  | { ok: false; reason: string; ref?: string };

/** Parses one text frame. */
export function parseInbound(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'the frame is not JSON' };
  }
  const unstorable = unstorableJson(value);
  if (unstorable) {
    const id = (value as { id?: unknown } | null)?.id;
    const reason = `the message cannot be stored: ${unstorable}`;
    return typeof id === 'string' && id.length <= 64
      ? { ok: false, reason, ref: id }
      : { ok: false, reason };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'the frame is not a JSON object' };
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') return { ok: false, reason: 'the message has no type' };
  const parsed = inbound.safeParse(value);
  if (!parsed.success) {
    const id = (value as { id?: unknown }).id;
    const issue = describeIssue(parsed.error.issues[0]!);
    const result: ParseResult = { ok: false, reason: `${type}: ${issue}` };
    return typeof id === 'string' && id.length <= 64 ? { ...result, ref: id } : result;
  }
  return { ok: true, message: parsed.data };
}
