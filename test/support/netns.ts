/**
 * A network namespace of the test's own, joined to this host by a veth pair
 * with a private /30: the host end and the namespace end are two distinct,
 * non-loopback addresses that exist only on this machine. Requests made from
 * inside arrive at the daemon from a real remote address.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PlainRequest, PlainResponse } from './raw-http.ts';

const run = promisify(execFile);

export interface TestNamespace {
  readonly name: string;
  /** The host end of the veth pair. */
  readonly hostAddress: string;
  /** The namespace end: the client's source address. */
  readonly clientAddress: string;
  /** Makes the request from inside the namespace. */
  request(options: PlainRequest): Promise<PlainResponse>;
  remove(): Promise<void>;
}

/** Why namespaces cannot be used here, or undefined when they can. */
export function namespacesUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces exist only on Linux';
  if (process.getuid?.() !== 0) return 'creating a network namespace needs root';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return '`ip netns` (iproute2) is not available';
  }
  return undefined;
}

export async function createNamespace(): Promise<TestNamespace> {
  const tag = randomBytes(3).toString('hex');
  const name = `citadel-${tag}`;
  const hostLink = `cah${tag}`;
  const nsLink = `can${tag}`;
  const subnet = `10.${200 + (randomBytes(1)[0]! % 50)}.${randomBytes(1)[0]!}`;
  const hostAddress = `${subnet}.1`;
  const clientAddress = `${subnet}.2`;
  const steps: string[][] = [
    ['netns', 'add', name],
    ['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', nsLink],
    ['link', 'set', nsLink, 'netns', name],
    ['addr', 'add', `${hostAddress}/30`, 'dev', hostLink],
    ['link', 'set', hostLink, 'up'],
    ['netns', 'exec', name, 'ip', 'addr', 'add', `${clientAddress}/30`, 'dev', nsLink],
    ['netns', 'exec', name, 'ip', 'link', 'set', nsLink, 'up'],
    ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up'],
  ];
  const remove = async () => {
    await run('ip', ['link', 'del', hostLink]).catch(() => {});
    await run('ip', ['netns', 'del', name]).catch(() => {});
  };
  try {
    for (const step of steps) await run('ip', step);
  } catch (error) {
    await remove();
    throw error;
  }
  const client = path.join(import.meta.dirname, 'netns-client.ts');
  return {
    name,
    hostAddress,
    clientAddress,
    async request(options) {
      const { stdout } = await run(
        'ip',
        ['netns', 'exec', name, process.execPath, client, JSON.stringify(options)],
        { timeout: 20_000 },
      );
      return JSON.parse(stdout) as PlainResponse;
    },
    remove,
  };
}
