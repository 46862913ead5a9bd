import { describe, expect, it } from 'vitest';
import { Backoff, withSpread } from '../../src/agent/backoff.ts';

/** A random source that always answers `value`. */
const fixed = (value: number) => () => value;

describe('Backoff', () => {
  it('doubles its ceiling from one second up to the sixty second cap', () => {
    const backoff = new Backoff({ random: fixed(0.999_999) });
    const ceilings: number[] = [];
    for (let attempt = 0; attempt < 9; attempt += 1) {
      ceilings.push(backoff.ceilingMs());
      backoff.nextDelayMs();
    }
    expect(ceilings).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('draws every delay between the floor and the current ceiling', () => {
    const backoff = new Backoff();
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const ceiling = backoff.ceilingMs();
      const delay = backoff.nextDelayMs();
      expect(delay).toBeGreaterThanOrEqual(100);
      expect(delay).toBeLessThanOrEqual(ceiling);
    }
  });

  it('keeps applying full jitter once the cap is reached', () => {
    const draws = [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.25, 0.75];
    const backoff = new Backoff({ random: () => draws.shift() ?? 0.5 });
    for (let attempt = 0; attempt < 7; attempt += 1) backoff.nextDelayMs();
    expect(backoff.nextDelayMs()).toBe(15_000);
    expect(backoff.nextDelayMs()).toBe(45_000);
  });

  it('never answers less than the floor, even for a draw of zero', () => {
    const backoff = new Backoff({ random: fixed(0) });
    expect(backoff.nextDelayMs()).toBe(100);
  });

  it('starts again from the initial ceiling after a reset', () => {
    const backoff = new Backoff({ random: fixed(0.5) });
    for (let attempt = 0; attempt < 5; attempt += 1) backoff.nextDelayMs();
    backoff.reset();
    expect(backoff.attempt).toBe(0);
    expect(backoff.nextDelayMs()).toBe(500);
  });

  it('does not overflow after very many attempts', () => {
    const backoff = new Backoff({ random: fixed(0.5) });
    for (let attempt = 0; attempt < 5_000; attempt += 1) backoff.nextDelayMs();
    expect(backoff.nextDelayMs()).toBe(30_000);
  });

  it('refuses settings whose cap is below the initial delay', () => {
    expect(() => new Backoff({ initialMs: 10_000, capMs: 1_000 })).toThrow(RangeError);
  });
});

describe('withSpread', () => {
  it('adds at most the given share of the delay', () => {
    expect(withSpread(10_000, 0.1, fixed(0))).toBe(10_000);
    expect(withSpread(10_000, 0.1, fixed(0.5))).toBe(10_500);
    expect(withSpread(10_000, 0.1, fixed(0.999_999))).toBeLessThanOrEqual(11_000);
  });
});
