import type { IncomingMessage, ServerResponse } from 'node:http';
import createRouter, { type HTTPMethod } from 'find-my-way';
import type { HttpConfig } from '../config/schema.js';
import { readBody, readJson, readMultipart, type MultipartHandlers, type MultipartLimits } from './body.js';

export type RouteParams = Record<string, string | undefined>;
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: RouteParams) => unknown;
/** Any Node `(req, res)` handler: an Express, Fastify (`server.routing`) or Hono (node adapter) app. */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** What `dispatch` returns when no route or mount of this app answers the request. */
export const NOT_HANDLED = Symbol('not handled');

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** The routes of one app instance, under its path prefix, and helpers that apply the service's limits. */
export class HttpRoutes {
  private readonly router = createRouter({ ignoreTrailingSlash: true, maxParamLength: 500 });
  private mounted: NodeHandler | null = null;

  constructor(
    private readonly prefix: string,
    private readonly limits: HttpConfig,
  ) {}

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

  /** The whole body; 413 past `limitBytes` (default: the service's `http.maxBodyBytes`). */
  body(req: IncomingMessage, limitBytes = this.limits.maxBodyBytes): Promise<Buffer> {
    return readBody(req, limitBytes);
  }

  /** The body parsed as JSON; 400 for malformed JSON, 413 past the limit. */
  json(req: IncomingMessage, limitBytes = this.limits.maxBodyBytes): Promise<unknown> {
    return readJson(req, limitBytes);
  }

  /** Streams a multipart upload to `handlers`; 413 past the service's file/field limits. */
  multipart(req: IncomingMessage, handlers: MultipartHandlers, limits: Partial<MultipartLimits> = {}): Promise<void> {
    return readMultipart(req, { maxFileBytes: this.limits.maxFileBytes, maxFiles: this.limits.maxFiles, maxFields: this.limits.maxFields, ...limits }, handlers);
  }

  /** Sends `value` as JSON with `status`. */
  send(res: ServerResponse, status: number, value: unknown): void {
    const body = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

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
