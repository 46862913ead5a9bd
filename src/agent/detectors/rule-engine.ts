/**
 * Matches log lines against rules, in file order: the first rule whose
 * pattern matches a line takes it, so a narrow rule placed before a broad
 * one (a new account with UID 0 before any new account) reports the line
 * once, at its own severity.
 *
 * A threshold rule counts matches per value of its `per` group within a
 * sliding window of event time. When the count is reached the rule fires
 * and that value is then quiet for one window: a sustained attack from one
 * address is one threat per window, not one per attempt. The number of
 * values tracked is bounded; the least recently seen are forgotten first.
 */
import type { LogRule } from './rules.ts';

/** A rule that fired on a line. */
export interface RuleMatch {
  readonly rule: LogRule;
  /** Named groups of the match, as matched (not yet masked). */
  readonly groups: Readonly<Record<string, string>>;
  /** Matches counted for a threshold rule, this one included; 1 otherwise. */
  readonly count: number;
  /** Event time of the first counted match. */
  readonly firstAtMs: number;
}

export interface RuleEngineSettings {
  /** How many threshold keys (rule and group value) are tracked at most. */
  readonly maxTrackedKeys?: number;
}

interface Tally {
  /** Event times of the latest matches, at most `count` of them. */
  hits: number[];
  quietUntilMs: number;
}

const defaultMaxTrackedKeys = 10_000;

/** The stateful side of a rule set: threshold counts between lines. */
export class RuleEngine {
  readonly #rules: readonly LogRule[];
  readonly #maxTrackedKeys: number;
  readonly #tallies = new Map<string, Tally>();

  constructor(rules: readonly LogRule[], settings: RuleEngineSettings = {}) {
    this.#rules = rules;
    this.#maxTrackedKeys = settings.maxTrackedKeys ?? defaultMaxTrackedKeys;
  }

  /** How many threshold keys are being counted now. */
  get trackedKeys(): number {
    return this.#tallies.size;
  }

  /** Offers one line seen at `atMs`; answers the match when a rule fires. */
  evaluate(line: string, atMs: number): RuleMatch | undefined {
    for (const rule of this.#rules) {
      const groups = firstMatch(rule, line);
      if (!groups) continue;
      if (!rule.threshold) return { rule, groups, count: 1, firstAtMs: atMs };
      return this.#count(rule, groups, atMs);
    }
    return undefined;
  }

  #count(rule: LogRule, groups: Record<string, string>, atMs: number): RuleMatch | undefined {
    const threshold = rule.threshold!;
    const key = `${rule.name}\u0000${groups[threshold.per] ?? ''}`;
    const tally = this.#tallies.get(key) ?? { hits: [], quietUntilMs: Number.NEGATIVE_INFINITY };
    this.#tallies.delete(key);
    this.#tallies.set(key, tally);
    this.#forgetOldest();

    if (atMs < tally.quietUntilMs) return undefined;
    const windowStartMs = atMs - threshold.withinMs;
    tally.hits = tally.hits.filter((hitMs) => hitMs > windowStartMs);
    tally.hits.push(atMs);
    if (tally.hits.length > threshold.count) tally.hits.shift();
    if (tally.hits.length < threshold.count) return undefined;

    const firstAtMs = tally.hits[0] ?? atMs;
    tally.hits = [];
    tally.quietUntilMs = atMs + threshold.withinMs;
    return { rule, groups, count: threshold.count, firstAtMs };
  }

  #forgetOldest(): void {
    while (this.#tallies.size > this.#maxTrackedKeys) {
      const oldest = this.#tallies.keys().next();
      if (oldest.done) return;
      this.#tallies.delete(oldest.value);
    }
  }
}

/** Fills `{group}` placeholders of a title from a match's groups. */
export function renderTitle(title: string, groups: Readonly<Record<string, string>>): string {
  return title.replace(/\{(\w+)\}/g, (_whole, name: string) => groups[name] ?? '?');
}

function firstMatch(rule: LogRule, line: string): Record<string, string> | undefined {
  for (const pattern of rule.patterns) {
    const match = pattern.exec(line);
    if (!match) continue;
    const groups: Record<string, string> = {};
    for (const [name, value] of Object.entries(match.groups ?? {})) {
      if (value !== undefined) groups[name] = value;
    }
    return groups;
  }
  return undefined;
}
