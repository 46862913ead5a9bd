/**
 * Credential rows: agent tokens, admin tokens and enrollment secrets. Only
 * bcrypt hashes are stored; every lookup is by the id the credential names.
 */
import { type CommonQueryMethods, sql } from 'slonik';
import { z } from 'zod';
import { type AdminRole, adminRoles } from '../rows.ts';

const agentTokenRow = z.object({
  id: z.string(),
  agent_id: z.string(),
  token_hash: z.string(),
  expires_at: z.string(),
  hostname: z.string(),
  budgets: z.unknown().nullable(),
});
export type AgentTokenRow = z.infer<typeof agentTokenRow>;

/**
 * A live (unrevoked, unexpired) agent token by id, with what a session of
 * its agent starts from: the agent's hostname and its stored budget state.
 * One round trip at every socket upgrade.
 */
export async function findLiveAgentToken(
  db: CommonQueryMethods,
  id: string,
): Promise<AgentTokenRow | null> {
  return db.maybeOne(sql.type(agentTokenRow)`
    SELECT t.id, t.agent_id, t.token_hash, t.expires_at, a.hostname, b.state AS budgets
    FROM agent_tokens t
    JOIN agents a ON a.id = t.agent_id
    LEFT JOIN agent_budgets b ON b.agent_id = t.agent_id
    WHERE t.id = ${id} AND NOT t.is_revoked AND t.expires_at > now()`);
}

export async function insertAgentToken(
  db: CommonQueryMethods,
  token: { id: string; agentId: string; hash: string; expiresAt: string },
): Promise<void> {
  await db.query(sql.unsafe`
    INSERT INTO agent_tokens (id, agent_id, token_hash, expires_at)
    VALUES (${token.id}, ${token.agentId}, ${token.hash}, ${token.expiresAt}::timestamptz)`);
}

/**
 * Issuing a token and revoking an agent's tokens serialise on the agent's
 * row: a revocation locks it FOR UPDATE, a token issue FOR KEY SHARE (which
 * the daemons' status writes, FOR NO KEY UPDATE, do not wait for). A token
 * issued while a revocation waited is committed before the revocation's next
 * statement starts, so that statement sees it and revokes it too; a token
 * issue that waited on a revocation then finds its session's token revoked.
 * Each returns false when there is no such agent.
 */
export async function lockAgentForRevocation(
  db: CommonQueryMethods,
  agentId: string,
): Promise<boolean> {
  const result = await db.query(sql.unsafe`SELECT id FROM agents WHERE id = ${agentId} FOR UPDATE`);
  return result.rowCount > 0;
}

export async function lockAgentForTokenIssue(
  db: CommonQueryMethods,
  agentId: string,
): Promise<boolean> {
  const result = await db.query(
    sql.unsafe`SELECT id FROM agents WHERE id = ${agentId} FOR KEY SHARE`,
  );
  return result.rowCount > 0;
}

/** Whether the agent token is unrevoked and unexpired (a statement of its own: see above). */
export async function isAgentTokenLive(db: CommonQueryMethods, tokenId: string): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    SELECT 1 FROM agent_tokens WHERE id = ${tokenId} AND NOT is_revoked AND expires_at > now()`);
  return result.rowCount > 0;
}

/** Revokes the agent's tokens other than `exceptId`; returns how many. */
export async function revokeAgentTokens(
  db: CommonQueryMethods,
  agentId: string,
  exceptId: string | null,
): Promise<number> {
  const result = await db.query(sql.unsafe`
    UPDATE agent_tokens SET is_revoked = true, revoked_at = now()
    WHERE agent_id = ${agentId} AND NOT is_revoked
      AND (${exceptId}::uuid IS NULL OR id <> ${exceptId}::uuid)`);
  return result.rowCount;
}

const adminTokenRow = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(adminRoles),
  token_hash: z.string(),
});
export type AdminTokenRow = z.infer<typeof adminTokenRow>;

export async function findLiveAdminToken(
  db: CommonQueryMethods,
  id: string,
): Promise<AdminTokenRow | null> {
  return db.maybeOne(sql.type(adminTokenRow)`
    SELECT id, name, role, token_hash FROM admin_tokens
    WHERE id = ${id} AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`);
}

export async function insertAdminToken(
  db: CommonQueryMethods,
  token: {
    id: string;
    name: string;
    role: AdminRole;
    hash: string;
    createdBy: string;
    expiresAt: string | null;
  },
): Promise<void> {
  await db.query(sql.unsafe`
    INSERT INTO admin_tokens (id, name, role, token_hash, created_by, expires_at)
    VALUES (${token.id}, ${token.name}, ${token.role}, ${token.hash}, ${token.createdBy},
      ${token.expiresAt}::timestamptz)`);
}

/** Revokes an admin token; false when there was no live one with that id. */
export async function revokeAdminToken(db: CommonQueryMethods, id: string): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    UPDATE admin_tokens SET revoked_at = now() WHERE id = ${id} AND revoked_at IS NULL`);
  return result.rowCount === 1;
}

