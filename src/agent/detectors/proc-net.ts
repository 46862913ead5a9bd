/**
 * Listening sockets as Linux shows them in `/proc/net/{tcp,tcp6,udp,udp6}`,
 * and the processes that hold them, found through the socket inodes that
 * `/proc/<pid>/fd/*` link to. Only the network namespace of the reading
 * process is visible, and another user's descriptors only to root: a socket
 * whose owner cannot be read is reported without one.
 *
 * A TCP socket listens in state 0A. A UDP socket "listens" when it is bound
 * and not connected: state 07 with no remote address.
 */

import { readdir, readFile, readlink } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { maskSecrets } from './mask-secrets.ts';

export type SocketProtocol = 'tcp' | 'tcp6' | 'udp' | 'udp6';

/** A listening socket. */
export interface ListeningSocket {
  readonly protocol: SocketProtocol;
  readonly address: string;
  readonly port: number;
  readonly uid: number;
  readonly inode: number;
}

/** The process holding a socket, as far as it could be read. */
export interface SocketOwner {
  readonly pid: number;
  readonly command: string;
  readonly executable?: string;
  /** Credentials masked, cut to 512 characters. */
  readonly commandLine?: string;
}

export const socketProtocols: readonly SocketProtocol[] = ['tcp', 'tcp6', 'udp', 'udp6'];

const tcpListen = 0x0a;
const udpUnconnected = 0x07;
const maxCommandLineChars = 512;

/** Reads every listening socket of this network namespace. */
export async function readListeningSockets(procRoot = '/proc'): Promise<ListeningSocket[]> {
  const tables = await Promise.all(
    socketProtocols.map(async (protocol) => {
      const text = await readFile(join(procRoot, 'net', protocol), 'utf8').catch((error) => {
        // tcp6 and udp6 are absent on a kernel without IPv6
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
        throw error;
      });
      return parseSocketTable(text, protocol);
    }),
  );
  return tables.flat();
}

/** Parses one `/proc/net` socket table, keeping the listening sockets. */
export function parseSocketTable(text: string, protocol: SocketProtocol): ListeningSocket[] {
  const sockets: ListeningSocket[] = [];
  for (const row of text.split('\n').slice(1)) {
    const columns = row.trim().split(/\s+/);
    if (columns.length < 10) continue;
    const [, local, remote, state, , , , uid, , inode] = columns as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (!isListening(protocol, Number.parseInt(state, 16), remote)) continue;
    const [addressHex, portHex] = local.split(':');
    if (!addressHex || !portHex) continue;
    sockets.push({
      protocol,
      address: decodeAddress(addressHex),
      port: Number.parseInt(portHex, 16),
      uid: Number(uid),
      inode: Number(inode),
    });
  }
  return sockets;
}

function isListening(protocol: SocketProtocol, state: number, remote: string): boolean {
  if (protocol === 'tcp' || protocol === 'tcp6') return state === tcpListen;
  return state === udpUnconnected && /^0+:0+$/.test(remote);
}

/**
 * Decodes a `/proc/net` address: 8 or 32 hex digits, each 32-bit word in the
 * kernel's byte order (little-endian on x86 and most ARM).
 */
export function decodeAddress(hex: string, littleEndian = endianness() === 'LE'): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((word) => {
    const wordBytes = (word.match(/../g) ?? []).map((pair) => Number.parseInt(pair, 16));
    return littleEndian ? wordBytes.reverse() : wordBytes;
  });
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let index = 0; index < bytes.length; index += 2) {
    groups.push((((bytes[index] ?? 0) << 8) | (bytes[index + 1] ?? 0)).toString(16));
  }
  // The URL parser writes an IPv6 address in its shortest form.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** Finds the processes holding the given socket inodes, where their descriptors are readable. */
export async function findSocketOwners(
  inodes: ReadonlySet<number>,
  procRoot = '/proc',
): Promise<Map<number, SocketOwner>> {
  const owners = new Map<number, SocketOwner>();
  if (inodes.size === 0) return owners;
  const pids = (await readdir(procRoot)).filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    const descriptors = await readdir(join(procRoot, pid, 'fd')).catch(() => [] as string[]);
    for (const descriptor of descriptors) {
      const target = await readlink(join(procRoot, pid, 'fd', descriptor)).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode === undefined || !inodes.has(Number(inode)) || owners.has(Number(inode))) continue;
      owners.set(Number(inode), await describeProcess(procRoot, Number(pid)));
    }
    if (owners.size === inodes.size) break;
  }
  return owners;
}

async function describeProcess(procRoot: string, pid: number): Promise<SocketOwner> {
  const directory = join(procRoot, String(pid));
  const command = (await readFile(join(directory, 'comm'), 'utf8').catch(() => '?')).trim();
  const executable = await readlink(join(directory, 'exe')).catch(() => undefined);
  const rawCommandLine = await readFile(join(directory, 'cmdline'), 'utf8').catch(() => '');
  const commandLine = maskSecrets(rawCommandLine.replace(/\0+$/, '').replaceAll('\0', ' '));
  return {
    pid,
    command,
    ...(executable === undefined ? {} : { executable }),
    ...(commandLine === '' ? {} : { commandLine: commandLine.slice(0, maxCommandLineChars) }),
  };
}
