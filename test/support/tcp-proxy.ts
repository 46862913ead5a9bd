/**
 * A TCP proxy for tests, in two roles. As a load balancer it hands each new
 * connection to the next live backend port, round robin, as a TCP (layer 4)
 * balancer in front of several daemons would; TLS passes through untouched.
 * In front of PostgreSQL it can cut connections silently: `freeze()` stops
 * forwarding on the chosen connections in both directions without closing
 * anything, as a dead network path would, so only a deadline can notice.
 */
import net from 'node:net';

interface Piped {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** The first bytes the client sent (a PostgreSQL startup packet names its application). */
  firstBytes: Buffer;
  frozen: boolean;
}

export class TcpProxy {
  readonly #server: net.Server;
  readonly #backends: () => number[];
  readonly #piped = new Set<Piped>();
  #next = 0;

  /** `backends` is read for every new connection, so ports may come and go. */
  constructor(backends: () => number[]) {
    this.#backends = backends;
    this.#server = net.createServer((client) => this.#accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** Stops forwarding, both ways, on the open connections whose first bytes contain `marker`. */
  freeze(marker: string): number {
    let frozen = 0;
    for (const piped of this.#piped) {
      if (!piped.firstBytes.includes(marker)) continue;
      piped.frozen = true;
      piped.client.pause();
      piped.upstream.pause();
      frozen += 1;
    }
    return frozen;
  }

  async close(): Promise<void> {
    for (const piped of this.#piped) {
      piped.client.destroy();
      piped.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    const ports = this.#backends();
    if (ports.length === 0) {
      client.destroy();
      return;
    }
    const port = ports[this.#next++ % ports.length]!;
    const upstream = net.connect(port, '127.0.0.1');
    const piped: Piped = { client, upstream, firstBytes: Buffer.alloc(0), frozen: false };
    this.#piped.add(piped);
    client.on('data', (chunk: Buffer) => {
      if (piped.firstBytes.length < 512)
        piped.firstBytes = Buffer.concat([piped.firstBytes, chunk]);
      if (!piped.frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!piped.frozen) client.write(chunk);
    });
    const end = () => {
      this.#piped.delete(piped);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }
}
