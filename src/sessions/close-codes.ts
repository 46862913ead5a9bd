/** The close codes of the agent and feed sockets (see the contract). */
export const closeCodes = Object.freeze({
  normal: 1000,
  goingAway: 1001,
  policyViolation: 1008,
  tooLarge: 1009,
  restarting: 1012,
  /** Token invalid, expired or revoked. */
  tokenInvalid: 4401,
  /** Replaced by a newer session of the same agent. */
  replaced: 4409,
  /** A feed subscriber that could not keep up; it resumes from its cursor. */
  tooSlow: 4429,
});
