import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { HttpConfig } from '../config/schema.js';
import { describeError, isKoboldError, KoboldError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { AppInstance } from '../app/instance.js';
import { NOT_HANDLED } from '../app/http-routes.js';
import type { AppResolver } from '../app/resolver.js';

/** Requests with a body kept before the first sweep of those whose body arrived (see dropArrivedBodies). */
const MIN_BODIES_KEPT = 64;

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
/** Answers a request before the apps (returns true), or leaves it to them. */
export type PreHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Writes a JSON error body: `{"error":{"code","message"}}`. */
export function sendError(res: ServerResponse, error: KoboldError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: error.toJSON() });
  const headers: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) };
  res.writeHead(error.status ?? 500, headers);
  res.end(body);
}

function expectsBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

function rawError(status: string, error: KoboldError): string {
  const body = JSON.stringify({ error: error.toJSON() });
  return `HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/**
 * The HTTP server of one worker: routes each request to an app instance, enforces the
 * connection limit, counts requests and connections for the heartbeat, and drains without
 * failing a request (see `stopAccepting` and `drained`).
 */
export class WorkerHttpServer {
  readonly server: Server;
  requests = 0;
  inFlight = 0;
  lastActiveAt = Date.now();
  private draining = false;
  /** Each open connection, with the timer its first request's headers must beat. */
  private readonly connections = new Map<Socket, NodeJS.Timeout | undefined>();
  private readonly openResponses = new Set<ServerResponse>();
  /**
   * Requests with a body, oldest first, and their deadlines (see limitBodyTime). Arrays, not a
   * Map: a Map that had held requests (as keys or in values) left every later request of the
   * worker costlier, with a body or not: far more of their objects outlived young-generation
   * collections (650 KB instead of 10 KB per collection, measured) and GC time per request
   * rose ~4x.
   */
  private readonly bodiesDue: IncomingMessage[] = [];
  private readonly bodyDeadlines: number[] = [];
  /** Length of bodiesDue at which the requests whose body arrived are dropped. */
  private dropArrivedAt = MIN_BODIES_KEPT;
  private bodyTimer: NodeJS.Timeout | null = null;
  /** One listener for every response's 'close' and one for every connection's (no closure each). */
  private readonly responseClosed: (this: ServerResponse) => void;
  private readonly connectionClosed: (this: Socket) => void;

  constructor(
    private readonly options: HttpConfig,
    private readonly resolver: AppResolver<AppInstance>,
    private readonly logger: Logger,
    private readonly onUpgrade: UpgradeHandler,
    private readonly preHandler: PreHandler = () => false,
  ) {
    const server = this;
    this.responseClosed = function (this: ServerResponse) {
      server.closeResponse(this);
    };
    this.connectionClosed = function (this: Socket) {
      clearTimeout(server.connections.get(this));
      server.connections.delete(this);
    };
    this.server = createServer({
      keepAliveTimeout: options.keepAliveTimeoutMs,
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
    });
    this.server.on('connection', (socket) => this.track(socket));
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => this.clientError(error, socket));
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * Stops accepting (the master keeps the shared port open for the other workers) and
   * answers every further request with `Connection: close`.
   */
  stopAccepting(): void {
    this.draining = true;
    // Not http.Server#close: it also cuts idle keep-alive connections at once, and a client
    // may already have a request on the wire on one of them.
    if (this.server.listening) NetServer.prototype.close.call(this.server);
    for (const res of this.openResponses) if (!res.headersSent) res.setHeader('connection', 'close');
  }

  /**
   * Resolves when every connection has closed. Busy ones close after their response
   * (`Connection: close`); idle keep-alive ones at their keep-alive timeout, which clients
   * know from the `Keep-Alive` header — closing them sooner would race a request already
   * on its way.
   */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.connections.size > 0) return;
        clearInterval(timer);
        resolve();
      };
      const timer = setInterval(check, 50);
      check();
    });
  }

  private track(socket: Socket): void {
    if (this.connections.size >= this.options.maxConnections) {
      const error = new KoboldError('KOBOLD_ERR_SERVICE_UNAVAILABLE', { reason: `too many connections to this worker (max ${this.options.maxConnections})` });
      socket.end(rawError('503 Service Unavailable', error));
      return;
    }
    // Node checks headersTimeout only every 30 s (connectionsCheckingInterval; a shorter interval
    // cut busy keep-alive connections during reloads here), so the first request of a
    // connection gets a timer of its own, and so does a request body (limitBodyTime).
    const headersTimer = setTimeout(() => {
      const error = new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: `request headers did not arrive within ${this.options.headersTimeoutMs} ms` });
      socket.end(rawError('408 Request Timeout', error));
      socket.destroySoon();
    }, this.options.headersTimeoutMs);
    this.connections.set(socket, headersTimer);
    socket.on('close', this.connectionClosed);
  }

  /** The first request's headers arrived: the timer is done, and no longer kept per connection. */
  private headersArrived(socket: Socket): void {
    const headersTimer = this.connections.get(socket);
    if (headersTimer === undefined) return;
    clearTimeout(headersTimer);
    this.connections.set(socket, undefined);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.headersArrived(req.socket);
    if (this.options.requestTimeoutMs > 0 && expectsBody(req)) this.limitBodyTime(req);
    this.inFlight += 1;
    this.openResponses.add(res);
    if (this.draining) res.setHeader('connection', 'close');
    res.on('close', this.responseClosed);
    this.dispatch(req, res);
  }

  private closeResponse(res: ServerResponse): void {
    if (!this.openResponses.delete(res)) return;
    this.inFlight -= 1;
    this.requests += 1;
    this.lastActiveAt = Date.now();
  }

  /**
   * A body must arrive within requestTimeoutMs (Node itself checks only every 30 s): slow-body
   * clients get 408. One timer for all requests, not one each (a poll's body nearly always
   * comes with its headers): deadlines are kept in arrival order and checked when the oldest
   * is due. Requests whose body arrived are dropped in passing, a batch at a time.
   */
  private limitBodyTime(req: IncomingMessage): void {
    if (this.bodiesDue.length >= this.dropArrivedAt) this.dropArrivedBodies();
    this.bodiesDue.push(req);
    this.bodyDeadlines.push(Date.now() + this.options.requestTimeoutMs);
    this.bodyTimer ??= setTimeout(() => this.checkBodyDeadlines(), this.options.requestTimeoutMs).unref();
  }

  /** Keeps the requests whose body is still due; next time, at twice as many (at least MIN_BODIES_KEPT). */
  private dropArrivedBodies(): void {
    let kept = 0;
    for (let i = 0; i < this.bodiesDue.length; i++) {
      const req = this.bodiesDue[i];
      if (req.complete || req.socket.destroyed) continue;
      this.bodiesDue[kept] = req;
      this.bodyDeadlines[kept] = this.bodyDeadlines[i];
      kept += 1;
    }
    this.bodiesDue.length = kept;
    this.bodyDeadlines.length = kept;
    this.dropArrivedAt = Math.max(MIN_BODIES_KEPT, kept * 2);
  }

  private checkBodyDeadlines(): void {
    this.bodyTimer = null;
    this.dropArrivedBodies();
    const now = Date.now();
    let late = 0;
    while (late < this.bodiesDue.length && this.bodyDeadlines[late] <= now) late += 1;
    this.bodyDeadlines.splice(0, late);
    for (const req of this.bodiesDue.splice(0, late)) {
      const error = new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: `the request body did not arrive within ${this.options.requestTimeoutMs} ms` });
      req.socket.end(rawError('408 Request Timeout', error));
      req.socket.destroySoon();
    }
    if (this.bodiesDue.length > 0) this.bodyTimer = setTimeout(() => this.checkBodyDeadlines(), this.bodyDeadlines[0] - now).unref();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.headersArrived(req.socket);
    if (this.draining || !this.onUpgrade(req, socket, head)) {
      const path = (req.url ?? '/').split('?')[0];
      const error = this.draining
        ? new KoboldError('KOBOLD_ERR_SERVICE_UNAVAILABLE', { reason: 'this worker is restarting' })
        : new KoboldError('KOBOLD_ERR_NOT_FOUND', { method: 'WebSocket', path });
      socket.end(rawError(this.draining ? '503 Service Unavailable' : '404 Not Found', error));
    }
  }

  private clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    if (!socket.writable) return;
    const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'ERR_HTTP_HEADERS_TIMEOUT';
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    const status = timedOut ? '408 Request Timeout' : tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request';
    const reason = timedOut ? 'the request did not arrive in time' : tooLarge ? 'request headers too large' : `malformed request: ${error.code ?? describeError(error)}`;
    socket.end(rawError(status, new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason })));
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    try {
      if (this.preHandler(req, res)) return;
    } catch (error) {
      this.logger.error({ err: error }, `request failed: ${describeError(error)}`);
      sendError(res, new KoboldError('KOBOLD_ERR_INTERNAL'));
      return;
    }
    for (const app of this.resolver.candidates(req)) {
      let result: unknown;
      try {
        result = app.http.dispatch(req, res);
      } catch (error) {
        this.fail(res, app, error);
        return;
      }
      if (result === NOT_HANDLED) continue;
      if (result instanceof Promise) result.catch((error: unknown) => this.fail(res, app, error));
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    sendError(res, new KoboldError('KOBOLD_ERR_NOT_FOUND', { method: req.method, path }));
  }

  private fail(res: ServerResponse, app: AppInstance, error: unknown): void {
    if (isKoboldError(error) && error.status !== undefined) {
      sendError(res, error);
      return;
    }
    this.logger.error({ app: app.name, err: error }, `request failed: ${describeError(error)}`);
    sendError(res, new KoboldError('KOBOLD_ERR_INTERNAL'));
  }
}
