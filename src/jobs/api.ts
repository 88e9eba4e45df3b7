// The operations on runs that every trigger uses (HTTP, control socket, CLI, app code),
// and the HTTP handlers over them. The handlers take a `JobsApi`, not the dispatcher, so a
// web worker can serve them with an implementation that forwards to the `jobs` worker.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import createRouter, { type HTTPMethod } from 'find-my-way';
import type { Logger } from 'pino';
import { z } from 'zod';
import { KoboldError, isKoboldError } from '../errors.js';
import type { Dispatcher, EnqueueRequest, RunEvent } from './dispatcher.js';
import { finishedStates, isRunState, type RunState } from './states.js';
import type { LogLine, RunFilter, RunRecord, RunStore } from './store.js';

type MaybePromise<T> = T | Promise<T>;

/** A run's events while it is watched; `end` comes once, with the final record. */
export type WatchEvent = RunEvent | { type: 'end'; run: RunRecord };

export interface JobsApi {
  enqueue(request: EnqueueRequest): MaybePromise<{ run: RunRecord; created: boolean }>;
  list(filter?: RunFilter): MaybePromise<RunRecord[]>;
  show(id: number): MaybePromise<RunRecord>;
  logs(id: number, options?: { afterSeq?: number; limit?: number }): MaybePromise<LogLine[]>;
  cancel(id: number): MaybePromise<RunRecord>;
  retry(id: number): MaybePromise<RunRecord>;
  /**
   * Replays the run's kept lines, then streams its events until it ends (`end`, then no
   * more calls). Returns a function that stops watching. A remote implementation calls
   * `onError` if it loses the connection before the end.
   */
  watchRun(id: number, onEvent: (event: WatchEvent) => void, onError?: (error: Error) => void): MaybePromise<() => void>;
}

/**
 * The in-process implementation, for the `jobs` worker itself. It answers only with what is
 * committed: reads commit the turn's pending writes first, changes wait for their commit.
 */
export function createJobsApi(store: RunStore, dispatcher: Dispatcher): JobsApi {
  const durable = <T>(read: () => T): T => {
    store.commit();
    return read();
  };
  const committed = async <T>(change: () => T): Promise<T> => {
    const value = change();
    await store.committed();
    return value;
  };
  return {
    enqueue: (request) => dispatcher.enqueue(request),
    list: (filter) => durable(() => store.list(filter)),
    show: (id) => durable(() => store.require(id)),
    logs: (id, options) =>
      durable(() => {
        store.require(id);
        return store.logs(id, options);
      }),
    cancel: (id) => committed(() => dispatcher.cancel(id)),
    retry: (id) => committed(() => dispatcher.retry(id)),
    watchRun(id, onEvent) {
      // All synchronous: no event can slip between the replay and the subscription, and the
      // commit first delivers the events of pending writes to earlier watchers only.
      store.commit();
      const run = store.require(id);
      for (const line of store.logs(id, { limit: 10_000 })) onEvent({ type: 'log', line });
      if (isOver(run.state)) {
        onEvent({ type: 'end', run });
        return () => {};
      }
      onEvent({ type: 'state', run });
      const unsubscribe = dispatcher.subscribe(id, (event) => {
        onEvent(event);
        if (event.type === 'state' && isOver(event.run.state)) {
          unsubscribe();
          onEvent({ type: 'end', run: event.run });
        }
      });
      return unsubscribe;
    },
  };
}

/** Exit codes for `kobold run --wait`: 0 only when the run succeeded. */
export const runExitCodes: Record<RunState, number> = {
  succeeded: 0,
  failed: 1,
  interrupted: 75, // EX_TEMPFAIL: worth trying again
  timed_out: 124, // as timeout(1)
  cancelled: 130, // as a shell reports an interrupted command
  queued: 1,
  delayed: 1,
  running: 1,
};

function isOver(state: RunState): boolean {
  return finishedStates.includes(state);
}

// --- HTTP

export interface JobsHttpOptions {
  /** Keys accepted in `Authorization: Bearer KEY` or `X-API-Key`; none configured = every request refused. */
  apiKeys: readonly string[];
  maxBodyBytes?: number;
  /** Where unexpected errors (answered 500) are logged. */
  logger?: Pick<Logger, 'error'>;
}

export type JobsRouteHandler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string | undefined>) => Promise<void>;

const enqueueBody = z.strictObject({
  task: z.string().min(1),
  args: z.unknown().optional(),
  priority: z.number().int().optional(),
  runAt: z.union([z.number(), z.iso.datetime({ offset: true })]).optional(),
  delayMs: z.number().int().min(0).optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
});

