/** The files an operator installs: the systemd unit and the configuration samples. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';

const root = new URL('../../', import.meta.url).pathname;
const hasAnalyze = existsSync('/usr/bin/systemd-analyze');

describe('the systemd unit', () => {
  const unit = readFileSync(`${root}systemd/citadel-archer.service`, 'utf8');

  it('is a notify service with a watchdog, a stop timeout and credentials', () => {
    for (const line of [
      'Type=notify',
      'WatchdogSec=30s',
      'TimeoutStopSec=20s',
      'StateDirectory=citadel-archer',
      'User=citadel-archer',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'SystemCallFilter=@system-service',
    ]) {
      expect(unit).toContain(line);
    }
    expect(unit).toMatch(/^LoadCredential=database-url:/m);
  });

  it.skipIf(!hasAnalyze)('scores an exposure of 2.0 or lower in systemd-analyze security', () => {
    const report = execFileSync(
      'systemd-analyze',
      ['security', '--offline=true', `${root}systemd/citadel-archer.service`],
      { encoding: 'utf8' },
    );
    const score = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(report)?.[1]);
    expect(score).toBeLessThanOrEqual(2.0);
  });
});

describe('the configuration samples', () => {
  it('parse: the environment file and the JSON file', () => {
    const envFile = readFileSync(`${root}config/citadel-archer.env.example`, 'utf8');
    const env: Record<string, string> = {};
    for (const line of envFile.split('\n')) {
      const match = /^([A-Z_]+)=(.*)$/.exec(line);
      if (match) env[match[1]!] = match[2]!;
    }
    expect(Object.keys(env).length).toBeGreaterThan(5);
    expect(loadConfig({ env }).environment).toBe('production');
    const json = loadConfig({ env: {}, configFile: `${root}config/citadel-archer.example.json` });
    expect(json.environment).toBe('staging');
  });
});
