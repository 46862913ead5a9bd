/** What cannot be stored is refused at the door, and a refused batch is told from an outage. */
import { describe, expect, it } from 'vitest';
import { maxJsonDepth, unstorableJson } from '../../src/net/json-guard.ts';
import { isTransientFailure } from '../../src/write-behind/write-behind.ts';

describe('the storability guard', () => {
  it('lets ordinary reports through', () => {
    expect(
      unstorableJson({ title: 'é ✓ 日本', details: { list: [1, 'two', { three: null }] } }),
    ).toBe(undefined);
  });

  it('names a NUL, a lone surrogate and a key that holds one', () => {
    expect(unstorableJson({ title: 'a\u0000b' })).toMatch(/title contains a NUL/);
    expect(unstorableJson({ details: { s: '\udfff' } })).toMatch(/details\.s is not well-formed/);
    expect(unstorableJson({ details: { 'k\u0000': 1 } })).toMatch(/a key in details/);
  });

  it('refuses nesting deeper than the limit and accepts it at the limit', () => {
    const nest = (depth: number): unknown => (depth === 0 ? 1 : [nest(depth - 1)]);
    expect(unstorableJson(nest(maxJsonDepth))).toBe(undefined);
    expect(unstorableJson(nest(maxJsonDepth + 1))).toMatch(/nests deeper/);
  });
});

describe('a failed flush', () => {
  it('is transient when the database is away or busy', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const shutdown = Object.assign(new Error('terminating connection'), { code: '57P01' });
    const wrapped = new Error('query failed', { cause: shutdown });
    expect(isTransientFailure(refused)).toBe(true);
    expect(isTransientFailure(wrapped)).toBe(true);
    expect(isTransientFailure(Object.assign(new Error('x'), { name: 'ConnectionError' }))).toBe(
      true,
    );
  });

  it('is the batch’s own fault otherwise, known or not', () => {
    const invalidText = Object.assign(new Error('invalid input syntax'), { code: '22P02' });
    expect(isTransientFailure(invalidText)).toBe(false);
    expect(isTransientFailure(new RangeError('Maximum call stack size exceeded'))).toBe(false);
    expect(isTransientFailure(new Error('InvalidInputError'))).toBe(false);
  });
});

describe('the storability guard on numbers and keys', () => {
  it('refuses a number JSON reads as Infinity, which would be stored as null', () => {
    expect(unstorableJson(JSON.parse('{"details":{"n":1e999}}'))).toMatch(
      /details\.n is not a finite number/,
    );
    expect(unstorableJson(JSON.parse('{"n":-1e999}'))).toMatch(/n is not a finite number/);
    expect(unstorableJson(JSON.parse('{"n":1e308}'))).toBe(undefined);
  });

  it('refuses a __proto__ key, which object handling would silently drop', () => {
    expect(unstorableJson(JSON.parse('{"details":{"__proto__":{"x":1}}}'))).toMatch(
      /a key in details is __proto__/,
    );
    expect(unstorableJson(JSON.parse('{"details":{"proto":1}}'))).toBe(undefined);
  });
});
