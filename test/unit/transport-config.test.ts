/** The transport settings of the configuration: HSTS options and the certificate pair. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';

describe('transport configuration', () => {
  it('leaves includeSubDomains and preload off unless configured', () => {
    const config = loadConfig({ env: {} });
    expect(config.hstsIncludeSubDomains).toBe(false);
    expect(config.hstsPreload).toBe(false);
  });

  it('reads the HSTS switches as true or false from the environment', () => {
    const config = loadConfig({
      env: { HSTS_INCLUDE_SUBDOMAINS: 'true', HSTS_PRELOAD: 'true' },
    });
    expect(config.hstsIncludeSubDomains).toBe(true);
    expect(config.hstsPreload).toBe(true);
    expect(loadConfig({ env: { HSTS_INCLUDE_SUBDOMAINS: 'false' } }).hstsIncludeSubDomains).toBe(
      false,
    );
  });

  it('reads the HSTS switches as JSON booleans from the config file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'citadel-hsts-'));
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ HSTS_INCLUDE_SUBDOMAINS: true }));
    expect(loadConfig({ env: { CITADEL_CONFIG: file } }).hstsIncludeSubDomains).toBe(true);
  });

  it('refuses a switch that is neither true nor false, naming it', () => {
    expect(() => loadConfig({ env: { HSTS_PRELOAD: 'yes' } })).toThrow(
      'configuration key HSTS_PRELOAD: expected true or false',
    );
  });

  it('refuses preload without includeSubDomains, as the preload list would', () => {
    expect(() => loadConfig({ env: { HSTS_PRELOAD: 'true' } })).toThrow(
      /^configuration key HSTS_PRELOAD: /,
    );
  });

  it('refuses a certificate file without its key file, and the reverse', () => {
    expect(() => loadConfig({ env: { TLS_CERT_FILE: '/etc/c.pem' } })).toThrow(
      'configuration key TLS_KEY_FILE: required when TLS_CERT_FILE is set',
    );
    expect(() => loadConfig({ env: { TLS_KEY_FILE: '/etc/k.pem' } })).toThrow(
      'configuration key TLS_CERT_FILE: required when TLS_KEY_FILE is set',
    );
  });
});
