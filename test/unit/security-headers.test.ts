/** The header profile: helmet's answers and our raw answers agree, HSTS per environment. */
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import {
  answerHeaders,
  type HeaderProfile,
  hstsValue,
  registerSecurityHeaders,
} from '../../src/http/security-headers.ts';

const development: HeaderProfile = {
  environment: 'development',
  hstsIncludeSubDomains: false,
  hstsPreload: false,
};

describe('the HSTS value', () => {
  it('has a max-age of an hour, a day and a year by environment', () => {
    expect(hstsValue(development)).toBe('max-age=3600');
    expect(hstsValue({ ...development, environment: 'staging' })).toBe('max-age=86400');
    expect(hstsValue({ ...development, environment: 'production' })).toBe('max-age=31536000');
  });

  it('adds includeSubDomains and preload only when configured', () => {
    const both = { environment: 'production', hstsIncludeSubDomains: true, hstsPreload: true };
    expect(hstsValue(both as HeaderProfile)).toBe('max-age=31536000; includeSubDomains; preload');
    expect(hstsValue({ ...development, hstsIncludeSubDomains: true })).toBe(
      'max-age=3600; includeSubDomains',
    );
  });
});

describe('answers written outside Fastify', () => {
  it('carry the same security headers as helmet writes on a route and on a 404', async () => {
    const app = Fastify();
    await registerSecurityHeaders(app, development);
    app.get('/x', async () => ({ ok: true }));
    const routed = await app.inject({ method: 'GET', url: '/x' });
    const missing = await app.inject({ method: 'GET', url: '/nowhere' });
    const raw = answerHeaders(development, false);
    for (const response of [routed, missing]) {
      for (const [name, value] of Object.entries(raw)) {
        expect(response.headers[name.toLowerCase()], name).toBe(value);
      }
      expect(response.headers['strict-transport-security']).toBeUndefined();
    }
    await app.close();
  });

  it('add HSTS only when the answer goes over TLS', () => {
    expect(answerHeaders(development, false)['Strict-Transport-Security']).toBeUndefined();
    expect(answerHeaders(development, true)['Strict-Transport-Security']).toBe('max-age=3600');
  });
});
