/**
 * What PostgreSQL and JSON serialisation refuse, refused first at the door:
 * a NUL character (text and jsonb cannot hold U+0000), a lone UTF-16
 * surrogate (not valid Unicode, so not valid UTF-8), nesting deep enough to
 * exhaust the stack of a recursive serialiser, a number too large to be
 * finite (`1e999` parses as Infinity and would be stored as null), and a
 * `__proto__` key (which object handling silently drops). A value that passes
 * can be stored; one that fails is the sender's mistake, answered with
 * `invalid_message` or `invalid_request`, and changes nothing.
 */

/** Deeper structures than this are refused; real reports are a few levels deep. */
export const maxJsonDepth = 32;

/** Why the text cannot be stored, or undefined when it can. */
export function unstorableText(text: string): string | undefined {
  if (text.includes('\u0000')) return 'contains a NUL character';
  if (!text.isWellFormed()) return 'is not well-formed Unicode (a lone surrogate)';
  return undefined;
}

/** Why the JSON value cannot be stored, with where, or undefined when it can. */
export function unstorableJson(value: unknown, path = '', depth = 0): string | undefined {
  if (depth > maxJsonDepth) return `${path || 'the value'} nests deeper than ${maxJsonDepth}`;
  if (typeof value === 'string') {
    const problem = unstorableText(value);
    return problem ? `${path || 'a string'} ${problem}` : undefined;
  }
  if (typeof value === 'number') {
    return Number.isFinite(value) ? undefined : `${path || 'a number'} is not a finite number`;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const problem = unstorableJson(value[i], `${path}[${i}]`, depth + 1);
      if (problem) return problem;
    }
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const keyProblem = key === '__proto__' ? 'is __proto__' : unstorableText(key);
      if (keyProblem) return `a key in ${path || 'the object'} ${keyProblem}`;
      const problem = unstorableJson(item, path ? `${path}.${key}` : key, depth + 1);
      if (problem) return problem;
    }
  }
  return undefined;
}
