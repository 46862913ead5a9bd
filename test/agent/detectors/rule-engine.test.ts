import { describe, expect, it } from 'vitest';
import { lineTimeMs } from '../../../src/agent/detectors/log-timestamp.ts';
import { RuleEngine, renderTitle } from '../../../src/agent/detectors/rule-engine.ts';
import { compileRules } from '../../../src/agent/detectors/rules.ts';

const rules = compileRules({
  version: 1,
  rules: [
    {
      name: 'root-login-failure',
      threat_type: 'test.root',
      severity: 8,
      title: 'root from {source}',
      patterns: ['fail user=root from (?<source>\\S+)'],
    },
    {
      name: 'login-failures',
      threat_type: 'test.failures',
      severity: 5,
      title: 'failures from {source}',
      patterns: ['fail user=\\S+ from (?<source>\\S+)'],
      threshold: { count: 3, within_s: 60, per: 'source' },
    },
  ],
});

const fail = (source: string, user = 'bob') => `fail user=${user} from ${source}`;

describe('the rule engine', () => {
  it('fires a threshold rule on the count-th match from one source within the window', () => {
    const engine = new RuleEngine(rules);
    expect(engine.evaluate(fail('a'), 0)).toBeUndefined();
    expect(engine.evaluate(fail('b'), 1_000)).toBeUndefined();
    expect(engine.evaluate(fail('a'), 2_000)).toBeUndefined();
    const match = engine.evaluate(fail('a'), 3_000);
    expect(match).toMatchObject({ count: 3, firstAtMs: 0, groups: { source: 'a' } });
    expect(match?.rule.name).toBe('login-failures');
  });

  it('does not fire for matches spread wider than the window', () => {
    const engine = new RuleEngine(rules);
    expect(engine.evaluate(fail('a'), 0)).toBeUndefined();
    expect(engine.evaluate(fail('a'), 40_000)).toBeUndefined();
    expect(engine.evaluate(fail('a'), 80_000)).toBeUndefined();
    expect(engine.evaluate(fail('a'), 90_000)).toBeDefined();
  });

  it('keeps a source quiet for one window after it fired, then counts afresh', () => {
    const engine = new RuleEngine(rules);
    const fired: number[] = [];
    for (let second = 0; second < 150; second += 1) {
      if (engine.evaluate(fail('a'), second * 1_000)) fired.push(second);
    }
    expect(fired).toEqual([2, 64, 126]);
  });

  it('gives a line to the first rule that matches it, even when a later one would count it', () => {
    const engine = new RuleEngine(rules);
    const match = engine.evaluate(fail('a', 'root'), 0);
    expect(match?.rule.name).toBe('root-login-failure');
    expect(engine.trackedKeys).toBe(0);
  });

  it('forgets the least recently seen sources beyond its bound', () => {
    const engine = new RuleEngine(rules, { maxTrackedKeys: 2 });
    engine.evaluate(fail('a'), 0);
    engine.evaluate(fail('a'), 1);
    engine.evaluate(fail('b'), 2);
    engine.evaluate(fail('c'), 3);
    expect(engine.trackedKeys).toBe(2);
    expect(engine.evaluate(fail('a'), 4)).toBeUndefined();
  });

  it('fills a title from the groups of the match', () => {
    expect(renderTitle('failures from {source} as {user}', { source: '192.0.2.1' })).toBe(
      'failures from 192.0.2.1 as ?',
    );
  });
});

describe('the time of a log line', () => {
  const now = Date.UTC(2026, 0, 10, 12, 0, 0);

  it('is the RFC 3339 timestamp at the start of the line', () => {
    const line = '2026-01-10T11:59:00.250+00:00 host sshd[1]: Failed password';
    expect(lineTimeMs(line, now)).toBe(Date.UTC(2026, 0, 10, 11, 59, 0, 250));
  });

  it('is a syslog timestamp in local time, in the year that puts it before now', () => {
    expect(lineTimeMs('Jan 10 11:58:00 host sshd[1]: x', now)).toBe(
      new Date(2026, 0, 10, 11, 58, 0).getTime(),
    );
    expect(lineTimeMs('Dec 31 23:00:00 host sshd[1]: x', now)).toBe(
      new Date(2025, 11, 31, 23, 0, 0).getTime(),
    );
  });

  it('is the time of reading for a line without a timestamp or with one far in the future', () => {
    expect(lineTimeMs('Failed password for root from 192.0.2.1 port 22 ssh2', now)).toBe(now);
    expect(lineTimeMs('2027-01-10T11:59:00Z host x', now)).toBe(now);
  });
});
