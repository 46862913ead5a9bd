/**
 * The listener watch against the real /proc/net of the test process: TCP
 * and UDP sockets opened by the test, found with this process as their
 * owner.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createListenerWatch } from '../../../src/agent/detectors/listeners.ts';
import {
  decodeAddress,
  findSocketOwners,
  parseSocketTable,
  readListeningSockets,
} from '../../../src/agent/detectors/proc-net.ts';
import { removeScratch, scratchDirectory, type TestContext, testContext } from './context.ts';

let scratch: string;
let state: string;
let closers: Array<() => Promise<void>>;
/** Ports this test opened: other processes on the host may open theirs meanwhile. */
let opened: Set<number>;

beforeEach(async () => {
  scratch = await scratchDirectory('listeners');
  state = join(scratch, 'state');
  closers = [];
  opened = new Set();
});

afterEach(async () => {
  for (const close of closers) await close();
  await removeScratch(scratch);
});

async function listenTcp(host = '127.0.0.1', port = 0): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  opened.add(address.port);
  return address.port;
}

async function bindUdp(): Promise<number> {
  const socket: UdpSocket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => socket.close(() => resolve())));
  opened.add(socket.address().port);
  return socket.address().port;
}

/** The ports of the reports about sockets this test opened, in report order. */
const ports = (context: TestContext) =>
  context.reports
    .map((report) => (report.details as { port: number }).port)
    .filter((port) => opened.has(port));

const ours = (context: TestContext) =>
  context.reports.filter((report) => opened.has((report.details as { port: number }).port));

describe('the listener watch', () => {
  it('records the listeners already there without reporting them', async () => {
    await listenTcp();
    const context = testContext(state);
    const detector = await createListenerWatch({}, context);
    await detector.poll();
    await detector.poll();
    await detector.poll();
    expect(ports(context)).toEqual([]);
    expect(context.messages()).toContain('listeners:baseline_recorded');
  });

  it('reports a new TCP listener with its port and this process as its owner', async () => {
    const context = testContext(state);
    const detector = await createListenerWatch({ confirmPolls: 1 }, context);
    await detector.poll();
    const port = await listenTcp();
    await detector.poll();
    await detector.poll();

    expect(ports(context)).toEqual([port]);
    const report = ours(context)[0]!;
    expect(report.threat_type).toBe('network.new_listener');
    expect(report.title).toMatch(new RegExp(`^New TCP 127\\.0\\.0\\.1:${port} listener`));
    expect(report.severity).toBe(4);
    expect(report.details).toMatchObject({
      protocol: 'tcp',
      address: '127.0.0.1',
      port,
      uid: process.getuid?.(),
      process: { pid: process.pid, executable: process.execPath },
    });
  });

  it('reports a bound UDP socket only once it is seen in two polls in a row', async () => {
    const context = testContext(state);
    const detector = await createListenerWatch({}, context);
    await detector.poll();
    const port = await bindUdp();
    await detector.poll();
    expect(ports(context)).toEqual([]);
    await detector.poll();
    expect(ports(context)).toEqual([port]);
    expect(ours(context)[0]!.details).toMatchObject({ protocol: 'udp', address: '127.0.0.1' });
  });

  it('after a restart reports the listener that opened meanwhile, not the old one', async () => {
    const first = testContext(state);
    const before = await createListenerWatch({ confirmPolls: 1 }, first);
    await before.poll();
    const early = await listenTcp();
    await before.poll();

    const late = await listenTcp();
    const second = testContext(state);
    const after = await createListenerWatch({ confirmPolls: 1 }, second);
    await after.poll();
    expect(ports(first)).toEqual([early]);
    expect(ports(second)).toEqual([late]);
  });

  it('reports a port again only after it stayed closed for the forget period', async () => {
    const context = testContext(state);
    const detector = await createListenerWatch({ confirmPolls: 1, forgetAfterMs: 60_000 }, context);
    await detector.poll();
    const port = await listenTcp();
    await detector.poll();
    expect(ports(context)).toEqual([port]);

    await closers.pop()!();
    await detector.poll();
    context.clock.advance(30_000);
    await detector.poll();
    await listenTcp('127.0.0.1', port);
    await detector.poll();
    expect(ports(context)).toEqual([port]);

    await closers.pop()!();
    await detector.poll();
    context.clock.advance(60_000);
    await detector.poll();
    await listenTcp('127.0.0.1', port);
    await detector.poll();
    expect(ports(context)).toEqual([port, port]);
  });
});

describe('reading /proc/net', () => {
  it('finds an IPv6 listener and writes its address in the short form', async () => {
    const port = await listenTcp('::1').catch(() => undefined);
    if (port === undefined) return; // no IPv6 loopback here: nothing to find
    const sockets = await readListeningSockets();
    expect(sockets).toContainEqual(
      expect.objectContaining({ protocol: 'tcp6', address: '::1', port }),
    );
  });

  it('decodes addresses in the kernel’s little-endian word order', () => {
    expect(decodeAddress('0100007F', true)).toBe('127.0.0.1');
    expect(decodeAddress('00000000000000000000000001000000', true)).toBe('::1');
    expect(decodeAddress('B80D0120000000000000000001000000', true)).toBe('2001:db8::1');
  });

  it('keeps listening TCP sockets and unconnected UDP sockets, not connections', () => {
    const header =
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt' +
      '   uid  timeout inode\n';
    const row = (local: string, remote: string, state: string, inode: number) =>
      `   0: ${local} ${remote} ${state} 00000000:00000000 00:00000000 00000000` +
      `  1000        0 ${inode} 1\n`;
    const tcp =
      header +
      row('0100007F:1F90', '00000000:0000', '0A', 11) +
      row('0100007F:C350', '0100007F:1F90', '01', 12);
    const udp =
      header +
      row('00000000:0035', '00000000:0000', '07', 21) +
      row('0100007F:D431', '0100007F:0035', '01', 22);
    expect(parseSocketTable(tcp, 'tcp')).toEqual([
      { protocol: 'tcp', address: '127.0.0.1', port: 8080, uid: 1000, inode: 11 },
    ]);
    expect(parseSocketTable(udp, 'udp')).toEqual([
      { protocol: 'udp', address: '0.0.0.0', port: 53, uid: 1000, inode: 21 },
    ]);
  });

  it('finds a socket’s owner through /proc/<pid>/fd, and none for an unknown inode', async () => {
    const port = await listenTcp();
    const socket = (await readListeningSockets()).find((entry) => entry.port === port);
    const owners = await findSocketOwners(new Set([socket!.inode, 1]));
    expect(owners.get(socket!.inode)).toMatchObject({ pid: process.pid });
    expect(owners.has(1)).toBe(false);
  });
});
