/**
 * The shape of every credential the daemon issues: `<kind>_<id>_<secret>`.
 * The id names the stored record, so verification is one indexed lookup and
 * one bcrypt compare, and an unknown id is refused without hashing. The
 * secret is 32 random bytes in base64url (43 characters, 256 bits): the whole
 * of it is hashed and it fits bcrypt's 72-byte input, so no two secrets can
 * verify against one hash. Parsing is exact: appended bytes, a NUL or a
 * changed length do not match.
 */
import { randomBytes, randomUUID } from 'node:crypto';

export const credentialKinds = {
  /** An agent's session token. */
  agentToken: 'cat',
  /** An admin's API token. */
  adminToken: 'cad',
  /** An enrollment secret. */
  enrollmentSecret: 'ces',
} as const;

export type CredentialKind = keyof typeof credentialKinds;

export interface Credential {
  readonly id: string;
  readonly secret: string;
  /** The text handed to the holder, once. */
  readonly text: string;
}

const shape =
  /^([a-z]{3})_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export function issueCredential(kind: CredentialKind): Credential {
  const id = randomUUID();
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, text: `${credentialKinds[kind]}_${id}_${secret}` };
}

/** The id and secret of a credential of the given kind, or undefined. */
export function parseCredential(
  kind: CredentialKind,
  text: string,
): { id: string; secret: string } | undefined {
  if (text.length !== 84) return undefined;
  const match = shape.exec(text);
  if (!match || match[1] !== credentialKinds[kind]) return undefined;
  return { id: match[2]!, secret: match[3]! };
}

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  // The scheme name is case-insensitive (RFC 7235); the token is not.
  const match = /^Bearer ([^\s]+)$/i.exec(header);
  return match?.[1];
}
