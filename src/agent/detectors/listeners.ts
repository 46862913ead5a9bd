/**
 * `--listeners`: a TCP or UDP port that starts listening on the host is a
 * threat, naming the port, the address, the socket's user and, where
 * readable, the process.
 *
 * The first poll of a state directory records the listeners already there
 * without a threat. A socket counts as new once it has been seen in
 * `confirmPolls` consecutive polls, so that a client's short-lived unbound
 * UDP socket is not taken for a server. A known listener that goes away is
 * forgotten only after it has been observed absent for `forgetAfterMs`: a
 * service restarting is not news, a port that stayed closed and opened again
 * is. Known listeners are kept in `<state>/detectors/listeners.json`, so a
 * listener that appeared while the agent was stopped is reported when it
 * starts again.
 */
import { join } from 'node:path';
import { z } from 'zod';
import type { Detector, DetectorContext } from './detector.ts';
import { detectorDirectory, loadStateFile, saveStateFile } from './detector-state.ts';
import { derivedReportId, emitDetection } from './emit.ts';
import {
  findSocketOwners,
  type ListeningSocket,
  readListeningSockets,
  type SocketOwner,
} from './proc-net.ts';

export interface ListenerWatchSettings {
  readonly intervalMs?: number;
  /** Polls in a row a socket must be seen in before it is reported. */
  readonly confirmPolls?: number;
  /** How long a known listener must be seen absent before it is forgotten. */
  readonly forgetAfterMs?: number;
  /** The proc file system; another root only for tests. */
  readonly procRoot?: string;
}

export const listenerWatchDefaults = Object.freeze({
  intervalMs: 5_000,
  confirmPolls: 2,
  forgetAfterMs: 60 * 60_000,
});

export const listenersFileName = 'listeners.json';

const knownSchema = z.object({
  version: z.literal(1),
  known: z.record(
    z.string(),
    z.object({ first_seen_at: z.string(), missing_since_ms: z.number().nullable() }),
  ),
});

type Known = z.infer<typeof knownSchema>['known'];

/** Creates the listener detector. */
export async function createListenerWatch(
  settings: ListenerWatchSettings,
  context: DetectorContext,
): Promise<Detector> {
  const options = { ...listenerWatchDefaults, ...settings };
  const file = join(await detectorDirectory(context.stateDirectory), listenersFileName);
  const log = context.logger.child({ detector: 'listeners' });
  const procRoot = settings.procRoot ?? '/proc';
  let known: Known | undefined;
  const sightings = new Map<string, number>();

  const save = (entries: Known) => saveStateFile(file, { version: 1, known: entries });

  const reportListener = async (socket: ListeningSocket, owner: SocketOwner | undefined) => {
    const where = `${socket.protocol.startsWith('tcp') ? 'TCP' : 'UDP'} ${endpoint(socket)}`;
    const report = await emitDetection(
      {
        id: derivedReportId('listener', keyOf(socket), String(socket.inode)),
        threat_type: 'network.new_listener',
        severity: severityOf(socket),
        title: `New ${where} listener${owner ? ` (${owner.command})` : ''}`,
        details: {
          detector: 'listeners',
          protocol: socket.protocol,
          address: socket.address,
          port: socket.port,
          uid: socket.uid,
          inode: socket.inode,
          process: owner
            ? {
                pid: owner.pid,
                command: owner.command,
                executable: owner.executable ?? null,
                command_line: owner.commandLine ?? null,
              }
            : null,
        },
        detectedAtMs: context.clock.now(),
      },
      context,
    );
    if (report) log.warn({ listener: keyOf(socket), reportId: report.id }, 'listeners:new');
  };

  const poll = async (): Promise<void> => {
    const sockets = await readListeningSockets(procRoot);
    if (!known) known = await loadStateFile(file, knownSchema, log).then((saved) => saved?.known);
    const nowMs = context.clock.now();
    if (!known) {
      known = Object.fromEntries(sockets.map((socket) => [keyOf(socket), entryAt(nowMs)]));
      await save(known);
      log.info({ listeners: Object.keys(known).length }, 'listeners:baseline_recorded');
      return;
    }

    const present = new Map(sockets.map((socket) => [keyOf(socket), socket]));
    const confirmed = confirmNew(present, known, sightings, options.confirmPolls);
    const changed = ageKnown(known, present, nowMs, options.forgetAfterMs);
    if (confirmed.length === 0) {
      if (changed) await save(known);
      return;
    }

    const owners = await findSocketOwners(
      new Set(confirmed.map((socket) => socket.inode)),
      procRoot,
    );
    for (const socket of confirmed) {
      await reportListener(socket, owners.get(socket.inode));
      known[keyOf(socket)] = entryAt(nowMs);
      sightings.delete(keyOf(socket));
      await save(known);
    }
  };

  return {
    name: 'listeners',
    intervalMs: options.intervalMs,
    poll,
    close: async () => {},
  };
}

/** Counts sightings of unknown sockets; answers those seen often enough, in key order. */
function confirmNew(
  present: ReadonlyMap<string, ListeningSocket>,
  known: Known,
  sightings: Map<string, number>,
  confirmPolls: number,
): ListeningSocket[] {
  for (const key of [...sightings.keys()]) if (!present.has(key)) sightings.delete(key);
  const confirmed: ListeningSocket[] = [];
  for (const [key, socket] of [...present].sort(([a], [b]) => a.localeCompare(b))) {
    if (known[key]) continue;
    const seen = (sightings.get(key) ?? 0) + 1;
    sightings.set(key, seen);
    if (seen >= confirmPolls) confirmed.push(socket);
  }
  return confirmed;
}

/** Marks known listeners present or missing and forgets those missing too long. */
function ageKnown(
  known: Known,
  present: ReadonlyMap<string, ListeningSocket>,
  nowMs: number,
  forgetAfterMs: number,
): boolean {
  let changed = false;
  for (const [key, entry] of Object.entries(known)) {
    if (present.has(key)) {
      if (entry.missing_since_ms !== null) {
        entry.missing_since_ms = null;
        changed = true;
      }
    } else if (entry.missing_since_ms === null) {
      entry.missing_since_ms = nowMs;
      changed = true;
    } else if (nowMs - entry.missing_since_ms >= forgetAfterMs) {
      delete known[key];
      changed = true;
    }
  }
  return changed;
}

function entryAt(nowMs: number) {
  return { first_seen_at: new Date(nowMs).toISOString(), missing_since_ms: null };
}

/** Listening on every address is more exposed than on one; loopback least. */
function severityOf(socket: ListeningSocket): number {
  if (socket.address === '0.0.0.0' || socket.address === '::') return 7;
  if (socket.address.startsWith('127.') || socket.address === '::1') return 4;
  return 6;
}

function keyOf(socket: ListeningSocket): string {
  return `${socket.protocol}:${endpoint(socket)}`;
}

function endpoint(socket: ListeningSocket): string {
  return socket.address.includes(':')
    ? `[${socket.address}]:${socket.port}`
    : `${socket.address}:${socket.port}`;
}
