/** A fresh database per suite on the test server, dropped afterwards. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  drop(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

export interface TestDatabaseOptions {
  /**
   * Give the database a role of its own, neither superuser nor anything else,
   * that owns it: `url` then logs in as that role, as a production daemon would.
   */
  readonly ownRole?: boolean;
}

export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const adminUrl = inject('adminDatabaseUrl');
  const name = `citadel_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  let url = withDatabase(adminUrl, name);
  if (options.ownRole) {
    const password = randomBytes(12).toString('hex');
    await admin.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
    await admin.query(`ALTER DATABASE ${name} OWNER TO ${name}`);
    const parsed = new URL(url);
    parsed.username = name;
    parsed.password = password;
    url = parsed.toString();
  }
  await admin.end();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  client.on('error', () => {});
  return {
    url,
    name,
    query: (text, values) => client.query(text, values),
    async drop() {
      await client.end().catch(() => {});
      const dropper = new pg.Client({ connectionString: adminUrl });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await dropper.query(`DROP ROLE IF EXISTS ${name}`);
      await dropper.end();
    },
  };
}
