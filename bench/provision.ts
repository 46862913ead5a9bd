/**
 * Bulk provisioning of benchmark agents, straight into the benchmark
 * database: the documented benchmark path that keeps the enrollment budget
 * (5 an hour per IP) out of what is measured. Each agent gets its own row
 * and its own token, `cat_<token id>_<43 base64url>`, made by the daemon's
 * own `issueCredential`, and its own bcrypt hash: one token, one hash.
 *
 * The hash cost is a parameter. Load phases use cost 4 (about 1,300 hashes a
 * second here) so that a 19,000-agent fleet is ready in seconds; that is
 * acceptable only because the database is the benchmark's own and is dropped
 * after the run. The reconnect storm uses the production cost, 10, because
 * verifying it is what a storm costs. Cost-10 credentials take ~40 ms each
 * to hash, so they are kept between runs in a cache file in the OS temp
 * directory (mode 0600, benchmark tokens only), and reinserted with the same
 * ids into each fresh database.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcrypt';
import { issueCredential } from '../src/credentials/tokens.ts';
import type { AgentCredential } from './bench-agent.ts';
import { withClient } from './database.ts';

/** The bcrypt cost of load agents; for the benchmark database only. */
export const benchHashCost = 4;
/** The daemon's production cost. */
export const productionHashCost = 10;

interface StoredCredential {
  readonly agentId: string;
  readonly tokenId: string;
  readonly token: string;
  readonly hash: string;
}

/** Inserts `count` agents with distinct tokens hashed at `cost`; returns their credentials. */
export async function provisionAgents(
  databaseUrl: string,
  count: number,
  cost: number,
  label: string,
): Promise<AgentCredential[]> {
  const credentials =
    cost === productionHashCost
      ? await cachedCredentials(count, cost)
      : await makeCredentials(count, cost);
  await withClient(databaseUrl, async (client) => {
    for (let start = 0; start < credentials.length; start += 2_000) {
      const slice = credentials.slice(start, start + 2_000);
      await client.query(
        `INSERT INTO agents (id, hostname, identity, status)
         SELECT id, 'bench-' || $2 || '-' || ord, 'host:bench-' || $2 || '-' || id, 'offline'
         FROM unnest($1::uuid[]) WITH ORDINALITY AS a(id, ord)`,
        [slice.map((c) => c.agentId), label],
      );
      await client.query(
        `INSERT INTO agent_tokens (id, agent_id, token_hash, expires_at)
         SELECT id, agent_id, token_hash, now() + interval '23 hours'
         FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t(id, agent_id, token_hash)`,
        [slice.map((c) => c.tokenId), slice.map((c) => c.agentId), slice.map((c) => c.hash)],
      );
    }
  });
  return credentials.map((c) => ({ agentId: c.agentId, token: c.token }));
}

async function makeCredentials(count: number, cost: number): Promise<StoredCredential[]> {
  const made: StoredCredential[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const credential = issueCredential('agentToken');
      const hash = await bcrypt.hash(credential.secret, cost);
      made[index] = {
        agentId: crypto.randomUUID(),
        tokenId: credential.id,
        token: credential.text,
        hash,
      };
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return made;
}

function cacheFile(cost: number): string {
  return path.join(os.tmpdir(), 'citadel-bench-cache', `agent-tokens-cost${cost}.json`);
}

async function cachedCredentials(count: number, cost: number): Promise<StoredCredential[]> {
  const file = cacheFile(cost);
  const cached: StoredCredential[] = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as StoredCredential[])
    : [];
  if (cached.length < count) {
    const made = await makeCredentials(count - cached.length, cost);
    cached.push(...made);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, JSON.stringify(cached), { mode: 0o600 });
  }
  return cached.slice(0, count);
}
