/**
 * Masks credentials in text a detector is about to send (a log line, a
 * process's command line). Reports travel to the server, sit in its database
 * and appear in the feed: a password typed onto a command line must not.
 *
 * What is masked: values of `key=value` and `key: value` pairs whose key
 * names a secret (password, token, api key, …), `Bearer`/`Basic` credentials,
 * passwords inside URLs, private key blocks, and token formats recognisable
 * by shape (Citadel Archer's own, JWTs, cloud and forge keys). Masking errs
 * on the side of hiding: a false positive costs a little context, a false
 * negative leaks a secret.
 */

/** What a masked value is replaced with. */
export const maskedValue = '[masked]';

const secretKeyWords = [
  'pass(?:word|wd|phrase)?',
  'pwd',
  'secret',
  'token',
  'api[_-]?key',
  'access[_-]?key',
  'private[_-]?key',
  'credentials?',
  'auth',
  'session[_-]?id',
  'cookie',
  'signature',
].join('|');

interface Mask {
  readonly pattern: RegExp;
  readonly replace: (match: string, ...groups: string[]) => string;
}

const masks: readonly Mask[] = [
  {
    pattern: /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
    replace: (_match, kind) => `-----BEGIN ${kind}PRIVATE KEY-----${maskedValue}`,
  },
  {
    // scheme://user:password@host
    pattern: /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]+@/gi,
    replace: (_match, head) => `${head}:${maskedValue}@`,
  },
  {
    pattern: /\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}/gi,
    replace: (_match, scheme, space) => `${scheme}${space}${maskedValue}`,
  },
  {
    pattern: new RegExp(
      `([\\w.-]*(?:${secretKeyWords})[\\w.-]*)(["']?\\s*[=:]\\s*)("[^"]*"|'[^']*'|[^\\s,;&"'}]+)`,
      'gi',
    ),
    replace: (_match, key, separator) => `${key}${separator}${maskedValue}`,
  },
  {
    // Citadel Archer agent and admin tokens
    pattern: /\bca[td]_[0-9a-f-]{8,}_[A-Za-z0-9_-]{16,}/gi,
    replace: () => maskedValue,
  },
  {
    // JSON Web Tokens
    pattern: /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}/g,
    replace: () => maskedValue,
  },
  {
    // AWS access key ids, GitHub tokens, Slack tokens
    pattern: /\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9-]{10,})/g,
    replace: () => maskedValue,
  },
];

/** The text with every credential it recognises replaced by `[masked]`. */
export function maskSecrets(text: string): string {
  let masked = text;
  for (const mask of masks) {
    masked = masked.replace(mask.pattern, mask.replace as (match: string) => string);
  }
  return masked;
}
