import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import type { HttpConfig } from '../config/schema.js';
import { describeError, isKoboldError, KoboldError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { AppInstance } from '../app/instance.js';
import { NOT_HANDLED } from '../app/http-routes.js';
import type { AppResolver } from '../app/resolver.js';

interface ConnectionState {
  active: number;
  idleSince: number;
}

/** Writes a JSON error body: `{"error":{"code","message"}}`. */
export function sendError(res: ServerResponse, error: KoboldError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: error.toJSON() });
  res.writeHead(error.status ?? 500, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The HTTP server of one worker: routes each request to an app instance, counts requests and
 * connections for the heartbeat, and drains without failing a request (see `drain`).
 */
export class WorkerHttpServer {
  readonly server: Server;
  requests = 0;
  inFlight = 0;
  lastActiveAt = Date.now();
  private draining = false;
  private readonly connections = new Map<Socket, ConnectionState>();
  private readonly openResponses = new Set<ServerResponse>();

  constructor(
    private readonly options: HttpConfig,
    private readonly resolver: AppResolver<AppInstance>,
    private readonly logger: Logger,
  ) {
    this.server = createServer({ keepAliveTimeout: options.keepAliveTimeoutMs, headersTimeout: options.headersTimeoutMs, requestTimeout: options.requestTimeoutMs });
    this.server.maxConnections = options.maxConnections;
    this.server.on('connection', (socket) => this.track(socket));
    this.server.on('request', (req, res) => this.onRequest(req, res));
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
   * Stops accepting, answers every further request with `Connection: close`, closes
   * connections that stay idle for `drainIdleCloseMs`, and resolves when none is left.
   * Idle keep-alive connections are not cut at once (as http.Server#close does): a client
   * may already have a request on the wire, and it would fail.
   */
  drain(): Promise<void> {
    this.draining = true;
    if (this.server.listening) NetServer.prototype.close.call(this.server);
    for (const res of this.openResponses) if (!res.headersSent) res.setHeader('connection', 'close');
    return new Promise((resolve) => {
      const sweep = () => {
        const now = Date.now();
        for (const [socket, state] of this.connections) {
          if (state.active === 0 && now - state.idleSince >= this.options.drainIdleCloseMs) socket.end();
        }
        if (this.connections.size === 0) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(sweep, Math.max(10, this.options.drainIdleCloseMs / 4));
      sweep();
    });
  }

  private track(socket: Socket): void {
    this.connections.set(socket, { active: 0, idleSince: Date.now() });
    socket.once('close', () => this.connections.delete(socket));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const state = this.connections.get(req.socket);
    if (state !== undefined) state.active += 1;
    this.inFlight += 1;
    this.openResponses.add(res);
    if (this.draining) res.setHeader('connection', 'close');
    res.once('close', () => {
      this.inFlight -= 1;
      this.requests += 1;
      this.lastActiveAt = Date.now();
      this.openResponses.delete(res);
      if (state !== undefined) {
        state.active -= 1;
        state.idleSince = this.lastActiveAt;
      }
    });
    this.dispatch(req, res);
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    for (const app of this.resolver.candidates(req)) {
      let result: unknown;
      try {
        result = app.routes.dispatch(req, res);
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
