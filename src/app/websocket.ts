import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import createRouter from 'find-my-way';
import { WebSocket, WebSocketServer } from 'ws';
import type { WebSocketConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { RouteParams } from './http-routes.js';

/** Close codes Kobold sends (RFC 6455 §7.4). */
export const CLOSE_SERVICE_RESTART = 1012;
export const CLOSE_POLICY = 1008;
/** How long a draining worker waits for clients to answer its close frame. */
const CLOSE_GRACE_MS = 2_000;

/** One client connection. `send` applies the send-buffer limit; `socket` is the `ws` WebSocket. */
export class WsConnection {
  /** Messages dropped because the client read too slowly (policy `drop`). */
  dropped = 0;

  constructor(
    readonly socket: WebSocket,
    readonly req: IncomingMessage,
    readonly params: RouteParams,
    private readonly options: WebSocketConfig,
  ) {}

  /** Queues a message; false when it was not sent (closed, or a slow consumer). */
  send(data: string | Buffer): boolean {
    if (this.socket.readyState !== WebSocket.OPEN) return false;
    if (this.socket.bufferedAmount > this.options.sendBufferBytes) {
      if (this.options.slowConsumer === 'drop') {
        this.dropped += 1;
        return false;
      }
      this.socket.close(CLOSE_POLICY, 'slow consumer: send buffer full');
      return false;
    }
    this.socket.send(data);
    return true;
  }

  close(code = 1000, reason = ''): void {
    this.socket.close(code, reason);
  }
}

export type WsHandler = (connection: WsConnection) => void;

/** The WebSocket routes of one app instance, under its prefix. */
export class WsRoutes {
  private readonly router = createRouter({ ignoreTrailingSlash: true });

  constructor(private readonly prefix: string) {}

  route(path: string, handler: WsHandler): void {
    const full = this.prefix === '/' ? path : path === '/' ? this.prefix : this.prefix + path;
    this.router.on('GET', full, () => {}, { handler });
  }

  match(path: string): { handler: WsHandler; params: RouteParams } | null {
    const found = this.router.find('GET', path);
    if (found === null) return null;
    return { handler: (found.store as { handler: WsHandler }).handler, params: found.params };
  }
}

export interface WsTarget {
  name: string;
  ws: WsRoutes;
}

/**
 * The worker's WebSocket side: upgrades requests to the app route that matches, pings every
 * connection, and closes all with 1012 (service restart) when the worker drains, so clients
 * reconnect to a live worker.
 */
export class WebSocketGateway {
  private readonly server: WebSocketServer;
  private readonly connections = new Set<WsConnection>();
  private readonly alive = new WeakSet<WebSocket>();
  private readonly pinger: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: WebSocketConfig,
    private readonly logger: Logger,
  ) {
    this.server = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes, perMessageDeflate: false });
    if (options.pingIntervalMs > 0) this.pinger = setInterval(() => this.ping(), options.pingIntervalMs);
  }

  get size(): number {
    return this.connections.size;
  }

  /** Upgrades to the first candidate app with a matching route; false if none has one. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, candidates: WsTarget[]): boolean {
    const path = (req.url ?? '/').split('?')[0]!;
    for (const app of candidates) {
      const match = app.ws.match(path);
      if (match === null) continue;
      this.server.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, match.params, match.handler, app.name));
      return true;
    }
    return false;
  }

  /** Sends every client 1012, waits briefly for the close handshakes, then cuts the rest. */
  async closeAll(): Promise<void> {
    clearInterval(this.pinger);
    if (this.connections.size === 0) return;
    const closed = [...this.connections].map((c) => new Promise<void>((resolve) => c.socket.once('close', () => resolve())));
    for (const connection of this.connections) connection.close(CLOSE_SERVICE_RESTART, 'service restart');
    const grace = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_GRACE_MS).unref());
    await Promise.race([Promise.all(closed), grace]);
    for (const connection of this.connections) connection.socket.terminate();
  }

  private accept(ws: WebSocket, req: IncomingMessage, params: RouteParams, handler: WsHandler, app: string): void {
    const connection = new WsConnection(ws, req, params, this.options);
    this.connections.add(connection);
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    ws.on('close', () => this.connections.delete(connection));
    ws.on('error', (error) => this.logger.debug({ app, err: error }, `websocket error: ${describeError(error)}`));
    try {
      handler(connection);
    } catch (error) {
      this.logger.error({ app, err: error }, `websocket handler failed: ${describeError(error)}`);
      ws.close(1011, 'internal error');
    }
  }

  private ping(): void {
    for (const { socket } of this.connections) {
      if (!this.alive.has(socket)) {
        socket.terminate(); // missed the last pong
        continue;
      }
      this.alive.delete(socket);
      socket.ping();
    }
  }
}
