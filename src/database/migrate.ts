/**
 * Applies the numbered migrations in `sql/` in order, each in its own
 * transaction, and records them in `schema_migrations` with a checksum. A
 * session advisory lock keeps two daemons from migrating at once. A recorded
 * migration whose file has changed stops the start: history is not edited.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Logger } from '../log/logger.ts';

export const migrationsDir = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../sql',
);

/** An arbitrary constant: the advisory lock key that serialises migrators. */
const migrationLockKey = 7_413_052_219;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export function readMigrations(dir = migrationsDir): Migration[] {
  return readdirSync(dir)
    .filter((file) => /^\d{3}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => {
      const sql = readFileSync(path.join(dir, file), 'utf8');
      return {
        version: Number(file.slice(0, 3)),
        name: file.replace(/\.sql$/, ''),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    });
}

/** Applies what is missing; returns the names applied now. */
export async function migrate(connectionUri: string, log: Logger): Promise<string[]> {
  const client = new pg.Client({ connectionString: connectionUri });
  client.on('error', (error) => log.error({ err: error }, 'migration connection failed'));
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [migrationLockKey]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = await client.query<{ version: number; checksum: string; name: string }>(
      'SELECT version, name, checksum FROM schema_migrations',
    );
    const applied = new Map(done.rows.map((row) => [row.version, row]));
    const appliedNow: string[] = [];
    for (const migration of readMigrations()) {
      const previous = applied.get(migration.version);
      if (previous) {
        if (previous.checksum !== migration.checksum) {
          throw new Error(`migration ${migration.name} changed after it was applied`);
        }
        continue;
      }
      await applyOne(client, migration);
      log.info({ migration: migration.name }, 'migration:applied');
      appliedNow.push(migration.name);
    }
    return appliedNow;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [migrationLockKey]).catch(() => {});
    await client.end().catch(() => {});
  }
}

async function applyOne(client: pg.Client, migration: Migration): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(migration.sql);
    await client.query(
      'INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)',
      [migration.version, migration.name, migration.checksum],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/** The highest version the code knows; `/readyz` compares the database with it. */
export function latestMigrationVersion(): number {
  return readMigrations().at(-1)?.version ?? 0;
}
