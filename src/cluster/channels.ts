/**
 * The NOTIFY channels daemons share, and the payloads they carry. Payloads
 * hold ids and cursors only, never rows: NOTIFY refuses payloads of 8000
 * bytes or more, and a listener fetches what it needs by cursor anyway, which
 * is also how it catches up after a lost connection.
 */
import { z } from 'zod';

export const channels = Object.freeze({
  /** A statement stored threats; `{"seq"}` is the highest cursor it stored. */
  threats: 'citadel_threats',
  /** A statement changed threats; `{"seq"}` is the highest update cursor. */
  threatUpdates: 'citadel_threat_updates',
  /** An agent's newest session is now on `daemon`: `{"agent","session","daemon","claim"}`. */
  sessions: 'citadel_sessions',
  /** An agent's tokens (`{"agent"}`) or an admin token (`{"admin_token"}`) were revoked. */
  revocations: 'citadel_revocations',
});

/** The channel a daemon notifies itself on to prove its LISTEN connection works. */
export function probeChannel(daemonId: string): string {
  return `citadel_probe_${daemonId.replaceAll('-', '')}`;
}

export const cursorPayload = z.object({ seq: z.number().int().nonnegative() });

export const sessionPayload = z.object({
  agent: z.uuid(),
  session: z.uuid(),
  daemon: z.uuid(),
  claim: z.number().int().positive(),
});
export type SessionPayload = z.infer<typeof sessionPayload>;

export const revocationPayload = z.union([
  z.strictObject({ agent: z.uuid() }),
  z.strictObject({ admin_token: z.uuid() }),
]);
export type RevocationPayload = z.infer<typeof revocationPayload>;

/** Parses a payload as JSON against its schema; undefined for anything else. */
export function parsePayload<T>(schema: z.ZodType<T>, text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
