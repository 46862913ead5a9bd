import { describe, expect, it } from 'vitest';
import { maskSecrets } from '../../../src/agent/detectors/mask-secrets.ts';

describe('masking secrets', () => {
  it.each([
    ['mysql --user=app --password=Tr0ub4dor&3 db', 'Tr0ub4dor'],
    ['login failed: {"user":"app","token":"s3cr3t-value"}', 's3cr3t-value'],
    ["api_key: 'AbCdEf123456'", 'AbCdEf123456'],
    ['PGPASSWORD=hunter2 psql', 'hunter2'],
    [
      'curl -H "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"',
      'eyJhbGci',
    ],
    ['fetch https://deploy:gh0st-pass@git.example.com/repo.git', 'gh0st-pass'],
    ['sent cat_0b8e8a7c-1d2e-4f00-9abc-0123456789ab_AAAABBBBCCCCDDDDEEEEFFFF', 'AAAABBBB'],
    ['key AKIAABCDEFGHIJKLMNOP leaked', 'AKIAABCDEFGHIJKLMNOP'],
    [
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----',
      'b3Bl',
    ],
  ])('hides the secret in %j', (text, secret) => {
    const masked = maskSecrets(text);
    expect(masked).not.toContain(secret);
    expect(masked).toContain('[masked]');
  });

  it.each([
    'Dec  3 10:15:01 web1 sshd[2231]: Failed password for root from 203.0.113.50 port 22 ssh2',
    'pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 rhost=  user=alice',
    'new user: name=mallory, UID=1002, GID=1002, home=/home/mallory, shell=/bin/bash',
  ])('leaves an auth log line without secrets as it was: %s', (line) => {
    expect(maskSecrets(line)).toBe(line);
  });
});
