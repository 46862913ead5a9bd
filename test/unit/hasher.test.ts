import bcrypt from 'bcrypt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Hasher } from '../../src/credentials/hasher.ts';

const secret = 'correct horse battery staple';
const hash = bcrypt.hashSync(secret, 4);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the bcrypt admission queue', () => {
  it('refuses with overloaded once the queue is full, and admits again as it drains', async () => {
    const hasher = new Hasher({ cost: 4, concurrency: 1, maxQueued: 1 });
    const running = hasher.verify(secret, hash);
    const waiting = hasher.verify(secret, hash);
    await expect(hasher.verify(secret, hash)).rejects.toMatchObject({ code: 'overloaded' });
    await expect(Promise.all([running, waiting])).resolves.toEqual([true, true]);
    await expect(hasher.verify(secret, hash)).resolves.toBe(true);
  });

  it('takes a waiter whose client has gone out of the queue at once, freeing its place', async () => {
    const hasher = new Hasher({ cost: 4, concurrency: 1, maxQueued: 1 });
    const running = hasher.verify(secret, hash);
    const client = new AbortController();
    const gone = hasher.verify(secret, hash, client.signal);
    expect(hasher.queueDepth).toBe(1);
    client.abort(new Error('client gone'));
    await expect(gone).rejects.toThrow('client gone');
    expect(hasher.queueDepth).toBe(0);
    const next = hasher.verify(secret, hash);
    await expect(Promise.all([running, next])).resolves.toEqual([true, true]);
  });

  it('never runs the compare of a client that left before it started', async () => {
    const compare = vi.spyOn(bcrypt, 'compare');
    const hasher = new Hasher({ cost: 4, concurrency: 1, maxQueued: 10 });
    const client = new AbortController();
    client.abort(new Error('client gone'));
    await expect(hasher.verify(secret, hash, client.signal)).rejects.toThrow('client gone');
    expect(compare).not.toHaveBeenCalled();
    await expect(hasher.verify(secret, 'wrong', undefined)).resolves.toBe(false);
    expect(compare).toHaveBeenCalledTimes(1);
  });

  it('runs the checks one after another in the order they came, at a concurrency of one', async () => {
    const hasher = new Hasher({ cost: 4, concurrency: 1, maxQueued: 10 });
    const finished: number[] = [];
    await Promise.all(
      [0, 1, 2, 3].map((n) => hasher.verify(secret, hash).then(() => finished.push(n))),
    );
    expect(finished).toEqual([0, 1, 2, 3]);
  });
});
