// The jobs API over a UNIX socket (`<runDir>/jobs-api.sock`, mode 0600): how the CLI, the
// apps' `ctx.jobs` and the web workers' HTTP API reach the `jobs` worker. One JSON object
// per line; requests carry `seq`, replies and watch events carry `ack`. The server side
// lives here; `api-client.ts` is the other side.

import { createServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { z } from 'zod';
import { isKoboldError, KoboldError, type ErrorCode, type ErrorParams } from '../errors.js';
import type { JobsApi, WatchEvent } from './api.js';
import type { EnqueueRequest } from './dispatcher.js';
import { runStates } from './states.js';
import type { RunFilter } from './store.js';
import { listenUnix } from '../ipc/unix-socket.js';
import { WireConnection } from './wire.js';

/** Client -> jobs worker. `watch` answers with `event`s until the run ends (or `unwatch`). */
export type ApiRequest =
  | { kind: 'enqueue'; seq: number; request: EnqueueRequest }
  | { kind: 'list'; seq: number; filter?: RunFilter }
  | { kind: 'show' | 'cancel' | 'retry' | 'watch'; seq: number; id: number }
  | { kind: 'logs'; seq: number; id: number; afterSeq?: number; limit?: number }
  | { kind: 'unwatch'; seq: number; watch: number };

export interface WireError {
  code: string;
  message: string;
  params?: ErrorParams;
}

/** Jobs worker -> client. */
export type ApiReply =
  | { kind: 'reply'; ack: number; ok: true; value: unknown }
  | { kind: 'reply'; ack: number; ok: false; error: WireError }
  | { kind: 'event'; ack: number; event: WatchEvent };

const seq = z.number().int().min(0);
const id = z.number().int().min(1);
const requestSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('enqueue'),
    seq,
    request: z.strictObject({
      task: z.string().min(1),
      args: z.unknown().optional(),
      priority: z.number().int().optional(),
      runAt: z.number().optional(),
      delayMs: z.number().min(0).optional(),
      idempotencyKey: z.string().optional(),
      trigger: z.string().min(1).max(50).optional(),
    }),
  }),
  z.object({
    kind: z.literal('list'),
    seq,
    filter: z
      .strictObject({ states: z.array(z.enum(runStates)).optional(), task: z.string().optional(), beforeId: id.optional(), limit: z.number().int().min(1).max(10_000).optional() })
      .optional(),
  }),
  z.object({ kind: z.enum(['show', 'cancel', 'retry', 'watch']), seq, id }),
  z.object({ kind: z.literal('logs'), seq, id, afterSeq: z.number().int().min(0).optional(), limit: z.number().int().min(1).max(10_000).optional() }),
  z.object({ kind: z.literal('unwatch'), seq, watch: seq }),
]);

export interface JobsApiServer {
  /** Stops listening and drops every connection (their watches end). */
  close(): Promise<void>;
}

export interface JobsApiServerOptions {
  socketPath: string;
  maxMessageBytes: number;
  logger: Pick<Logger, 'error'>;
}

export async function serveJobsApi(api: JobsApi, options: JobsApiServerOptions): Promise<JobsApiServer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveConnection(api, socket, options);
  });
  await listenUnix(server, options.socketPath);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function serveConnection(api: JobsApi, socket: Socket, options: JobsApiServerOptions): void {
  const watches = new Map<number, () => void>();
  const wire: WireConnection<ApiRequest, ApiReply> = new WireConnection(socket, options, {
    message: (message) => void answer(message),
    close: () => {
      for (const stop of watches.values()) stop();
      watches.clear();
    },
  });

  async function answer(message: unknown): Promise<void> {
    const ack = typeof (message as { seq?: unknown }).seq === 'number' ? (message as { seq: number }).seq : 0;
    try {
      const parsed = requestSchema.safeParse(message);
      if (!parsed.success) throw new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: z.prettifyError(parsed.error) });
      wire.send({ kind: 'reply', ack, ok: true, value: (await perform(parsed.data as ApiRequest)) ?? null });
    } catch (error) {
      if (!isKoboldError(error)) options.logger.error({ err: error }, 'jobs API request failed');
      wire.send({ kind: 'reply', ack, ok: false, error: toWireError(error) });
    }
  }

  async function perform(request: ApiRequest): Promise<unknown> {
    switch (request.kind) {
      case 'enqueue':
        return api.enqueue(request.request);
      case 'list':
        return api.list(request.filter);
      case 'show':
        return api.show(request.id);
      case 'logs':
        return api.logs(request.id, { ...(request.afterSeq !== undefined && { afterSeq: request.afterSeq }), ...(request.limit !== undefined && { limit: request.limit }) });
      case 'cancel':
        return api.cancel(request.id);
      case 'retry':
        return api.retry(request.id);
      case 'watch': {
        let ended = false;
        const stop = await api.watchRun(request.id, (event) => {
          wire.send({ kind: 'event', ack: request.seq, event });
          if (event.type === 'end') {
            ended = true;
            watches.delete(request.seq);
          }
        });
        if (ended || !wire.isOpen) stop();
        else watches.set(request.seq, stop);
        return null;
      }
      case 'unwatch':
        watches.get(request.watch)?.();
        watches.delete(request.watch);
        return null;
    }
  }
}

export function toWireError(error: unknown): WireError {
  if (isKoboldError(error)) return { code: error.code, message: error.message, params: error.params };
  return { code: 'KOBOLD_ERR_INTERNAL', message: 'internal error' };
}

/** The error a reply carried, as the KoboldError the server threw. */
export function fromWireError(error: WireError): KoboldError {
  try {
    return new KoboldError(error.code as ErrorCode, error.params ?? {});
  } catch {
    return new KoboldError('KOBOLD_ERR_INTERNAL'); // a code this build does not know
  }
}
