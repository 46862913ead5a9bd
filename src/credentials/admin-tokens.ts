/**
 * Admin tokens and the roles they carry. Roles are ordered: a `responder` may
 * do what a `viewer` may, an `admin` what a `responder` may.
 */
import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { findLiveAdminToken, insertAdminToken } from '../database/queries/credentials.ts';
import type { AdminRole } from '../database/rows.ts';
import { CitadelError } from '../errors/catalogue.ts';
import type { Hasher } from './hasher.ts';
import { issueCredential, parseCredential } from './tokens.ts';

export interface AdminPrincipal {
  readonly tokenId: string;
  readonly name: string;
  readonly role: AdminRole;
}

const roleRank: Record<AdminRole, number> = { viewer: 1, responder: 2, admin: 3 };

export function hasRole(principal: AdminPrincipal, needed: AdminRole): boolean {
  return roleRank[principal.role] >= roleRank[needed];
}

/** How an admin is named in the audit trail. */
export function actorOf(principal: AdminPrincipal): string {
  return `admin:${principal.name}:${principal.tokenId}`;
}

export async function verifyAdminToken(
  pool: DatabasePool,
  hasher: Hasher,
  text: string | undefined,
): Promise<AdminPrincipal> {
  const parsed = text === undefined ? undefined : parseCredential('adminToken', text);
  if (!parsed) throw new CitadelError('unauthorized', { details: { reason: 'malformed' } });
  const row = await findLiveAdminToken(pool, parsed.id);
  if (!row) throw new CitadelError('unauthorized', { details: { reason: 'unknown' } });
  if (!(await hasher.verify(parsed.secret, row.token_hash))) {
    throw new CitadelError('unauthorized', { details: { reason: 'mismatch' } });
  }
  return { tokenId: row.id, name: row.name, role: row.role };
}

export async function createAdminToken(
  db: CommonQueryMethods,
  hasher: Hasher,
  request: { name: string; role: AdminRole; createdBy: string; expiresAt: string | null },
): Promise<{ id: string; token: string }> {
  const credential = issueCredential('adminToken');
  const hash = await hasher.hash(credential.secret);
  await insertAdminToken(db, { id: credential.id, hash, ...request });
  return { id: credential.id, token: credential.text };
}
