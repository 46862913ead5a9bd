/**
 * Certificate expiry, watched. The daemon checks the certificate it serves at
 * start, after every reload, and once a day; each check logs one line:
 * `tls:certificate-valid` (info), `tls:certificate-expiring` (warn, within
 * 30 days) or `tls:certificate-expired` (error). The daily timer comes from
 * the injected clock, whose system timers do not hold the process open.
 */
import type { Clock, TimerHandle } from '../clock/clock.ts';
import type { Logger } from '../log/logger.ts';
import { describeCertificate } from './certificates.ts';

const dayMs = 86_400_000;
/** A certificate this close to its end is reported as expiring. */
export const expiryWarningMs = 30 * dayMs;
/** How often a running daemon looks again. */
export const expiryCheckIntervalMs = dayMs;

export type ExpiryStatus = 'valid' | 'expiring' | 'expired';

export interface Expiry {
  readonly status: ExpiryStatus;
  readonly notAfter: Date;
  /** Whole days left, rounded down; negative once expired. */
  readonly daysLeft: number;
}

/** Where a certificate stands at `nowMs`. */
export function expiryOf(notAfter: Date, nowMs: number): Expiry {
  const leftMs = notAfter.getTime() - nowMs;
  const daysLeft = Math.floor(leftMs / dayMs);
  if (leftMs <= 0) return { status: 'expired', notAfter, daysLeft };
  if (leftMs <= expiryWarningMs) return { status: 'expiring', notAfter, daysLeft };
  return { status: 'valid', notAfter, daysLeft };
}

export interface ExpiryWatchOptions {
  /** The certificate in use now; read afresh at every check. */
  readonly current: () => { readonly cert: string; readonly certFile: string };
  readonly clock: Clock;
  readonly log: Logger;
}

export interface ExpiryWatch {
  /** Checks and logs now (as after a reload); the daily rhythm is unchanged. */
  check(): Expiry;
  stop(): void;
}

/** Checks now, then every day until stopped. */
export function watchCertificateExpiry(options: ExpiryWatchOptions): ExpiryWatch {
  const { clock, log } = options;
  let timer: TimerHandle | undefined;

  const check = (): Expiry => {
    const { cert, certFile } = options.current();
    const facts = describeCertificate(cert);
    const expiry = expiryOf(facts.validTo, clock.now());
    const fields = {
      certFile,
      fingerprint: facts.fingerprint,
      notAfter: facts.validTo.toISOString(),
      daysLeft: expiry.daysLeft,
    };
    if (expiry.status === 'expired') log.error(fields, 'tls:certificate-expired');
    else if (expiry.status === 'expiring') log.warn(fields, 'tls:certificate-expiring');
    else log.info(fields, 'tls:certificate-valid');
    return expiry;
  };

  const daily = (): void => {
    timer = clock.setTimeout(daily, expiryCheckIntervalMs);
    try {
      check();
    } catch (error) {
      log.error({ err: error }, 'tls:expiry-check-failed');
    }
  };

  check();
  timer = clock.setTimeout(daily, expiryCheckIntervalMs);
  return {
    check,
    stop(): void {
      if (timer) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
