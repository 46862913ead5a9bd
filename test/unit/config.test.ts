/** Configuration: defaults, file, environment, and errors that name the key. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, productionProblem } from '../../src/config/config.ts';

describe('configuration', () => {
  it('runs on development defaults with nothing configured', () => {
    const config = loadConfig({ env: {}, cwd: '/srv/x' });
    expect(config.environment).toBe('development');
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8443 });
    expect(config.httpListen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.dataDir).toBe('/srv/x/data');
    expect(config.database.kind).toBe('embedded');
  });

  it('lets the environment override the file, which overrides the defaults', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'citadel-config-'));
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ CITADEL_LISTEN: '0.0.0.0:9443', LOG_LEVEL: 'warn' }));
    const config = loadConfig({ env: { CITADEL_CONFIG: file, LOG_LEVEL: 'debug' } });
    expect(config.listen.port).toBe(9443);
    expect(config.logLevel).toBe('debug');
  });

  it('builds a database URL from the DB_* variables', () => {
    const config = loadConfig({
      env: { DB_HOST: 'db.internal', DB_USER: 'citadel', DB_PASSWORD: 'p@ss', DB_NAME: 'fleet' },
    });
    expect(config.database).toEqual({
      kind: 'external',
      connectionUri: 'postgres://citadel:p%40ss@db.internal:5432/fleet',
    });
  });

  it('stops on a bad value with a message naming the key', () => {
    expect(() => loadConfig({ env: { CITADEL_LISTEN: 'nowhere' } })).toThrow(/CITADEL_LISTEN/);
    expect(() => loadConfig({ env: { ENVIRONMENT: 'prod' } })).toThrow(/ENVIRONMENT/);
    expect(() => loadConfig({ env: { TRUSTED_PROXIES: '10.0.0.0/99' } })).toThrow();
  });

  it('stops on an unknown CITADEL_ variable or file key, naming it', () => {
    expect(() => loadConfig({ env: { CITADEL_LISTN: '1' } })).toThrow(/CITADEL_LISTN/);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'citadel-config-'));
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ LOG_LEVL: 'info' }));
    expect(() => loadConfig({ env: { CITADEL_CONFIG: file } })).toThrow(/LOG_LEVL/);
  });

  it('refuses production without certificate files or an external database', () => {
    const noTls = loadConfig({ env: { ENVIRONMENT: 'production', DB_HOST: 'db' } });
    expect(productionProblem(noTls)).toMatch(/TLS_CERT_FILE/);
    const noDb = loadConfig({
      env: { ENVIRONMENT: 'production', TLS_CERT_FILE: 'c', TLS_KEY_FILE: 'k' },
    });
    expect(productionProblem(noDb)).toMatch(/external database/);
  });
});

describe('systemd credentials', () => {
  it('take the database URL and certificate files from CREDENTIALS_DIRECTORY', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'citadel-creds-'));
    writeFileSync(path.join(dir, 'database-url'), 'postgres://app:s3cret@db.internal/fleet\n');
    writeFileSync(path.join(dir, 'tls.crt'), 'x');
    writeFileSync(path.join(dir, 'tls.key'), 'y');
    const config = loadConfig({ env: { CREDENTIALS_DIRECTORY: dir } });
    expect(config.database).toEqual({
      kind: 'external',
      connectionUri: 'postgres://app:s3cret@db.internal/fleet',
    });
    expect(config.tlsCertFile).toBe(path.join(dir, 'tls.crt'));
    expect(config.tlsKeyFile).toBe(path.join(dir, 'tls.key'));
  });
});
