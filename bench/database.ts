/**
 * The benchmark's own database on the local PostgreSQL server: created
 * fresh for each run (`citadel_bench_<pid>_<time>`), migrated with the
 * daemon's migrations, dropped at the end. `BENCH_DATABASE_URL` names the
 * server's maintenance database (default `postgres://postgres@127.0.0.1:5432/postgres`).
 */
import pg from 'pg';
import { migrate } from '../src/database/migrate.ts';
import { silentLogger } from '../src/log/logger.ts';

const defaultAdminUrl = 'postgres://postgres@127.0.0.1:5432/postgres';

/** A fresh, migrated database and a way to drop it. */
export interface BenchDatabase {
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

export async function createBenchDatabase(): Promise<BenchDatabase> {
  const adminUrl = process.env['BENCH_DATABASE_URL'] ?? defaultAdminUrl;
  await dropOrphans(adminUrl);
  const name = `citadel_bench_${process.pid}_${Date.now()}`;
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  await migrate(url.toString(), silentLogger());
  return {
    url: url.toString(),
    name,
    drop: async () => {
      await withClient(adminUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
      );
    },
  };
}

/** Runs `work` on a short-lived client. */
export async function withClient<T>(
  url: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Drops benchmark databases left by runs whose process is gone (a watchdog stop, a kill). */
async function dropOrphans(adminUrl: string): Promise<void> {
  await withClient(adminUrl, async (client) => {
    const found = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE 'citadel\\_bench\\_%'",
    );
    for (const { datname } of found.rows) {
      const pid = Number(/^citadel_bench_(\d+)_\d+$/.exec(datname)?.[1]);
      if (!Number.isInteger(pid) || isAlive(pid)) continue;
      await client.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
    }
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
