/**
 * How many token checks a second the daemon's bcrypt admission queue passes
 * at each cost factor, on this machine: the figure behind the README's
 * argument for cost 4 and the reconnect-storm estimate.
 *
 *   node bench/bcrypt-cost.ts        (or: npm run bench -- --only bcrypt)
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Hasher } from '../src/credentials/hasher.ts';
import { issueCredential } from '../src/credentials/tokens.ts';

interface CostFigure {
  readonly cost: number;
  readonly verifiesPerSecond: number;
  readonly secondsFor10kAgents: number;
}

async function measure(cost: number, seconds: number): Promise<CostFigure> {
  const hasher = new Hasher({ cost, concurrency: 2, maxQueued: 100_000 });
  const { secret } = issueCredential('agentToken');
  const hash = await hasher.hash(secret);
  const started = performance.now();
  let done = 0;
  const worker = async () => {
    while (performance.now() - started < seconds * 1_000) {
      if (!(await hasher.verify(secret, hash))) throw new Error('verify failed');
      done += 1;
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  const rate = done / ((performance.now() - started) / 1_000);
  return {
    cost,
    verifiesPerSecond: Math.round(rate),
    secondsFor10kAgents: Math.round(10_000 / rate),
  };
}

const figures: CostFigure[] = [];
for (const cost of [4, 6, 8, 10]) {
  const figure = await measure(cost, cost >= 10 ? 8 : 3);
  figures.push(figure);
  console.log(
    `cost ${cost}: ${figure.verifiesPerSecond} verifies/s, ` +
      `10,000 agents in ~${figure.secondsFor10kAgents} s`,
  );
}
const result = { date: new Date().toISOString(), cpus: cpus().length, figures };
writeFileSync(
  new URL('./results/bcrypt-cost.json', import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
