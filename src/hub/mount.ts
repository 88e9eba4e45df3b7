// The hub on a web worker's port: the transports under `pathPrefix` (SSE, long-poll,
// refresh, command POST, WebSocket upgrade at `<pathPrefix>/ws`), the browser client at
// `<pathPrefix>/client.js`, and the server API at `<apiPrefix>/<method>`. Requests for
// other paths are left to the apps.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { describeError, KoboldError } from '../errors.js';
import { createApiHandler } from './api.js';
import type { HubSettings } from './config.js';
import { type HttpHandler, hubRoutes } from './index.js';
import type { HubNode } from './node.js';
import { errorBody } from './protocol.js';
import { SERVER_METHODS } from './server-commands.js';
import { sendError } from './transports/http.js';
import { webSocketServerOptions } from './transports/ws.js';

export class HubHttpMount {
  private readonly routes = new Map<string, HttpHandler>();
  private readonly webSocketPath: string;
  private readonly streamPaths: Set<string>;
  private readonly wss: WebSocketServer;
  private readonly accept: ReturnType<typeof hubRoutes>['acceptWebSocket'];
  /** Built once per worker and variant, on the first request (esbuild takes ~100 ms). */
  private readonly clientBundles = new Map<'json' | 'msgpack', Promise<string>>();
  private draining = false;

  constructor(
    private readonly node: HubNode,
    private readonly settings: HubSettings,
    private readonly logger: Logger,
  ) {
    const mounted = hubRoutes(node, settings.pathPrefix);
    for (const route of mounted.routes) this.routes.set(route.path, route.handler);
    this.webSocketPath = mounted.webSocketPath;
    this.accept = mounted.acceptWebSocket;
    // Streams are refused while draining so the client reconnects to another worker.
    this.streamPaths = new Set([`${settings.pathPrefix}/sse`]);
    this.wss = new WebSocketServer({ noServer: true, ...webSocketServerOptions(node) });
    const api =
      settings.apiKey === undefined
        ? (_req: IncomingMessage, res: ServerResponse) => sendError(res, new KoboldError('KOBOLD_ERR_HUB_API_DISABLED'))
        : createApiHandler(node, { apiKey: settings.apiKey, maxBodyBytes: settings.maxApiBodyBytes });
    for (const method of SERVER_METHODS) this.routes.set(`${settings.apiPrefix}/${method}`, api);
    if (settings.serveClientBundle) {
      this.routes.set(`${settings.pathPrefix}/client.js`, (req, res) => this.serveClient(req, res, 'json'));
      this.routes.set(`${settings.pathPrefix}/client-msgpack.js`, (req, res) => this.serveClient(req, res, 'msgpack'));
    }
  }

  handleHttp(req: IncomingMessage, res: ServerResponse): boolean {
    const path = pathOf(req);
    const handler = this.routes.get(path);
    if (handler === undefined) return false;
    if (this.draining && this.streamPaths.has(path)) {
      res.setHeader('connection', 'close');
      sendError(res, new KoboldError('KOBOLD_ERR_HUB_UNAVAILABLE', { reason: 'this worker is shutting down; reconnect' }));
      return true;
    }
    handler(req, res);
    return true;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (pathOf(req) !== this.webSocketPath) return false;
    if (this.draining) {
      const body = JSON.stringify({ error: errorBody(new KoboldError('KOBOLD_ERR_HUB_UNAVAILABLE', { reason: 'this worker is shutting down; reconnect' })) });
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
    return true;
  }

  /** Closes every client session with code 3000 (reconnect and resume elsewhere); waiting long-polls answer. */
  async drain(): Promise<void> {
    this.draining = true;
    await this.node.close({ closeBackend: false });
  }

  /** The browser client; `msgpack`: the build that also exports the MessagePack codec (4x the size). */
  private serveClient(req: IncomingMessage, res: ServerResponse, variant: 'json' | 'msgpack'): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: 'use GET for this endpoint' }));
      return;
    }
    let bundle = this.clientBundles.get(variant);
    if (bundle === undefined) {
      bundle = import('../client/build.js').then(({ bundleClient }) => bundleClient({ messagePack: variant === 'msgpack' }));
      this.clientBundles.set(variant, bundle);
    }
    bundle.then(
      (code) => {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'content-length': Buffer.byteLength(code), 'cache-control': 'no-cache' });
        res.end(req.method === 'HEAD' ? undefined : code);
      },
      (error: unknown) => {
        this.clientBundles.delete(variant);
        this.logger.error({ err: describeError(error) }, 'hub: could not build the browser client (is esbuild installed?)');
        sendError(res, new KoboldError('KOBOLD_ERR_HUB_INTERNAL'));
      },
    );
  }
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
