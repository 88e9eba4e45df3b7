// The doorbell wakes readers of shared memory without taking them off their event loop:
// the writer side listens on a UNIX socket and, at most once per event-loop turn, writes
// one byte to every connected reader (and one to each new reader); a reader drains what it
// follows when a byte arrives.
// The byte carries no data, so coalescing and a reader's unread bytes lose nothing.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { listenUnix } from '../ipc/unix-socket.js';

const RING_BYTE = Buffer.from([1]);

/** The writer's side: rings every connected subscriber. */
export class Doorbell {
  readonly path: string;
  readonly #server: Server;
  readonly #subscribers = new Set<Socket>();
  #pending = false;

  private constructor(path: string, server: Server) {
    this.path = path;
    this.#server = server;
    server.on('connection', (socket) => {
      this.#subscribers.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => this.#subscribers.delete(socket));
      socket.resume();
      // A subscriber's connect completes before this accept: what was written in between
      // rang everyone but it. One ring now makes it read all of that.
      socket.write(RING_BYTE);
    });
  }

  /**
   * Listens on a UNIX socket path. A socket file left by a dead process is replaced;
   * one with a live listener is an error (EADDRINUSE).
   */
  static async listen(path: string): Promise<Doorbell> {
    const server = createServer();
    await listenUnix(server, path);
    return new Doorbell(path, server);
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** Rings everyone once, at the end of this event-loop turn however often it is called. */
  ring(): void {
    if (this.#pending) return;
    this.#pending = true;
    setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#pending = false;
    for (const socket of this.#subscribers) {
      // A byte still queued for this subscriber will wake it anyway.
      if (socket.writableLength === 0) socket.write(RING_BYTE);
    }
  };

  /** Stops listening, disconnects subscribers and removes the socket file. */
  async close(): Promise<void> {
    for (const socket of this.#subscribers) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

export interface SubscribeOptions {
  /** Delay before reconnecting after the writer went away. Default 100 ms. */
  retryMs?: number;
}

/**
 * The reader's side: calls onRing when the writer rings, which it does first when it accepts
 * the (re)connection, so nothing written while disconnected is missed. Reconnects until closed.
 */
export class DoorbellSubscription {
  readonly #path: string;
  readonly #onRing: () => void;
  readonly #retryMs: number;
  #socket: Socket | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #connected = false;

  constructor(path: string, onRing: () => void, options: SubscribeOptions = {}) {
    this.#path = path;
    this.#onRing = onRing;
    this.#retryMs = options.retryMs ?? 100;
    this.#connect();
  }

  /** Whether the writer's doorbell is connected right now. */
  get connected(): boolean {
    return this.#connected;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#socket?.destroy();
  }

  #connect(): void {
    const socket = connect(this.#path);
    this.#socket = socket;
    socket.on('connect', () => (this.#connected = true));
    socket.on('data', () => this.#onRing());
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#connected = false;
      if (this.#closed) return;
      this.#retryTimer = setTimeout(() => this.#connect(), this.#retryMs);
    });
  }
}