/** The routes, for a router that calls `handler(req, res, params)` (the app's `HttpRoutes`). */
export function jobsRoutes(api: JobsApi, options: JobsHttpOptions): Array<{ method: 'GET' | 'POST'; path: string; handler: JobsRouteHandler }> {
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const keyDigests = options.apiKeys.map(digest);
  const guarded = (handle: (req: IncomingMessage, res: ServerResponse, params: Record<string, string | undefined>, query: URLSearchParams) => Promise<void>): JobsRouteHandler =>
    async (req, res, params) => {
      try {
        authorize(req, keyDigests);
        await handle(req, res, params, new URL(req.url ?? '/', 'http://localhost').searchParams);
      } catch (error) {
        if (!isKoboldError(error)) options.logger?.error({ err: error, url: req.url }, 'jobs API request failed');
        sendError(res, error);
      }
    };
  return [
    {
      method: 'POST',
      path: '/api/jobs',
      handler: guarded(async (req, res) => {
        const body = parseBody(enqueueBody, await readJson(req, maxBodyBytes));
        const headerKey = req.headers['idempotency-key'];
        const { runAt, idempotencyKey, ...rest } = body;
        const key = idempotencyKey ?? (typeof headerKey === 'string' ? headerKey : undefined);
        const { run, created } = await api.enqueue({
          ...rest,
          trigger: 'api',
          ...(runAt !== undefined && { runAt: typeof runAt === 'number' ? runAt : Date.parse(runAt) }),
          ...(key !== undefined && { idempotencyKey: key }),
        });
        sendJson(res, created ? 201 : 200, { run, created });
      }),
    },
    {
      method: 'GET',
      path: '/api/jobs',
      handler: guarded(async (_req, res, _params, query) => {
        const states = query.get('state')?.split(',').filter(Boolean);
        const bad = states?.find((state) => !isRunState(state));
        if (bad !== undefined) throw new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: `unknown state "${bad}"` });
        const limit = query.has('limit') ? positiveInteger(query.get('limit'), 'limit') : 50;
        const runs = await api.list({
          limit,
          ...(states && { states: states as RunState[] }),
          ...(query.has('task') && { task: query.get('task')! }),
          ...(query.has('before') && { beforeId: positiveInteger(query.get('before'), 'before') }),
        });
        sendJson(res, 200, { runs, next: runs.length === limit ? runs[runs.length - 1]!.id : null });
      }),
    },
    {
      method: 'GET',
      path: '/api/jobs/:id',
      handler: guarded(async (_req, res, params) => sendJson(res, 200, { run: await api.show(positiveInteger(params.id, 'run id')) })),
    },
    {
      method: 'GET',
      path: '/api/jobs/:id/logs',
      handler: guarded(async (req, res, params, query) => {
        const id = positiveInteger(params.id, 'run id');
        if (query.get('follow') === '1') return follow(api, id, req, res);
        const afterSeq = query.has('after') ? nonNegativeInteger(query.get('after'), 'after') : 0;
        const limit = query.has('limit') ? positiveInteger(query.get('limit'), 'limit') : 1000;
        sendJson(res, 200, { lines: await api.logs(id, { afterSeq, limit }) });
      }),
    },
    {
      method: 'POST',
      path: '/api/jobs/:id/cancel',
      handler: guarded(async (_req, res, params) => {
        const run = await api.cancel(positiveInteger(params.id, 'run id'));
        // A running run is still stopping: 202 says the cancel is under way.
        sendJson(res, run.state === 'cancelled' ? 200 : 202, { run });
      }),
    },
    {
      method: 'POST',
      path: '/api/jobs/:id/retry',
      handler: guarded(async (_req, res, params) => sendJson(res, 200, { run: await api.retry(positiveInteger(params.id, 'run id')) })),
    },
  ];
}

/**
 * One `(req, res)` handler for all the routes. It answers at once whether the request is a
 * jobs route (false: leave it to others), and then answers the request itself; every route
 * handles its own errors.
 */
export function createJobsHttpHandler(api: JobsApi, options: JobsHttpOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const router = createRouter({ ignoreTrailingSlash: true });
  for (const route of jobsRoutes(api, options)) router.on(route.method, route.path, route.handler);
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const found = router.find(req.method as HTTPMethod, path);
    if (!found) return false;
    void found.handler(req, res, found.params, found.store, {});
    return true;
  };
}

/** Streams the run's lines and state changes as JSON lines until it ends. */
async function follow(api: JobsApi, id: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await api.show(id); // a 404 before the stream starts
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  const stop = await api.watchRun(
    id,
    (event) => {
      res.write(`${JSON.stringify(event)}\n`);
      if (event.type === 'end') res.end();
    },
    () => res.destroy(),
  );
  req.once('close', stop);
}

function authorize(req: IncomingMessage, keyDigests: Buffer[]): void {
  if (keyDigests.length === 0) throw new KoboldError('KOBOLD_ERR_UNAUTHORIZED', { reason: 'no API key is configured for the jobs API' });
  const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const header = req.headers['x-api-key'];
  const given = bearer ?? (typeof header === 'string' ? header : undefined);
  if (given === undefined) throw new KoboldError('KOBOLD_ERR_UNAUTHORIZED', { reason: 'missing API key (Authorization: Bearer KEY or X-API-Key)' });
  const candidate = digest(given);
  if (!keyDigests.some((key) => timingSafeEqual(key, candidate))) throw new KoboldError('KOBOLD_ERR_UNAUTHORIZED', { reason: 'wrong API key' });
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new KoboldError('KOBOLD_ERR_BODY_TOO_LARGE', { limit });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  } catch (error) {
    throw new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: `the body is not JSON: ${(error as Error).message}` });
  }
}

function parseBody<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: z.prettifyError(parsed.error) });
}

function positiveInteger(value: string | null | undefined, name: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1) throw new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: `${name} must be a positive integer` });
  return number;
}

function nonNegativeInteger(value: string | null, name: string): number {
  return value === '0' ? 0 : positiveInteger(value, name);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const known = isKoboldError(error) ? error : new KoboldError('KOBOLD_ERR_INTERNAL', {}, { cause: error });
  if (known.code === 'KOBOLD_ERR_JOBS_QUEUE_FULL') res.setHeader('retry-after', '1');
  sendJson(res, known.status ?? 500, { error: known.toJSON() });
}
