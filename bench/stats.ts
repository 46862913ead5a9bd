/**
 * Latency samples and their summary. Samples are kept whole (a run holds at
 * most a few hundred thousand), so percentiles are exact, not estimated.
 */

/** p50, p99 and max of a set of samples, in the samples' unit. */
export interface Summary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Exact nearest-rank percentile; `samples` must be sorted ascending. */
export function percentile(samples: readonly number[], fraction: number): number {
  if (samples.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(fraction * samples.length));
  return samples[rank - 1]!;
}

/** Summarises the samples (not modified). */
export function summarize(samples: readonly number[]): Summary {
  const sorted = Float64Array.from(samples).sort();
  const values = Array.from(sorted);
  return {
    count: values.length,
    p50: round(percentile(values, 0.5)),
    p99: round(percentile(values, 0.99)),
    max: round(values.length > 0 ? values[values.length - 1]! : Number.NaN),
  };
}

/** Rounds to three significant decimals, for results people read. */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Merges sample arrays from several load generators. */
export function concat(parts: ReadonlyArray<readonly number[]>): number[] {
  const merged: number[] = [];
  for (const part of parts) for (const value of part) merged.push(value);
  return merged;
}
