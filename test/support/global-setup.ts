/**
 * The test database server. With `TEST_DATABASE_URL` set (CI sets it to the
 * machine's PostgreSQL), suites create their databases there. Without it, the
 * embedded PostgreSQL of the daemon itself is started in `.test-pg/` and
 * stopped at the end, so `npm test` needs no server installed.
 */
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { EmbeddedDatabase } from '../../src/database/embedded.ts';
import { silentLogger } from '../../src/log/logger.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env['TEST_DATABASE_URL'];
  if (configured) {
    project.provide('adminDatabaseUrl', configured);
    return async () => {};
  }
  const embedded = new EmbeddedDatabase({
    dataDir: path.resolve('.test-pg'),
    runAsUser: undefined,
    log: silentLogger(),
  });
  await embedded.start();
  project.provide('adminDatabaseUrl', embedded.adminUri());
  return () => embedded.stop();
}
