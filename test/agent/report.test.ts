import { describe, expect, it } from 'vitest';
import { isClientError } from '../../src/agent/errors.ts';
import { parseReportLine, threatFrame } from '../../src/agent/report.ts';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function refusalOf(line: string): string {
  try {
    parseReportLine(line);
  } catch (error) {
    if (isClientError(error, 'invalid_report')) return error.message;
    throw error;
  }
  throw new Error('the line was accepted');
}

describe('parseReportLine', () => {
  it('fills in a fresh id, the detection time and empty details when absent', () => {
    const report = parseReportLine(
      '{"threat_type":"port_scan","severity":4,"title":"Scan from 10.0.0.9"}',
      () => Date.UTC(2026, 0, 2, 3, 4, 5),
    );
    expect(report.id).toMatch(uuidPattern);
    expect(report.detected_at).toBe('2026-01-02T03:04:05.000Z');
    expect(report.details).toEqual({});
  });

  it('keeps the id and detection time the producer gave', () => {
    const line = JSON.stringify({
      id: '6f1c1f0e-8a0e-4c55-9d1e-2b8f3f9d4a11',
      threat_type: 'malware',
      severity: 9,
      title: 'Dropper found',
      details: { path: '/tmp/x' },
      detected_at: '2026-01-02T03:04:05+02:00',
    });
    const report = parseReportLine(line);
    expect(report.id).toBe('6f1c1f0e-8a0e-4c55-9d1e-2b8f3f9d4a11');
    expect(report.detected_at).toBe('2026-01-02T03:04:05+02:00');
    expect(threatFrame(report)).toEqual({ type: 'threat', ...JSON.parse(line) });
  });

  it('refuses a line that is not JSON', () => {
    expect(refusalOf('threat!')).toBe('the line is not JSON');
  });

  it('refuses a severity outside 1..10 and names the field', () => {
    expect(refusalOf('{"threat_type":"x","severity":11,"title":"t"}')).toContain('severity');
  });

  it('refuses unknown fields, a malformed id and a time without an offset', () => {
    expect(refusalOf('{"threat_type":"x","severity":1,"title":"t","extra":1}')).toMatch(/extra/);
    expect(refusalOf('{"id":"abc","threat_type":"x","severity":1,"title":"t"}')).toContain('id');
    const noOffset =
      '{"threat_type":"x","severity":1,"title":"t","detected_at":"2026-01-01T00:00:00"}';
    expect(refusalOf(noOffset)).toContain('detected_at');
  });

  it('refuses a report whose frame would exceed the socket frame limit', () => {
    const line = JSON.stringify({
      threat_type: 'x',
      severity: 1,
      title: 't',
      details: { blob: 'a'.repeat(70 * 1024) },
    });
    expect(refusalOf(line)).toMatch(/bytes; the limit is/);
  });
});
