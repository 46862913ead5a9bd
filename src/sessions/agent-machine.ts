/**
 * The agent actor: one per connected agent, alive exactly as long as its
 * socket. It owns the agent's timing, in two parallel regions.
 *
 * Liveness:
 *   active   — heartbeats arrive. Each HEARTBEAT re-enters the state, which
 *              restarts its timer (and reports `active` again, which the
 *              write-behind path coalesces). Two intervals without one →
 *              inactive.
 *   inactive — one more interval without a heartbeat → offline; a heartbeat
 *              brings the agent back to active.
 *   offline  — three intervals missed, or SOCKET_CLOSED. Final: the session
 *              closes the socket and stops the actor.
 *
 * Token:
 *   valid    — until the token enters its refresh window → expiring, which
 *              tells the agent (`token_expiring`) once.
 *   expiring — TOKEN_REFRESHED → valid with the new expiry; the expiry
 *              itself → expired, and the session closes with 4401 at once,
 *              not at the next reconnect.
 *
 * Every status change is reported through `effects.statusChanged`. Timers
 * run on the injected clock; stopping the actor cancels them all.
 */
import { assign, createActor, setup } from 'xstate';
import type { AgentBudgets } from '../budgets/agent-budgets.ts';
import type { Clock } from '../clock/clock.ts';
import type { AgentStatus } from '../database/rows.ts';

export interface AgentEffects {
  statusChanged(status: AgentStatus): void;
  tokenExpiring(expiresAtMs: number): void;
  tokenExpired(): void;
  livenessLost(): void;
}

export interface AgentMachineInput {
  readonly heartbeatIntervalMs: number;
  readonly tokenExpiresAtMs: number;
  readonly refreshWindowMs: number;
  /** Wall-clock milliseconds, to turn the token's expiry into a delay. */
  readonly now: () => number;
  /** The agent's rate budgets: the actor owns them for as long as it lives. */
  readonly budgets: AgentBudgets;
  readonly effects: AgentEffects;
}

export type AgentEvent =
  | { type: 'HEARTBEAT' }
  | { type: 'TOKEN_REFRESHED'; expiresAtMs: number }
  | { type: 'SOCKET_CLOSED' };

export const agentMachine = setup({
  types: {
    context: {} as AgentMachineInput,
    input: {} as AgentMachineInput,
    events: {} as AgentEvent,
  },
  delays: {
    inactiveAfter: ({ context }) => context.heartbeatIntervalMs * 2,
    offlineAfter: ({ context }) => context.heartbeatIntervalMs,
    refreshWindowOpens: ({ context }) =>
      Math.max(0, context.tokenExpiresAtMs - context.refreshWindowMs - context.now()),
    tokenExpires: ({ context }) => Math.max(0, context.tokenExpiresAtMs - context.now()),
  },
  actions: {
    reportActive: ({ context }) => context.effects.statusChanged('active'),
    reportInactive: ({ context }) => context.effects.statusChanged('inactive'),
    reportOffline: ({ context }) => context.effects.statusChanged('offline'),
    loseLiveness: ({ context }) => context.effects.livenessLost(),
    warnExpiring: ({ context }) => context.effects.tokenExpiring(context.tokenExpiresAtMs),
    expireToken: ({ context }) => context.effects.tokenExpired(),
    takeNewExpiry: assign({
      tokenExpiresAtMs: ({ context, event }) =>
        event.type === 'TOKEN_REFRESHED' ? event.expiresAtMs : context.tokenExpiresAtMs,
    }),
  },
}).createMachine({
  id: 'agent',
  type: 'parallel',
  context: ({ input }) => input,
  states: {
    liveness: {
      initial: 'active',
      states: {
        active: {
          entry: 'reportActive',
          after: { inactiveAfter: 'inactive' },
          on: { HEARTBEAT: { target: 'active', reenter: true } },
        },
        inactive: {
          entry: 'reportInactive',
          after: { offlineAfter: 'offline' },
          on: { HEARTBEAT: 'active' },
        },
        offline: {
          type: 'final',
          entry: ['reportOffline', 'loseLiveness'],
        },
      },
      on: { SOCKET_CLOSED: '.offline' },
    },
    token: {
      initial: 'valid',
      states: {
        valid: {
          after: { refreshWindowOpens: 'expiring' },
        },
        expiring: {
          entry: 'warnExpiring',
          after: { tokenExpires: 'expired' },
        },
        expired: {
          type: 'final',
          entry: 'expireToken',
        },
      },
      on: { TOKEN_REFRESHED: { target: '.valid', actions: 'takeNewExpiry', reenter: true } },
    },
  },
});

export type AgentActor = ReturnType<typeof startAgentActor>;

/** Starts an actor for one session, its timers on the given clock. */
export function startAgentActor(input: AgentMachineInput, clock: Clock) {
  const actor = createActor(agentMachine, {
    input,
    clock: {
      setTimeout: (fn: () => void, timeout: number) => clock.setTimeout(fn, timeout),
      clearTimeout: (handle) => clock.clearTimeout(handle),
    },
  });
  actor.start();
  return actor;
}
