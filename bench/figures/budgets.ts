/**
 * Figure 6: the cost of one budget check and the memory of budgets for
 * 100,000 agents (goals: under 1 µs, under 10 MB). Budgets are issue 4's
 * `src/budgets/`, not built yet. This slot runs as soon as that directory
 * holds `bench-subject.ts` exporting
 *
 *   createBudgetSubject(agents: number): { check(agent: number, nowMs: number): boolean }
 *
 * which builds the budgets of `agents` agents (each agent's heartbeat and
 * threat windows) the way the daemon will. The slot measures the heap the
 * subject holds after a full collection, and the mean time of a million
 * checks spread over all agents on a simulated clock. Until then it reports
 * "not yet built".
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { round } from '../stats.ts';

export interface BudgetFigure {
  readonly figure: 6;
  readonly status: 'measured' | 'not yet built';
  readonly agents: number;
  readonly nanosPerCheck?: number;
  readonly memoryMiB?: number;
  readonly goal: string;
  readonly met?: boolean;
}

interface BudgetSubject {
  check(agent: number, nowMs: number): boolean;
}

const budgetsDir = path.resolve(import.meta.dirname, '../../src/budgets');
const subjectFile = path.join(budgetsDir, 'bench-subject.ts');
const agents = 100_000;
const goal = 'check < 1 µs; budgets of 100,000 agents < 10 MB';

export async function budgetFigure(): Promise<BudgetFigure> {
  if (!existsSync(subjectFile)) {
    return { figure: 6, status: 'not yet built', agents, goal };
  }
  const module = (await import(pathToFileURL(subjectFile).href)) as {
    createBudgetSubject(agents: number): BudgetSubject;
  };
  collect();
  const heapBefore = process.memoryUsage().heapUsed;
  const subject = module.createBudgetSubject(agents);
  collect();
  const memoryMiB = (process.memoryUsage().heapUsed - heapBefore) / 1_048_576;
  const checks = 1_000_000;
  let nowMs = 0;
  const began = process.hrtime.bigint();
  for (let i = 0; i < checks; i += 1) {
    nowMs += 0.06;
    subject.check((i * 7_919) % agents, nowMs);
  }
  const nanosPerCheck = Number(process.hrtime.bigint() - began) / checks;
  return {
    figure: 6,
    status: 'measured',
    agents,
    nanosPerCheck: round(nanosPerCheck, 1),
    memoryMiB: round(memoryMiB, 2),
    goal,
    met: nanosPerCheck < 1_000 && memoryMiB < 10,
  };
}

function collect(): void {
  if (typeof globalThis.gc === 'function') globalThis.gc();
}
