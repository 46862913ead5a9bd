/**
 * Request and reply over a forked child's IPC channel. The parent calls
 * `ChildHandle.call(op, args)`; the child answers from the handlers given to
 * `serveRequests`. Every child the harness forks is tracked, and all of them
 * are killed when the parent exits, however it exits, so no load outlives a
 * run.
 */
import { type ChildProcess, fork } from 'node:child_process';

interface Request {
  readonly id: number;
  readonly op: string;
  readonly args: unknown;
}

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: string;
}

/** Handlers a child exposes: each takes the call's arguments, may be async. */
export type Handlers = Record<string, (args: never) => unknown>;

/** Child side: answers requests until the channel closes, then exits. */
export function serveRequests(handlers: Handlers): void {
  if (!process.send) throw new Error('this module runs only as a forked child');
  process.on('message', (message: Request) => {
    void answer(handlers, message);
  });
  process.on('disconnect', () => process.exit(0));
}

async function answer(handlers: Handlers, request: Request): Promise<void> {
  const handler = handlers[request.op] as ((args: unknown) => unknown) | undefined;
  let reply: Reply;
  try {
    if (!handler) throw new Error(`no handler for ${request.op}`);
    reply = { id: request.id, ok: true, value: await handler(request.args) };
  } catch (error) {
    reply = { id: request.id, ok: false, error: (error as Error).stack ?? String(error) };
  }
  if (process.connected) process.send?.(reply);
}

const living = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of living) child.kill('SIGKILL');
});

export interface ForkOptions {
  readonly args?: readonly string[];
  readonly execArgv?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** A file descriptor for the child's stdout and stderr; inherited when absent. */
  readonly outputFd?: number;
}

/** A forked child answering requests. */
export class ChildHandle {
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  #nextId = 1;

  constructor(modulePath: string, options: ForkOptions = {}) {
    const output = options.outputFd ?? 'inherit';
    this.process = fork(modulePath, [...(options.args ?? [])], {
      execArgv: [...(options.execArgv ?? [])],
      env: options.env ?? process.env,
      stdio: ['ignore', output, output, 'ipc'],
      serialization: 'advanced',
    });
    living.add(this.process);
    this.process.on('message', (reply: Reply) => this.#settle(reply));
    this.exited = new Promise((resolve) => {
      this.process.on('exit', (code) => {
        living.delete(this.process);
        for (const waiter of this.#pending.values()) {
          waiter.reject(new Error(`${modulePath} exited (${code}) during a call`));
        }
        this.#pending.clear();
        resolve(code);
      });
    });
  }

  get pid(): number {
    return this.process.pid ?? -1;
  }

  /** Calls `op` in the child; rejects with the child's error or after `timeoutMs`. */
  call<T>(op: string, args: unknown = {}, timeoutMs = 600_000): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${op} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.process.send({ id, op, args } satisfies Request);
    });
  }

  /** Kills the child if it still runs and waits for its exit. */
  async kill(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill('SIGKILL');
    }
    await this.exited;
  }

  #settle(reply: Reply): void {
    const waiter = this.#pending.get(reply.id);
    if (!waiter) return;
    this.#pending.delete(reply.id);
    if (reply.ok) waiter.resolve(reply.value);
    else waiter.reject(new Error(reply.error));
  }
}
