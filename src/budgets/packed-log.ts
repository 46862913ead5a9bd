/**
 * A sliding-window log packed into a string, for the per-agent budgets,
 * which exist once per agent (100,000 of them): a JS array of numbers costs
 * a 32-byte wrapper, a 16-byte store header and 8 bytes per time, rounded up
 * to the capacity V8 grew it to; a string costs a 16-byte header and, here,
 * 6 bytes per time. Each time is a millisecond count offset by 2^47 (so
 * times before the process started, restored from storage, stay positive),
 * written as three UTF-16 code units of 16 bits, oldest first. Strings are
 * immutable: every change makes a new, exact-size one.
 *
 * The string is never shown, logged or stored: `times()` turns it back into
 * numbers for storage.
 */

/** A packed log; the empty string is the empty log. */
export type PackedLog = string;

/** Code units per time. */
export const unitsPerTime = 3;
const offset = 2 ** 47;

/** Appends the three code units of a time. */
export function encodeInto(units: number[], timeMs: number): void {
  const value = Math.round(timeMs) + offset;
  const high = Math.floor(value / 2 ** 32);
  const low = value % 2 ** 32;
  units.push(high & 0xffff, low >>> 16, low & 0xffff);
}

/**
 * A flat string of the units. Concatenation and `slice` would give V8 rope
 * and sliced strings, which point at (and keep alive) the strings they came
 * from; `fromCharCode` makes a string of its own, of exactly this size.
 */
export function flat(units: readonly number[]): PackedLog {
  return String.fromCharCode(...units);
}

/** The time whose three code units start at `unit`. */
export function timeAtUnit(log: string, unit: number): number {
  const at = unit;
  const high = log.charCodeAt(at);
  const low = log.charCodeAt(at + 1) * 2 ** 16 + log.charCodeAt(at + 2);
  return high * 2 ** 32 + low - offset;
}

/** The times of the log, oldest first. */
export function times(log: PackedLog): number[] {
  const result = new Array<number>(log.length / unitsPerTime);
  for (let i = 0; i < result.length; i += 1) result[i] = timeAtUnit(log, i * unitsPerTime);
  return result;
}

/** A log of the given times (sorted oldest first by the caller). */
export function pack(sortedTimes: readonly number[]): PackedLog {
  const units: number[] = [];
  for (const time of sortedTimes) encodeInto(units, time);
  return flat(units);
}
