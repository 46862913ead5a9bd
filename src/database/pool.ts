/**
 * The daemon's Slonik pool. Timestamps come back as ISO-8601 strings and
 * bigints as numbers (sequences stay far below 2^53), so rows can be sent to
 * clients as they are.
 *
 * Slonik resets a connection with `DISCARD ALL` each time it goes back to
 * the pool: a second round trip for every query, which a reconnect storm's
 * profile showed as a third of the daemon's busy time. Nothing the daemon
 * runs through the pool leaves session state behind (no `SET`, no session
 * advisory locks, no temporary tables, no LISTEN: migrations and LISTEN use
 * connections of their own), so the reset is switched off.
 */
import { createPool, type DatabasePool } from 'slonik';

export type { DatabasePool };

export interface PoolSettings {
  readonly connectionUri: string;
  readonly minPoolSize: number;
  readonly maxPoolSize: number;
}

export function createDatabasePool(settings: PoolSettings): Promise<DatabasePool> {
  return createPool(settings.connectionUri, {
    minPoolSize: settings.minPoolSize,
    maxPoolSize: settings.maxPoolSize,
    captureStackTrace: false,
    connectionTimeout: 5_000,
    idleTimeout: 30_000,
    queryRetryLimit: 0,
    resetConnection: async () => {},
    typeParsers: [
      { name: 'timestamptz', parse: (value) => new Date(value).toISOString() },
      { name: 'int8', parse: (value) => Number(value) },
    ],
  });
}
