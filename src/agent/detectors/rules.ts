/**
 * The log rule file (`config/agent-rules.json` by default, `--rules FILE`
 * otherwise): named rules, each a threat type, a severity, a title and one or
 * more regular expressions. A rule with a `threshold` fires only when its
 * patterns matched `count` times within `within_s` seconds for the same value
 * of one named group (`per`), so that one mistyped password is not a threat.
 *
 * The file is checked whole when the agent starts: an unknown key, a bad
 * pattern, or a title or threshold naming a group a pattern lacks stops the
 * start with `rules_invalid` and a message naming the rule and the field.
 * See docs/AGENT-DETECTORS.md for the format.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import { severitySchema, threatTypeSchema } from '../../sessions/protocol.ts';
import { ClientError } from '../errors.ts';

/** The rule file shipped with the agent. */
export const defaultRulesFile = resolve(import.meta.dirname, '../../../config/agent-rules.json');

const ruleSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'lower-case letters, digits, _ . -'),
  description: z.string().optional(),
  threat_type: threatTypeSchema,
  severity: severitySchema,
  title: z.string().trim().min(1).max(200),
  patterns: z.array(z.string().min(1)).min(1),
  threshold: z
    .strictObject({
      count: z.int().min(2).max(10_000),
      within_s: z
        .int()
        .min(1)
        .max(7 * 86_400),
      per: z.string().min(1),
    })
    .optional(),
});

const ruleFileSchema = z.strictObject({
  description: z.string().optional(),
  version: z.literal(1),
  rules: z.array(ruleSchema).min(1),
});

export interface RuleThreshold {
  readonly count: number;
  readonly withinMs: number;
  /** The named group whose value each count belongs to (a source address). */
  readonly per: string;
}

/** A rule ready to match lines. */
export interface LogRule {
  readonly name: string;
  readonly threatType: string;
  readonly severity: number;
  /** May name groups as `{group}`; they are filled in from the match. */
  readonly title: string;
  readonly patterns: readonly RegExp[];
  readonly threshold?: RuleThreshold;
}

/** Reads and checks a rule file; throws `rules_invalid` naming what is wrong. */
export async function loadRuleFile(path: string = defaultRulesFile): Promise<LogRule[]> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new ClientError('rules_invalid', {
      message: `cannot read the rule file ${path}: ${(error as Error).message}`,
      cause: error,
    });
  }
  return compileRules(value, path);
}

/** Checks a parsed rule file and compiles its patterns. */
export function compileRules(value: unknown, source = 'the rule file'): LogRule[] {
  const parsed = ruleFileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') || '(file)';
    throw new ClientError('rules_invalid', {
      message: `${source}: ${where}: ${issue?.message ?? 'invalid'}`,
    });
  }

  const seen = new Set<string>();
  return parsed.data.rules.map((rule) => {
    if (seen.has(rule.name)) invalid(source, rule.name, 'name', 'the name is used twice');
    seen.add(rule.name);
    return compileRule(rule, source);
  });
}

function compileRule(rule: z.infer<typeof ruleSchema>, source: string): LogRule {
  const patterns = rule.patterns.map((pattern, index) => {
    try {
      return new RegExp(pattern);
    } catch (error) {
      return invalid(source, rule.name, `patterns.${index}`, (error as Error).message);
    }
  });

  const needed = [...rule.title.matchAll(/\{(\w+)\}/g)].map((match) => match[1] ?? '');
  if (rule.threshold) needed.push(rule.threshold.per);
  patterns.forEach((pattern, index) => {
    const groups = groupNames(pattern);
    for (const group of needed) {
      if (!groups.has(group)) {
        invalid(source, rule.name, `patterns.${index}`, `has no named group (?<${group}>…)`);
      }
    }
  });

  return {
    name: rule.name,
    threatType: rule.threat_type,
    severity: rule.severity,
    title: rule.title,
    patterns,
    ...(rule.threshold
      ? {
          threshold: {
            count: rule.threshold.count,
            withinMs: rule.threshold.within_s * 1_000,
            per: rule.threshold.per,
          },
        }
      : {}),
  };
}

/** The named groups of a pattern: an empty alternative matches, listing them all. */
function groupNames(pattern: RegExp): Set<string> {
  const probe = new RegExp(`${pattern.source}|`).exec('');
  return new Set(Object.keys(probe?.groups ?? {}));
}

function invalid(source: string, rule: string, field: string, reason: string): never {
  throw new ClientError('rules_invalid', {
    message: `${source}: rule ${rule}: ${field}: ${reason}`,
  });
}
