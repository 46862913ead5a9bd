/** The polling loop every detector runs in, and how detections reach the outbox. */
import { describe, expect, it } from 'vitest';
import { type Detector, runDetector } from '../../../src/agent/detectors/detector.ts';
import { derivedReportId, emitDetection, fitTitle } from '../../../src/agent/detectors/emit.ts';
import { ClientError, isClientError } from '../../../src/agent/errors.ts';
import { testContext } from './context.ts';

/** Lets pending promise callbacks run, so the loop reaches its next pause. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function countingDetector(fail?: (poll: number) => Error | undefined) {
  let polls = 0;
  let closed = false;
  const detector: Detector = {
    name: 'counting',
    intervalMs: 1_000,
    poll: async () => {
      polls += 1;
      const error = fail?.(polls);
      if (error) throw error;
    },
    close: async () => {
      closed = true;
    },
  };
  return { detector, polls: () => polls, closed: () => closed };
}

const detection = (overrides: Record<string, unknown> = {}) => ({
  id: derivedReportId('test', 'one'),
  threat_type: 'test.detector',
  severity: 5,
  title: 'a test detection',
  details: { n: 1 },
  detectedAtMs: Date.UTC(2026, 0, 1),
  ...overrides,
});

describe('the detector loop', () => {
  it('polls at once, then on each interval of the injected clock; closes on abort', async () => {
    const context = testContext('/nonexistent');
    const counting = countingDetector();
    const running = runDetector(counting.detector, context);
    await settle();
    expect(counting.polls()).toBe(1);
    context.clock.advance(999);
    await settle();
    expect(counting.polls()).toBe(1);
    context.clock.advance(1);
    await settle();
    expect(counting.polls()).toBe(2);

    context.abort.abort();
    await running;
    expect(counting.closed()).toBe(true);
    expect(context.clock.pendingTimers).toBe(0);
  });

  it('logs a failure of the host and polls again at the next interval', async () => {
    const context = testContext('/nonexistent');
    const busy = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', syscall: 'read' });
    const counting = countingDetector((poll) => (poll === 1 ? busy : undefined));
    const running = runDetector(counting.detector, context);
    await settle();
    context.clock.advance(1_000);
    await settle();
    expect(counting.polls()).toBe(2);
    expect(context.logs.find((entry) => entry['msg'] === 'detector:poll_failed')).toMatchObject({
      code: 'EIO',
      detector: 'counting',
      failures: 1,
    });
    context.abort.abort();
    await running;
  });

  it('ends with any other failure, after closing the detector', async () => {
    const context = testContext('/nonexistent');
    const counting = countingDetector(() => new ClientError('state_unusable'));
    const outcome = await runDetector(counting.detector, context).catch((error) => error);
    expect(isClientError(outcome, 'state_unusable')).toBe(true);
    expect(counting.closed()).toBe(true);
  });
});

describe('emitting a detection', () => {
  it('stores a report checked as a stdin line would be, with its derived id', async () => {
    const context = testContext('/nonexistent');
    const report = await emitDetection(detection(), context);
    expect(context.reports).toEqual([report]);
    expect(report).toMatchObject({
      id: derivedReportId('test', 'one'),
      detected_at: '2026-01-01T00:00:00.000Z',
    });
  });

  it('refuses a detection the server would refuse, with invalid_report', async () => {
    const context = testContext('/nonexistent');
    const refused = await emitDetection(detection({ severity: 0 }), context).catch((e) => e);
    expect(isClientError(refused, 'invalid_report')).toBe(true);
    expect(context.reports).toEqual([]);
  });

  it('waits on the clock while the outbox is full, then stores the report', async () => {
    const context = testContext('/nonexistent');
    let refusals = 1;
    const stored: string[] = [];
    const patient = {
      ...context,
      fullOutboxWaitMs: 500,
      submit: async (report: { id: string }) => {
        if (refusals-- > 0) throw new ClientError('outbox_full');
        stored.push(report.id);
      },
    };
    const emitting = emitDetection(detection(), patient);
    await settle();
    expect(stored).toEqual([]);
    context.clock.advance(500);
    await emitting;
    expect(stored).toEqual([derivedReportId('test', 'one')]);
  });

  it('derives the same valid UUID from the same parts and another from other parts', () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    expect(derivedReportId('a', 'b')).toMatch(uuid);
    expect(derivedReportId('a', 'b')).toBe(derivedReportId('a', 'b'));
    expect(derivedReportId('a', 'b')).not.toBe(derivedReportId('ab'));
  });

  it('cuts a long title to the server’s 256 characters and flattens control characters', () => {
    expect(fitTitle(`x\ny${'z'.repeat(400)}`)).toHaveLength(256);
    expect(fitTitle('a\u0007b')).toBe('a b');
  });
});
