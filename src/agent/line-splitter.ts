/**
 * Splits a byte stream into lines and remembers where each one ends, so that
 * a reader can record how far it got. A line longer than `maxLineBytes` is
 * not buffered: its bytes are dropped up to the next newline and it is
 * reported as too long, so that one bad producer cannot exhaust memory.
 */

export type Line =
  | {
      readonly kind: 'line';
      readonly number: number;
      readonly text: string;
      readonly endOffset: number;
    }
  | { readonly kind: 'too_long'; readonly number: number; readonly endOffset: number };

export const defaultMaxLineBytes = 256 * 1024;

/** Turns chunks into lines; `endOffset` is the byte just past each line's newline. */
export class LineSplitter {
  readonly #maxLineBytes: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #discarding = false;
  #offset: number;
  #lineNumber = 0;

  constructor(startOffset = 0, maxLineBytes = defaultMaxLineBytes) {
    this.#offset = startOffset;
    this.#maxLineBytes = maxLineBytes;
  }

  /** Feeds one chunk; answers the lines it completed. */
  push(chunk: Buffer): Line[] {
    const lines: Line[] = [];
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) break;
      this.#offset += newline + 1 - start;
      lines.push(this.#complete(chunk.subarray(start, newline)));
      start = newline + 1;
    }
    this.#keep(chunk.subarray(start));
    return lines;
  }

  /** Ends the input: a last line without a newline still counts. */
  end(): Line[] {
    if (this.#pendingBytes === 0 && !this.#discarding) return [];
    return [this.#complete(Buffer.alloc(0))];
  }

  #keep(rest: Buffer): void {
    if (rest.length === 0) return;
    this.#offset += rest.length;
    if (this.#discarding) return;
    if (this.#pendingBytes + rest.length > this.#maxLineBytes) {
      this.#discarding = true;
      this.#pending = [];
      this.#pendingBytes = 0;
      return;
    }
    this.#pending.push(Buffer.from(rest));
    this.#pendingBytes += rest.length;
  }

  #complete(tail: Buffer): Line {
    this.#lineNumber += 1;
    const tooLong = this.#discarding || this.#pendingBytes + tail.length > this.#maxLineBytes;
    const parts = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#discarding = false;
    if (tooLong) return { kind: 'too_long', number: this.#lineNumber, endOffset: this.#offset };
    const text = Buffer.concat([...parts, tail])
      .toString('utf8')
      .replace(/\r$/, '');
    return { kind: 'line', number: this.#lineNumber, text, endOffset: this.#offset };
  }
}
