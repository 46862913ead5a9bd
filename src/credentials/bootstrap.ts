/**
 * First start: with no admin token in the database, the daemon creates an
 * `admin` token and an enrollment secret, writes each to a file in
 * `<data dir>/bootstrap/` (mode 0600) and logs the files' paths, never the
 * values. An advisory lock keeps two daemons from both doing it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type DatabasePool, sql } from 'slonik';
import { insertAuditEvents } from '../database/queries/audit.ts';
import { countAdminTokens } from '../database/queries/credentials.ts';
import type { Logger } from '../log/logger.ts';
import { createAdminToken } from './admin-tokens.ts';
import { createEnrollmentSecret } from './enrollment.ts';
import type { Hasher } from './hasher.ts';

const bootstrapLockKey = 7_413_052_220;

export function bootstrapPaths(dataDir: string): { adminToken: string; enrollmentSecret: string } {
  const dir = path.join(dataDir, 'bootstrap');
  return {
    adminToken: path.join(dir, 'admin-token'),
    enrollmentSecret: path.join(dir, 'enrollment-secret'),
  };
}

export async function bootstrapCredentials(
  pool: DatabasePool,
  hasher: Hasher,
  dataDir: string,
  log: Logger,
): Promise<boolean> {
  const files = bootstrapPaths(dataDir);
  const created = await pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT pg_advisory_xact_lock(${bootstrapLockKey})`);
    if ((await countAdminTokens(tx)) > 0) return undefined;
    const admin = await createAdminToken(tx, hasher, {
      name: 'bootstrap',
      role: 'admin',
      createdBy: 'system',
      expiresAt: null,
    });
    const secret = await createEnrollmentSecret(tx, hasher, {
      createdBy: 'system',
      maxUses: null,
      expiresAt: null,
    });
    await insertAuditEvents(tx, [
      {
        eventType: 'admin_token.created',
        severity: 'warning',
        actor: 'system',
        action: 'create bootstrap admin token',
        result: 'success',
        details: { token_id: admin.id, role: 'admin' },
      },
      {
        eventType: 'enrollment_secret.created',
        severity: 'info',
        actor: 'system',
        action: 'create bootstrap enrollment secret',
        result: 'success',
        details: { secret_id: secret.id },
      },
    ]);
    mkdirSync(path.dirname(files.adminToken), { recursive: true, mode: 0o700 });
    writeFileSync(files.adminToken, `${admin.token}\n`, { mode: 0o600 });
    writeFileSync(files.enrollmentSecret, `${secret.secret}\n`, { mode: 0o600 });
    return true;
  });
  if (!created) return false;
  log.warn(
    { adminTokenFile: files.adminToken, enrollmentSecretFile: files.enrollmentSecret },
    'bootstrap:credentials-written; read them from these files, then store them safely',
  );
  return true;
}
