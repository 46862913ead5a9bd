/**
 * The V8 inspector of a daemon started with `NODE_OPTIONS=--inspect=127.0.0.1:0`,
 * for tests that measure what the daemon keeps in memory: a full garbage
 * collection first, so that the figure is what is held, not what is yet to
 * be collected.
 */
import { WebSocket } from 'ws';
import type { RunningDaemon } from './daemon.ts';

/** The environment that opens a daemon's inspector on a free loopback port. */
export const inspectorEnv = { NODE_OPTIONS: '--inspect=127.0.0.1:0' };

export class DaemonInspector {
  readonly #ws: WebSocket;
  #nextId = 1;
  readonly #pending = new Map<number, (result: any) => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString());
      this.#pending.get(message.id)?.(message.result);
      this.#pending.delete(message.id);
    });
  }

  static async connect(daemon: RunningDaemon): Promise<DaemonInspector> {
    const url = daemon.log().match(/Debugger listening on (ws:\/\/\S+)/)?.[1];
    if (!url) throw new Error('the daemon has no inspector: start it with inspectorEnv');
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return new DaemonInspector(ws);
  }

  call(method: string, params: object = {}): Promise<any> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Bytes of JavaScript heap and ArrayBuffer storage still reachable after a full GC. */
  async retainedBytes(): Promise<number> {
    await this.call('HeapProfiler.collectGarbage');
    const usage = await this.call('Runtime.getHeapUsage');
    return usage.usedSize + (usage.backingStorageSize ?? 0);
  }

  close(): void {
    this.#ws.close();
  }
}
