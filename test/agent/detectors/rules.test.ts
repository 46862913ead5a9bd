/**
 * The shipped rule file against lines in the shapes Debian's auth.log, RHEL's
 * /var/log/secure and `journalctl -o cat` give them, and the checks that
 * stop a broken rule file at start.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileRules, type LogRule, loadRuleFile } from '../../../src/agent/detectors/rules.ts';
import { isClientError } from '../../../src/agent/errors.ts';
import { removeScratch, scratchDirectory } from './context.ts';

let rules: LogRule[];

beforeEach(async () => {
  rules = await loadRuleFile();
});

/** The name of the first shipped rule whose pattern matches, as the engine picks it. */
function ruleFor(line: string): string | undefined {
  return rules.find((rule) => rule.patterns.some((pattern) => pattern.test(line)))?.name;
}

function groupsFor(line: string): Record<string, string | undefined> | undefined {
  for (const rule of rules) {
    for (const pattern of rule.patterns) {
      const match = pattern.exec(line);
      if (match) return { ...match.groups };
    }
  }
  return undefined;
}

const sshFailures = [
  'Dec  3 10:15:01 web1 sshd[2231]: Failed password for root from 203.0.113.50 port 51234 ssh2',
  'Dec  3 10:15:01 web1 sshd[2231]: Failed password for invalid user admin from 203.0.113.50 ' +
    'port 51234 ssh2',
  '2025-12-03T10:15:01.123456+00:00 web1 sshd[2231]: Failed password for root from 2001:db8::5 ' +
    'port 51234 ssh2',
  'Dec  3 10:15:02 db1 sshd[880]: Failed keyboard-interactive/pam for invalid user oracle from ' +
    '198.51.100.4 port 40000 ssh2',
  'Failed password for root from 203.0.113.50 port 51234 ssh2',
];

const sudoFailures = [
  'Dec  3 10:20:11 web1 sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; ' +
    'PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow',
  'Dec  3 10:20:11 db1 sudo[4100]:     bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/bob ; ' +
    'USER=root ; COMMAND=/bin/bash',
  '    alice : 1 incorrect password attempt ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; ' +
    'COMMAND=/usr/bin/id',
];

const newAccounts = [
  'Dec  3 10:30:00 web1 useradd[5001]: new user: name=mallory, UID=1002, GID=1002, ' +
    'home=/home/mallory, shell=/bin/bash, from=/dev/pts/0',
  '2025-12-03T10:30:00+01:00 db1 useradd[5001]: new user: name=mallory, UID=1002, GID=1002, ' +
    'home=/home/mallory, shell=/bin/bash, from=/dev/pts/1',
  'new user: name=mallory, UID=1002, GID=1002, home=/home/mallory, shell=/bin/bash, from=none',
];

describe('the shipped rule file', () => {
  it.each(sshFailures)('counts an SSH authentication failure: %s', (line) => {
    expect(ruleFor(line)).toBe('ssh-auth-failures');
    expect(groupsFor(line)?.['source']).toMatch(/^(203\.0\.113\.50|2001:db8::5|198\.51\.100\.4)$/);
  });

  it.each(sudoFailures)('reports a refused sudo: %s', (line) => {
    expect(ruleFor(line)).toBe('sudo-failures');
    expect(groupsFor(line)?.['user']).toMatch(/^(alice|bob)$/);
  });

  it.each(newAccounts)('reports a new account: %s', (line) => {
    expect(ruleFor(line)).toBe('new-user-account');
    expect(groupsFor(line)?.['user']).toBe('mallory');
  });

  it('reports a new account with user id 0 under its own, more severe rule', () => {
    const line = 'new user: name=toor, UID=0, GID=0, home=/root, shell=/bin/bash, from=none';
    expect(ruleFor(line)).toBe('new-root-account');
    const severity = (name: string) => rules.find((rule) => rule.name === name)?.severity ?? 0;
    expect(severity('new-root-account')).toBeGreaterThan(severity('new-user-account'));
  });

  it('counts an unknown user name separately from failed passwords', () => {
    const line = 'Dec  3 10:15:00 web1 sshd[2231]: Invalid user admin from 203.0.113.50 port 51234';
    expect(ruleFor(line)).toBe('ssh-invalid-users');
  });

  it.each([
    'Dec  3 10:15:01 web1 sshd[2231]: Accepted password for alice from 192.0.2.10 port 50000 ssh2',
    'Dec  3 10:15:01 web1 sshd[2231]: pam_unix(sshd:auth): authentication failure; logname= ' +
      'uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50  user=root',
    'Dec  3 10:20:09 web1 sudo: pam_unix(sudo:auth): authentication failure; logname=alice ' +
      'uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice',
    'Dec  3 10:20:12 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; ' +
      'COMMAND=/usr/bin/id',
    'Dec  3 10:30:00 web1 groupadd[5000]: new group: name=mallory, GID=1002',
  ])('leaves alone a line that is not a threat or is counted elsewhere: %s', (line) => {
    expect(ruleFor(line)).toBeUndefined();
  });

  it('asks five SSH failures from one address within ten minutes before it reports', () => {
    const ssh = rules.find((rule) => rule.name === 'ssh-auth-failures');
    expect(ssh?.threshold).toEqual({ count: 5, withinMs: 600_000, per: 'source' });
  });
});

describe('checking a rule file', () => {
  let scratch: string;

  beforeEach(async () => {
    scratch = await scratchDirectory('rules');
  });

  afterEach(async () => {
    await removeScratch(scratch);
  });

  const rule = (overrides: Record<string, unknown>) => ({
    version: 1,
    rules: [
      {
        name: 'r1',
        threat_type: 'test.rule',
        severity: 5,
        title: 'from {source}',
        patterns: ['from (?<source>\\S+)'],
        ...overrides,
      },
    ],
  });

  function refusal(value: unknown): string {
    try {
      compileRules(value, 'rules.json');
    } catch (error) {
      if (isClientError(error, 'rules_invalid')) return error.message;
      throw error;
    }
    throw new Error('the rule file was accepted');
  }

  it('refuses an unknown key, naming it', () => {
    expect(refusal(rule({ severty: 5 }))).toMatch(/rules\.0.*severty|severty/);
  });

  it('refuses a severity outside 1..10 and a threat type the server would refuse', () => {
    expect(refusal(rule({ severity: 11 }))).toContain('rules.0.severity');
    expect(refusal(rule({ threat_type: 'has space' }))).toContain('rules.0.threat_type');
  });

  it('refuses a pattern that does not compile, naming the rule and the pattern', () => {
    expect(refusal(rule({ patterns: ['from (?<source>'] }))).toMatch(/rule r1: patterns\.0/);
  });

  it('refuses a title or threshold naming a group a pattern lacks', () => {
    expect(refusal(rule({ patterns: ['from \\S+'] }))).toContain('(?<source>');
    const threshold = { count: 3, within_s: 60, per: 'address' };
    expect(refusal(rule({ threshold }))).toContain('(?<address>');
  });

  it('refuses two rules with one name', () => {
    const twice = rule({});
    twice.rules.push({ ...twice.rules[0]! });
    expect(refusal(twice)).toContain('used twice');
  });

  it('refuses a file that is not JSON with rules_invalid naming the file', async () => {
    const path = join(scratch, 'broken.json');
    await writeFile(path, '{"version": 1, "rules": [');
    const error = await loadRuleFile(path).catch((caught: unknown) => caught);
    expect(isClientError(error, 'rules_invalid')).toBe(true);
    expect((error as Error).message).toContain(path);
  });
});
