/**
 * The write-behind batch statement against real PostgreSQL: liveness and
 * budget state are written only by the daemon holding the agent's session
 * claim, whatever order the daemons' batches reach the database in.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/database/migrate.ts';
import { createDatabasePool, type DatabasePool } from '../../src/database/pool.ts';
import { upsertAgent } from '../../src/database/queries/agents.ts';
import { claimSession } from '../../src/database/queries/cluster.ts';
import { type WriteBatch, writeBatch } from '../../src/database/queries/write-batch.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let pool: DatabasePool;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.url, silentLogger());
  pool = await createDatabasePool({ connectionUri: db.url, minPoolSize: 0, maxPoolSize: 2 });
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

async function enrolledAgent(): Promise<string> {
  const hostname = `host-${randomUUID().slice(0, 8)}`;
  const agent = await upsertAgent(pool, { hostname, machineId: undefined, ipAddress: '127.0.0.1' });
  return agent.id;
}

/** A batch whose budget state carries `spentAt`, to tell whose write landed. */
function batchOf(
  daemonId: string,
  agentId: string,
  status: 'active' | 'offline',
  spentAt: number,
): WriteBatch {
  return {
    daemonId,
    threats: [],
    liveness: [{ agentId, status, lastHeartbeat: null }],
    budgets: new Map([[agentId, { threat: [spentAt], refresh: [], heartbeat: [] }]]),
    audit: [],
  };
}

const spent = (at: number) => ({ threat: [at], refresh: [], heartbeat: [] });

async function rowOf(agentId: string) {
  const agent = await db.query('SELECT status FROM agents WHERE id = $1', [agentId]);
  const budgets = await db.query('SELECT state FROM agent_budgets WHERE agent_id = $1', [agentId]);
  return { status: agent.rows[0]!.status, budgets: budgets.rows[0]?.state };
}

describe('a write-behind batch', () => {
  it('writes the status and budgets of an agent whose session its daemon holds', async () => {
    const agentId = await enrolledAgent();
    const holder = randomUUID();
    await claimSession(pool, { agentId, sessionId: randomUUID(), daemonId: holder });
    await writeBatch(pool, batchOf(holder, agentId, 'active', 1));
    expect(await rowOf(agentId)).toEqual({ status: 'active', budgets: spent(1) });
  });

  it('changes nothing for an agent whose session moved to another daemon since', async () => {
    const agentId = await enrolledAgent();
    const older = randomUUID();
    const newer = randomUUID();
    await claimSession(pool, { agentId, sessionId: randomUUID(), daemonId: older });
    await claimSession(pool, { agentId, sessionId: randomUUID(), daemonId: newer });
    await writeBatch(pool, batchOf(newer, agentId, 'active', 2));
    // The older daemon's batch arrives last, as when it saw its session close late.
    await writeBatch(pool, batchOf(older, agentId, 'offline', 1));
    expect(await rowOf(agentId)).toEqual({ status: 'active', budgets: spent(2) });
  });

  it('changes nothing for an agent no daemon has claimed', async () => {
    const agentId = await enrolledAgent();
    await writeBatch(pool, batchOf(randomUUID(), agentId, 'active', 1));
    expect(await rowOf(agentId)).toEqual({ status: 'offline', budgets: undefined });
  });
});
