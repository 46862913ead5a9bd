import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isClientError } from '../../src/agent/errors.ts';
import { FeedClient, type FeedOutput } from '../../src/cli/client/feed-client.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { FakeDaemon, FrameLog, send } from './fake-daemon.ts';

let daemon: FakeDaemon;

beforeAll(async () => {
  daemon = await FakeDaemon.start();
});

afterAll(async () => {
  await daemon.stop();
});

beforeEach(() => {
  daemon.decideUpgrade = () => undefined;
});

class LineSink extends EventEmitter implements FeedOutput {
  readonly lines: Array<Record<string, unknown>> = [];
  write(line: string): boolean {
    this.lines.push(JSON.parse(line));
    return true;
  }
}

function follow(since?: string) {
  const output = new LineSink();
  const client = new FeedClient({
    connection: {
      server: new URL(daemon.url),
      trust: { kind: 'pin', fingerprint: daemon.certificate.fingerprint },
    },
    token: 'cad_1_secret',
    filter: { minSeverity: 6 },
    ...(since === undefined ? {} : { since }),
    output,
    logger: silentLogger(),
    backoff: { initialMs: 20, capMs: 40, floorMs: 0 },
  });
  const running = client.run();
  running.catch(() => {});
  return { client, running, output };
}

const threat = (cursor: string) => ({
  type: 'threat',
  id: `t-${cursor}`,
  severity: 8,
  title: 'x',
  cursor,
});

describe('FeedClient', () => {
  it('subscribes with its filter and prints threats and updates as JSON lines', async () => {
    const { client, output } = follow();
    const { socket, request } = await daemon.nextConnection();
    expect(request.headers.authorization).toBe('Bearer cad_1_secret');
    const frames = new FrameLog(socket);
    expect(await frames.next('subscribe')).toEqual({ type: 'subscribe', min_severity: 6 });

    send(socket, { type: 'subscribed' });
    send(socket, threat('41'));
    send(socket, { type: 'threat_updated', id: 't-41', status: 'acknowledged' });
    send(socket, { type: 'heartbeat_ack' });
    await expect.poll(() => output.lines).toHaveLength(2);
    expect(output.lines[0]).toEqual(threat('41'));
    expect(output.lines[1]).toMatchObject({ type: 'threat_updated', status: 'acknowledged' });
    expect(client.cursor).toBe('41');
    client.stop();
  });

  it('resumes after the last cursor it printed when the connection is lost', async () => {
    const { client } = follow('5');
    const first = await daemon.nextConnection();
    const firstFrames = new FrameLog(first.socket);
    expect((await firstFrames.next('subscribe'))['since']).toBe('5');
    send(first.socket, { type: 'subscribed' });
    send(first.socket, threat('9'));
    await expect.poll(() => client.cursor).toBe('9');
    first.socket.close(1012, 'restarting; reconnect_after_ms=20');

    const second = await daemon.nextConnection();
    const secondFrames = new FrameLog(second.socket);
    expect((await secondFrames.next('subscribe'))['since']).toBe('9');
    client.stop();
  });

  it('gives up with unauthorized when the token is refused at the upgrade', async () => {
    daemon.decideUpgrade = () => 401;
    const { running } = follow();
    const outcome = await running.catch((error: unknown) => error);
    expect(isClientError(outcome, 'api_error')).toBe(true);
    expect((outcome as { serverCode?: string }).serverCode).toBe('unauthorized');
  });

  it('gives up when the server closes the feed with 4401', async () => {
    const { running } = follow();
    const { socket } = await daemon.nextConnection();
    socket.close(4401, 'invalid token');
    const outcome = await running.catch((error: unknown) => error);
    expect((outcome as { serverCode?: string }).serverCode).toBe('unauthorized');
  });
});
