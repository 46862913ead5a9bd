/** The plain-HTTP listener's decisions, read from socket addresses and one proxy header. */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { redirectDecision, redirectTarget } from '../../src/http/redirect.ts';
import { addressMatcher, isLoopback } from '../../src/net/addresses.ts';

function requestFrom(
  remoteAddress: string,
  localAddress: string,
  headers: Record<string, string> = {},
): IncomingMessage {
  return { socket: { remoteAddress, localAddress }, headers } as unknown as IncomingMessage;
}

const development = { serveLoopback: true, isTrustedProxy: addressMatcher(['10.0.0.0/8']) };
const production = { ...development, serveLoopback: false };

describe('the redirect decision', () => {
  it('serves loopback-to-loopback in development only', () => {
    expect(redirectDecision(requestFrom('127.0.0.1', '127.0.0.1'), development)).toBe('serve');
    expect(redirectDecision(requestFrom('::1', '::1'), development)).toBe('serve');
    expect(redirectDecision(requestFrom('127.0.0.1', '127.0.0.1'), production)).toBe('redirect');
  });

  it('redirects a loopback peer that reached a non-loopback address', () => {
    expect(redirectDecision(requestFrom('127.0.0.1', '192.0.2.4'), development)).toBe('redirect');
  });

  it('redirects a remote peer whatever its headers claim', () => {
    const forged = requestFrom('192.0.2.9', '192.0.2.4', {
      host: 'localhost',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-host': 'localhost',
      'x-forwarded-proto': 'https',
    });
    expect(redirectDecision(forged, development)).toBe('redirect');
  });

  it('serves a trusted proxy only when every hop it reports was HTTPS', () => {
    const from = (proto?: string) =>
      requestFrom(
        '10.1.2.3',
        '10.0.0.1',
        proto === undefined ? {} : { 'x-forwarded-proto': proto },
      );
    expect(redirectDecision(from('https'), production)).toBe('serve');
    expect(redirectDecision(from('HTTPS, https'), production)).toBe('serve');
    expect(redirectDecision(from('https, http'), production)).toBe('redirect');
    expect(redirectDecision(from('http'), production)).toBe('redirect');
    expect(redirectDecision(from(''), production)).toBe('redirect');
    expect(redirectDecision(from(), production)).toBe('redirect');
  });
});

describe('the redirect target', () => {
  it('keeps the path and query and takes the host from configuration', () => {
    expect(redirectTarget('citadel.example:8443', '/api/v1/enroll?a=1&b=%20')).toBe(
      'https://citadel.example:8443/api/v1/enroll?a=1&b=%20',
    );
  });

  it('keeps only the path and query of an absolute-form target', () => {
    expect(redirectTarget('citadel.example', 'http://attacker.example/x?y=1')).toBe(
      'https://citadel.example/x?y=1',
    );
  });

  it('never lets a target that starts with two slashes name another host', () => {
    expect(redirectTarget('citadel.example', '//attacker.example/x')).toBe(
      'https://citadel.example/x',
    );
  });
});

describe('address matching', () => {
  it('matches addresses and ranges, IPv4-mapped IPv6 included', () => {
    const trusted = addressMatcher(['10.0.0.0/8', '192.0.2.7', 'fd00::/8']);
    expect(trusted('10.200.3.4')).toBe(true);
    expect(trusted('::ffff:10.200.3.4')).toBe(true);
    expect(trusted('192.0.2.7')).toBe(true);
    expect(trusted('192.0.2.8')).toBe(false);
    expect(trusted('fd12::1')).toBe(true);
    expect(trusted(undefined)).toBe(false);
  });

  it('matches nothing when the list is empty', () => {
    expect(addressMatcher([])('127.0.0.1')).toBe(false);
  });

  it('counts all of 127.0.0.0/8 and ::1 as loopback, and nothing else', () => {
    expect(isLoopback('127.0.0.2')).toBe(true);
    expect(isLoopback('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('10.0.0.1')).toBe(false);
    expect(isLoopback('localhost')).toBe(false);
  });
});
