/**
 * How the agent names its host to the server: the host name, and the
 * machine id when the system has one (it keeps two machines that share a
 * host name apart).
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';

const machineIdPattern = /^[0-9a-zA-Z-]{8,128}$/;

/** The system's host name. */
export function systemHostname(): string {
  return hostname();
}

/** The machine id in `path` (default `/etc/machine-id`), or `undefined` if unreadable. */
export async function systemMachineId(path = '/etc/machine-id'): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const id = text.trim();
  return machineIdPattern.test(id) ? id : undefined;
}
