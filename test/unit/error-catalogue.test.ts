/** The catalogue of error codes and its documentation say the same thing. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCatalogue, errorCodes } from '../../src/errors/catalogue.ts';

const doc = readFileSync(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8');
const documented = [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}|—) \|/gm)].map((m) => ({
  code: m[1]!,
  status: m[2]!,
}));

describe('the error catalogue', () => {
  it('documents every code it defines, and defines every code it documents', () => {
    expect(documented.map((d) => d.code).sort()).toEqual([...errorCodes].sort());
  });

  it('documents each code with the HTTP status it answers with', () => {
    const startRefusals = ['config_invalid', 'data_dir_in_use'];
    for (const { code, status } of documented) {
      const spec = errorCatalogue[code as keyof typeof errorCatalogue];
      if (status === '—') expect(startRefusals).toContain(code);
      else expect(spec.status).toBe(Number(status));
    }
  });
});
