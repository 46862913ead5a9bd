/** Credential text: one exact shape, so that only the issued token verifies. */
import bcrypt from 'bcrypt';
import { describe, expect, it } from 'vitest';
import { issueCredential, parseCredential } from '../../src/credentials/tokens.ts';

describe('credential text', () => {
  it('names its record and carries a secret that fits in bcrypt’s 72 bytes', () => {
    const credential = issueCredential('agentToken');
    expect(credential.text.startsWith('cat_')).toBe(true);
    const parsed = parseCredential('agentToken', credential.text);
    expect(parsed).toEqual({ id: credential.id, secret: credential.secret });
    expect(Buffer.byteLength(credential.secret)).toBeLessThanOrEqual(72);
  });

  it('refuses appended bytes, a NUL, a changed tail and another kind', () => {
    const { text } = issueCredential('agentToken');
    expect(parseCredential('agentToken', `${text}A`)).toBeUndefined();
    expect(
      parseCredential('agentToken', `${text.slice(0, 10)}\0${text.slice(11)}`),
    ).toBeUndefined();
    expect(parseCredential('agentToken', `${text}\0`)).toBeUndefined();
    expect(parseCredential('adminToken', text)).toBeUndefined();
    expect(parseCredential('agentToken', text.replace('cat_', 'cad_'))).toBeUndefined();
  });

  it('hashes the whole secret, so a changed tail does not verify', async () => {
    const { secret } = issueCredential('adminToken');
    const hash = await bcrypt.hash(secret, 4);
    const tail = secret.endsWith('A') ? 'B' : 'A';
    expect(await bcrypt.compare(secret, hash)).toBe(true);
    expect(await bcrypt.compare(`${secret.slice(0, -1)}${tail}`, hash)).toBe(false);
  });
});
