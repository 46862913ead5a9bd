import { describe, expect, it } from 'vitest';
import { endpoint, parseServerUrl, retryAfterMs } from '../../src/agent/https-json.ts';

describe('endpoint', () => {
  it('joins a server URL that ends in a slash without doubling it (regression)', () => {
    expect(endpoint(new URL('https://127.0.0.1:8443/'), '/api/v1/enroll').href).toBe(
      'https://127.0.0.1:8443/api/v1/enroll',
    );
  });

  it('keeps a path prefix and switches to wss for sockets', () => {
    const server = parseServerUrl('https://example.test/citadel/');
    expect(endpoint(server, '/api/v1/agent', 'wss:').href).toBe(
      'wss://example.test/citadel/api/v1/agent',
    );
  });
});

describe('parseServerUrl', () => {
  it('refuses plain http and URLs carrying credentials', () => {
    expect(() => parseServerUrl('http://127.0.0.1:8080')).toThrow(/https/);
    expect(() => parseServerUrl('https://me:pw@127.0.0.1')).toThrow(/credentials/);
    expect(() => parseServerUrl('not a url')).toThrow(/not a URL/);
  });
});

describe('retryAfterMs', () => {
  it('reads whole seconds and HTTP dates, and ignores anything else', () => {
    expect(retryAfterMs({ 'retry-after': '7' })).toBe(7_000);
    const now = Date.UTC(2026, 0, 1);
    expect(retryAfterMs({ 'retry-after': 'Thu, 01 Jan 2026 00:00:30 GMT' }, now)).toBe(30_000);
    expect(retryAfterMs({ 'retry-after': 'soon' })).toBeUndefined();
    expect(retryAfterMs({})).toBeUndefined();
  });
});
