import type { IncomingMessage, ServerResponse } from 'node:http';
import createRouter, { type HTTPMethod } from 'find-my-way';

export type RouteParams = Record<string, string | undefined>;
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: RouteParams) => unknown;
/** Any Node `(req, res)` handler: an Express, Fastify (`server.routing`) or Hono (node adapter) app. */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** What `dispatch` returns when no route or mount of this app answers the request. */
export const NOT_HANDLED = Symbol('not handled');

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** The routes of one app instance, under its path prefix. */
export class HttpRoutes {
  private readonly router = createRouter({ ignoreTrailingSlash: true, maxParamLength: 500 });
  private mounted: NodeHandler | null = null;

  constructor(private readonly prefix: string) {}

  route(method: string | string[], path: string, handler: RouteHandler): void {
    const full = this.prefix === '/' ? path : path === '/' ? this.prefix : this.prefix + path;
    this.router.on(method as HTTPMethod | HTTPMethod[], full, (req, res, params) => handler(req, res, params));
  }
  get(path: string, handler: RouteHandler): void { this.route('GET', path, handler); }
  post(path: string, handler: RouteHandler): void { this.route('POST', path, handler); }
  put(path: string, handler: RouteHandler): void { this.route('PUT', path, handler); }
  patch(path: string, handler: RouteHandler): void { this.route('PATCH', path, handler); }
  delete(path: string, handler: RouteHandler): void { this.route('DELETE', path, handler); }
  all(path: string, handler: RouteHandler): void { this.route([...METHODS], path, handler); }

  /** Hands every request no route matched to `handler`, with the prefix cut from `req.url`. */
  mount(handler: NodeHandler): void {
    this.mounted = handler;
  }

  /** Runs the matching handler and returns what it returned, or NOT_HANDLED. */
  dispatch(req: IncomingMessage, res: ServerResponse): unknown {
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    const found = this.router.find(req.method as HTTPMethod, path);
    if (found !== null) return found.handler(req, res, found.params, found.store, {});
    if (this.mounted === null) return NOT_HANDLED;
    if (this.prefix !== '/') req.url = url.slice(this.prefix.length) || '/';
    return this.mounted(req, res);
  }
}