const adminTokenListRow = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(adminRoles),
  created_by: z.string(),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});

/** Admin tokens without their hashes, newest first. */
export async function listAdminTokens(db: CommonQueryMethods) {
  return db.any(sql.type(adminTokenListRow)`
    SELECT id, name, role, created_by, created_at, expires_at, revoked_at
    FROM admin_tokens ORDER BY created_at DESC LIMIT 1000`);
}

export async function countAdminTokens(db: CommonQueryMethods): Promise<number> {
  return db.oneFirst(sql.type(z.object({ count: z.number() }))`
    SELECT count(*)::int AS count FROM admin_tokens`);
}

const enrollmentSecretRow = z.object({
  id: z.string(),
  secret_hash: z.string(),
  usable: z.boolean(),
});

/** An enrollment secret by id, with whether it may still be used. */
export async function findEnrollmentSecret(
  db: CommonQueryMethods,
  id: string,
): Promise<z.infer<typeof enrollmentSecretRow> | null> {
  return db.maybeOne(sql.type(enrollmentSecretRow)`
    SELECT id, secret_hash,
      (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
        AND (max_uses IS NULL OR uses < max_uses)) AS usable
    FROM enrollment_secrets WHERE id = ${id}`);
}

/** Revokes an enrollment secret; false when there was no unrevoked one with that id. */
export async function revokeEnrollmentSecret(db: CommonQueryMethods, id: string): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    UPDATE enrollment_secrets SET revoked_at = now() WHERE id = ${id} AND revoked_at IS NULL`);
  return result.rowCount === 1;
}

const enrollmentSecretListRow = z.object({
  id: z.string(),
  created_by: z.string(),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  max_uses: z.number().nullable(),
  uses: z.number(),
  revoked_at: z.string().nullable(),
});

/** Enrollment secrets without their hashes, newest first. */
export async function listEnrollmentSecrets(db: CommonQueryMethods) {
  return db.any(sql.type(enrollmentSecretListRow)`
    SELECT id, created_by, created_at, expires_at, max_uses, uses, revoked_at
    FROM enrollment_secrets ORDER BY created_at DESC LIMIT 1000`);
}

/** Counts one use, atomically; false when the secret was used up meanwhile. */
export async function spendEnrollmentSecret(db: CommonQueryMethods, id: string): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    UPDATE enrollment_secrets SET uses = uses + 1
    WHERE id = ${id} AND revoked_at IS NULL
      AND (expires_at IS NULL OR expires_at > now())
      AND (max_uses IS NULL OR uses < max_uses)`);
  return result.rowCount === 1;
}

export async function insertEnrollmentSecret(
  db: CommonQueryMethods,
  secret: {
    id: string;
    hash: string;
    createdBy: string;
    maxUses: number | null;
    expiresAt: string | null;
  },
): Promise<void> {
  await db.query(sql.unsafe`
    INSERT INTO enrollment_secrets (id, secret_hash, created_by, max_uses, expires_at)
    VALUES (${secret.id}, ${secret.hash}, ${secret.createdBy}, ${secret.maxUses},
      ${secret.expiresAt}::timestamptz)`);
}
