/**
 * Agent tokens: issued at enrollment and refresh, living `agentTokenTtlMs`,
 * verified at every socket upgrade by one lookup and one bcrypt compare.
 */
import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { findLiveAgentToken, insertAgentToken } from '../database/queries/credentials.ts';
import { CitadelError } from '../errors/catalogue.ts';
import type { Hasher } from './hasher.ts';
import { issueCredential, parseCredential } from './tokens.ts';

/** How long before expiry an agent is told to refresh: an hour, or a quarter of short lives. */
export function refreshWindowFor(ttlMs: number): number {
  return Math.min(3_600_000, Math.floor(ttlMs / 4));
}

export interface AgentPrincipal {
  readonly agentId: string;
  readonly tokenId: string;
  readonly expiresAt: string;
}

/** A verified agent token, with what a session of its agent starts from. */
export interface VerifiedAgentToken extends AgentPrincipal {
  readonly hostname: string;
  /** Budget state as the database had it, from this or another daemon. */
  readonly storedBudgets: unknown;
}

export interface IssuedToken {
  readonly tokenId: string;
  readonly token: string;
  readonly expiresAt: string;
}

/** A new token's text and its bcrypt hash, made before any lock is taken. */
export interface PreparedToken {
  readonly tokenId: string;
  readonly token: string;
  readonly hash: string;
}

export async function prepareAgentToken(hasher: Hasher): Promise<PreparedToken> {
  const credential = issueCredential('agentToken');
  const hash = await hasher.hash(credential.secret);
  return { tokenId: credential.id, token: credential.text, hash };
}

/** Stores a prepared token for the agent, inside the caller's transaction. */
export async function storeAgentToken(
  db: CommonQueryMethods,
  prepared: PreparedToken,
  agentId: string,
  nowMs: number,
  ttlMs: number,
): Promise<IssuedToken> {
  const expiresAt = new Date(nowMs + ttlMs).toISOString();
  await insertAgentToken(db, { id: prepared.tokenId, agentId, hash: prepared.hash, expiresAt });
  return { tokenId: prepared.tokenId, token: prepared.token, expiresAt };
}

/** Creates and stores a new token for the agent, inside the caller's transaction. */
export async function issueAgentToken(
  db: CommonQueryMethods,
  hasher: Hasher,
  agentId: string,
  nowMs: number,
  ttlMs: number,
): Promise<IssuedToken> {
  return storeAgentToken(db, await prepareAgentToken(hasher), agentId, nowMs, ttlMs);
}

/**
 * The agent a token belongs to; `unauthorized` for anything else. `signal`
 * aborts a check still waiting for bcrypt when the client has gone.
 */
export async function verifyAgentToken(
  pool: DatabasePool,
  hasher: Hasher,
  text: string | undefined,
  signal?: AbortSignal,
): Promise<VerifiedAgentToken> {
  const parsed = text === undefined ? undefined : parseCredential('agentToken', text);
  if (!parsed) throw new CitadelError('unauthorized', { details: { reason: 'malformed' } });
  const row = await findLiveAgentToken(pool, parsed.id);
  if (!row) throw new CitadelError('unauthorized', { details: { reason: 'unknown' } });
  if (!(await hasher.verify(parsed.secret, row.token_hash, signal))) {
    throw new CitadelError('unauthorized', { details: { reason: 'mismatch' } });
  }
  return {
    agentId: row.agent_id,
    tokenId: row.id,
    expiresAt: row.expires_at,
    hostname: row.hostname,
    storedBudgets: row.budgets,
  };
}
