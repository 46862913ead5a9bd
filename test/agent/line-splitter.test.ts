import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/agent/line-splitter.ts';

describe('LineSplitter', () => {
  it('answers each line with the byte offset just past its newline', () => {
    const splitter = new LineSplitter();
    const lines = splitter.push(Buffer.from('ab\ncdé\n'));
    expect(lines).toEqual([
      { kind: 'line', number: 1, text: 'ab', endOffset: 3 },
      { kind: 'line', number: 2, text: 'cdé', endOffset: 8 },
    ]);
  });

  it('joins a line that arrives split across chunks', () => {
    const splitter = new LineSplitter(100);
    expect(splitter.push(Buffer.from('{"a":'))).toEqual([]);
    expect(splitter.push(Buffer.from('1}\r\nx'))).toEqual([
      { kind: 'line', number: 1, text: '{"a":1}', endOffset: 109 },
    ]);
    expect(splitter.end()).toEqual([{ kind: 'line', number: 2, text: 'x', endOffset: 110 }]);
  });

  it('reports a line over the limit as too long without keeping it', () => {
    const splitter = new LineSplitter(0, 8);
    expect(splitter.push(Buffer.from('0123456789'))).toEqual([]);
    const lines = splitter.push(Buffer.from('abc\nok\n'));
    expect(lines).toEqual([
      { kind: 'too_long', number: 1, endOffset: 14 },
      { kind: 'line', number: 2, text: 'ok', endOffset: 17 },
    ]);
  });

  it('answers nothing at the end when the input ended with a newline', () => {
    const splitter = new LineSplitter();
    splitter.push(Buffer.from('a\n'));
    expect(splitter.end()).toEqual([]);
  });
});
