/**
 * When a log line says it happened. Threshold windows count events by their
 * own time where the line carries one, so that a backlog read at once (after
 * a restart, or a rotated file read to its end) is not mistaken for a burst.
 *
 * Recognised at the start of a line: RFC 3339 / ISO 8601 with an offset (as
 * rsyslog writes on current Debian and RHEL) and the classic syslog
 * `Mmm dd hh:mm:ss` in local time, whose year is the one that puts it
 * closest before now. Lines without a timestamp (`journalctl -o cat`) take
 * the time they were read.
 */

const isoPrefix = /^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))\s/;
const syslogPrefix = /^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})\s/;
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A line may claim to be from the future by this much (clock skew) before it is not believed. */
const allowedFutureMs = 5 * 60_000;

/** The event time of a line in wall-clock milliseconds, else `nowMs`. */
export function lineTimeMs(line: string, nowMs: number): number {
  const claimed = isoTimeMs(line) ?? syslogTimeMs(line, nowMs);
  if (claimed === undefined || Number.isNaN(claimed)) return nowMs;
  if (claimed > nowMs + allowedFutureMs) return nowMs;
  return claimed;
}

function isoTimeMs(line: string): number | undefined {
  const match = isoPrefix.exec(line);
  if (!match?.[1]) return undefined;
  return Date.parse(match[1].replace(' ', 'T'));
}

function syslogTimeMs(line: string, nowMs: number): number | undefined {
  const match = syslogPrefix.exec(line);
  if (!match) return undefined;
  const month = months.indexOf(match[1] ?? '');
  if (month === -1) return undefined;
  const [day, hours, minutes, seconds] = match.slice(2, 6).map(Number) as [
    number,
    number,
    number,
    number,
  ];
  const year = new Date(nowMs).getFullYear();
  const thisYear = new Date(year, month, day, hours, minutes, seconds).getTime();
  if (thisYear <= nowMs + allowedFutureMs) return thisYear;
  return new Date(year - 1, month, day, hours, minutes, seconds).getTime();
}
