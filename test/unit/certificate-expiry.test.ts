/** The expiry watch on simulated time: a line at start, after reloads, and once a day. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock/clock.ts';
import { expiryOf, watchCertificateExpiry } from '../../src/tls/expiry.ts';
import { tempDir } from '../support/daemon.ts';
import { makeCertificate, type TestCertificate } from '../support/tls.ts';

const dayMs = 86_400_000;

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines, messages: () => lines.map((l) => l['msg']) };
}

/** Lets pino's stream deliver what was written. */
const flushed = () => new Promise((resolve) => setImmediate(resolve));

let month: TestCertificate;
let week: TestCertificate;

beforeAll(async () => {
  const dir = tempDir('expiry');
  month = await makeCertificate(dir, 'month', 32);
  week = await makeCertificate(dir, 'week', 7);
});

describe('expiryOf', () => {
  it('calls a certificate expiring from 30 days before its end, and expired after it', () => {
    const end = new Date(Date.UTC(2027, 0, 31));
    expect(expiryOf(end, end.getTime() - 31 * dayMs).status).toBe('valid');
    expect(expiryOf(end, end.getTime() - 30 * dayMs)).toMatchObject({
      status: 'expiring',
      daysLeft: 30,
    });
    expect(expiryOf(end, end.getTime() - 1)).toMatchObject({ status: 'expiring', daysLeft: 0 });
    expect(expiryOf(end, end.getTime())).toMatchObject({ status: 'expired', daysLeft: 0 });
    expect(expiryOf(end, end.getTime() + dayMs + 1).daysLeft).toBe(-2);
  });
});

describe('the certificate expiry watch', () => {
  it('warns at start about a certificate that ends within 30 days', async () => {
    const { log, lines } = capturingLogger();
    const clock = new ManualClock(Date.now());
    const watch = watchCertificateExpiry({ current: () => week, clock, log });
    await flushed();
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        msg: 'tls:certificate-expiring',
        certFile: week.certFile,
        fingerprint: week.fingerprint,
        daysLeft: 6,
      }),
    ]);
    watch.stop();
  });

  it('looks daily, warning once within 30 days and erring once expired', async () => {
    const { log, messages } = capturingLogger();
    const clock = new ManualClock(Date.now());
    const watch = watchCertificateExpiry({ current: () => month, clock, log });
    clock.advance(dayMs - 1);
    await flushed();
    expect(messages()).toEqual(['tls:certificate-valid']);

    clock.advance(1);
    clock.advance(dayMs);
    await flushed();
    expect(messages()).toEqual([
      'tls:certificate-valid',
      'tls:certificate-valid',
      'tls:certificate-expiring',
    ]);

    clock.advance(31 * dayMs);
    await flushed();
    expect(messages().at(-1)).toBe('tls:certificate-expired');
    expect(messages()).toHaveLength(34);
    watch.stop();
  });

  it('checks the certificate in use now when asked after a reload', async () => {
    const { log, lines } = capturingLogger();
    const clock = new ManualClock(Date.now());
    let current = month;
    const watch = watchCertificateExpiry({ current: () => current, clock, log });
    current = week;
    expect(watch.check().status).toBe('expiring');
    await flushed();
    expect(lines.map((l) => l['fingerprint'])).toEqual([month.fingerprint, week.fingerprint]);
    watch.stop();
  });

  it('leaves no timer behind once stopped', () => {
    const { log } = capturingLogger();
    const clock = new ManualClock(Date.now());
    const watch = watchCertificateExpiry({ current: () => month, clock, log });
    expect(clock.pendingTimers).toBe(1);
    clock.advance(3 * dayMs);
    expect(clock.pendingTimers).toBe(1);
    watch.stop();
    expect(clock.pendingTimers).toBe(0);
  });
});
