/**
 * The daemon's Slonik pool. Timestamps come back as ISO-8601 strings and
 * bigints as numbers (sequences stay far below 2^53), so rows can be sent to
 * clients as they are.
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
    typeParsers: [
      { name: 'timestamptz', parse: (value) => new Date(value).toISOString() },
      { name: 'int8', parse: (value) => Number(value) },
    ],
  });
}
