/**
 * The frames the server sends on the agent socket, checked at the edge: a
 * frame that is not JSON, not an object, or of a known type with the wrong
 * fields is refused here with a reason, before any state changes. Frames of
 * a type this agent does not know are reported as `unknown`, so that a newer
 * server can add types without breaking older agents.
 */
import { z } from 'zod';

const welcomeSchema = z.object({
  type: z.literal('welcome'),
  agent_id: z.string().min(1),
  heartbeat_interval_s: z.number().positive(),
  token_expires_at: z.string().min(1),
});
const heartbeatAckSchema = z.object({ type: z.literal('heartbeat_ack') });
const ackSchema = z.object({ type: z.literal('ack'), id: z.string().min(1) });
const tokenSchema = z.object({
  type: z.literal('token'),
  token: z.string().min(1),
  expires_at: z.string().min(1),
});
const tokenExpiringSchema = z.object({
  type: z.literal('token_expiring'),
  expires_at: z.string().optional(),
});
const errorSchema = z.object({
  type: z.literal('error'),
  code: z.string().min(1),
  message: z.string().default(''),
  ref: z.string().optional(),
  retry_after_ms: z.number().nonnegative().optional(),
});

const serverMessageSchema = z.discriminatedUnion('type', [
  welcomeSchema,
  heartbeatAckSchema,
  ackSchema,
  tokenSchema,
  tokenExpiringSchema,
  errorSchema,
]);

export type ServerMessage = z.infer<typeof serverMessageSchema>;
export type WelcomeMessage = z.infer<typeof welcomeSchema>;
export type ErrorMessage = z.infer<typeof errorSchema>;

const knownTypes: ReadonlySet<string> = new Set<string>(
  serverMessageSchema.options.map((option) => option.shape.type.value),
);

export type ParsedFrame =
  | { readonly kind: 'message'; readonly message: ServerMessage }
  | { readonly kind: 'unknown'; readonly type: string }
  | { readonly kind: 'invalid'; readonly reason: string };

/** Reads one text frame from the server. */
export function parseServerFrame(text: string): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', reason: 'the frame is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'invalid', reason: 'the frame is not a JSON object' };
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') return { kind: 'invalid', reason: 'the frame has no type' };
  if (!knownTypes.has(type)) return { kind: 'unknown', type: type.slice(0, 64) };

  const result = serverMessageSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue ? `${issue.path.join('.')}: ${issue.message}` : 'malformed';
    return { kind: 'invalid', reason: `${type} frame: ${where}` };
  }
  return { kind: 'message', message: result.data };
}

const reconnectHintPattern = /reconnect_after_ms=(\d{1,9})/;

/** The delay a going-away close reason asks for (`reconnect_after_ms=N`), in ms. */
export function reconnectHintMs(reason: string): number | undefined {
  const match = reconnectHintPattern.exec(reason);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}
