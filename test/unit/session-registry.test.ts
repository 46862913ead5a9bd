import { describe, expect, it } from 'vitest';
import type { LiveSession } from '../../src/sessions/registry.ts';
import { SessionRegistry } from '../../src/sessions/registry.ts';

function session(claim: number, agentId = 'agent-1') {
  const closes: number[] = [];
  const live: LiveSession & { closes: number[] } = {
    agentId,
    sessionId: `session-${claim}`,
    claim,
    tokenId: 'token-1',
    closes,
    close: (code) => closes.push(code),
    release: () => {},
  };
  return live;
}

describe('the session registry', () => {
  it('closes the older session with 4409 when a newer one of the agent registers', () => {
    const registry = new SessionRegistry();
    const older = session(1);
    const newer = session(2);
    expect(registry.add(older)).toBe(true);
    expect(registry.add(newer)).toBe(true);
    expect(older.closes).toEqual([4409]);
    expect(registry.get('agent-1')).toBe(newer);
  });

  it('refuses an older session that finishes opening after a newer one', () => {
    const registry = new SessionRegistry();
    const newer = session(7);
    const older = session(5);
    registry.add(newer);
    expect(registry.add(older)).toBe(false);
    expect(newer.closes).toEqual([]);
    expect(registry.get('agent-1')).toBe(newer);
  });

  it('refuses a session whose agent was claimed more recently on another daemon', () => {
    const registry = new SessionRegistry((agentId, claim) => agentId === 'agent-1' && claim < 9);
    expect(registry.add(session(8))).toBe(false);
    expect(registry.size).toBe(0);
    expect(registry.add(session(10))).toBe(true);
  });
});
