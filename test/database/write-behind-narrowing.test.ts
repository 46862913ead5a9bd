/**
 * A batch the database refuses for one report's data, against real
 * PostgreSQL: the bad report fails alone with `invalid_message`, every other
 * report in the batch is stored and acked, and finding it takes a handful of
 * statements rather than one per report.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock/clock.ts';
import { migrate } from '../../src/database/migrate.ts';
import { createDatabasePool, type DatabasePool } from '../../src/database/pool.ts';
import { upsertAgent } from '../../src/database/queries/agents.ts';
import type { ThreatReport } from '../../src/database/queries/threats.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { WriteBehind } from '../../src/write-behind/write-behind.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let pool: DatabasePool;
let agentId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.url, silentLogger());
  pool = await createDatabasePool({ connectionUri: db.url, minPoolSize: 0, maxPoolSize: 2 });
  agentId = (
    await upsertAgent(pool, { hostname: 'narrowing', machineId: undefined, ipAddress: '127.0.0.1' })
  ).id;
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

function report(detectedAt = new Date().toISOString()): ThreatReport {
  return {
    agentId,
    reportId: randomUUID(),
    threatType: 'test.narrowing',
    severity: 3,
    hostname: 'narrowing',
    title: 'a report',
    detectedAt,
    details: {},
  };
}

describe('a batch refused for one report', () => {
  it('rejects that report alone as invalid, stores the rest, in a few statements', async () => {
    let statements = 0;
    const writeBehind = new WriteBehind({
      pool,
      clock: systemClock,
      log: silentLogger(),
      daemonId: randomUUID(),
      onThreatsStored: () => {},
      settings: { flushDelayMs: 50 },
      observer: {
        committed: () => {
          statements += 1;
        },
        failed: () => {
          statements += 1;
        },
      },
    });
    // Year 0000 passes JavaScript's date parsing but not PostgreSQL's.
    const reports = Array.from({ length: 400 }, (_, i) =>
      i === 237 ? report('0000-01-01T00:00:00Z') : report(),
    );
    const outcomes = await Promise.allSettled(reports.map((r) => writeBehind.submitThreat(r)));
    writeBehind.stop();

    const refused = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ i, o }] : []));
    expect(refused.map((r) => r.i)).toEqual([237]);
    expect(refused[0]!.o).toMatchObject({ reason: { code: 'invalid_message' } });
    const stored = await db.query('SELECT count(*)::int AS n FROM threats WHERE agent_id = $1', [
      agentId,
    ]);
    expect(stored.rows[0]!.n).toBe(399);
    // One by one would take 400; halving and doubling takes about 2·log2(400).
    expect(statements).toBeLessThan(40);
  });
});
