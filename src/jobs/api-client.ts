// The client side of the jobs API socket: a `JobsApi` that forwards every call to the
// `jobs` worker. Web workers serve the HTTP API with it, apps get it as `ctx.jobs`, the CLI
// uses it. It connects on first use and again after the jobs worker restarted.

import { KoboldError } from '../errors.js';
import type { JobsApi, WatchEvent } from './api.js';
import { fromWireError, type ApiReply, type ApiRequest } from './api-socket.js';
import type { EnqueueRequest } from './dispatcher.js';
import type { LogLine, RunFilter, RunRecord } from './store.js';
import { connectWithRetry } from '../ipc/unix-socket.js';
import { WireConnection } from './wire.js';

export interface JobsApiClientOptions {
  /** How long to keep trying while the jobs worker is not listening yet (it starts, or restarts). */
  connectTimeoutMs?: number;
  /** A request without an answer by then fails (watches excepted). */
  requestTimeoutMs?: number;
  maxMessageBytes?: number;
}

type Request = ApiRequest extends infer R ? (R extends unknown ? Omit<R, 'seq'> : never) : never;

interface Pending {
  resolve(value: unknown): void;
  reject(error: KoboldError): void;
  timer: NodeJS.Timeout | undefined;
}

interface Watcher {
  onEvent(event: WatchEvent): void;
  onError?(error: KoboldError): void;
}

export class JobsApiClient implements JobsApi {
  private connection: Promise<WireConnection<ApiReply, ApiRequest>> | undefined;
  private current: WireConnection<ApiReply, ApiRequest> | undefined;
  private nextSeq = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly watchers = new Map<number, Watcher>();
  private readonly settings: Required<JobsApiClientOptions>;

  constructor(
    readonly socketPath: string,
    options: JobsApiClientOptions = {},
  ) {
    this.settings = { connectTimeoutMs: 5_000, requestTimeoutMs: 30_000, maxMessageBytes: 8 * 1024 * 1024, ...options };
  }

  enqueue(request: EnqueueRequest): Promise<{ run: RunRecord; created: boolean }> {
    return this.request({ kind: 'enqueue', request });
  }

  list(filter?: RunFilter): Promise<RunRecord[]> {
    return this.request({ kind: 'list', ...(filter && { filter }) });
  }

  show(id: number): Promise<RunRecord> {
    return this.request({ kind: 'show', id });
  }

  logs(id: number, options: { afterSeq?: number; limit?: number } = {}): Promise<LogLine[]> {
    return this.request({ kind: 'logs', id, ...options });
  }

  cancel(id: number): Promise<RunRecord> {
    return this.request({ kind: 'cancel', id });
  }

  retry(id: number): Promise<RunRecord> {
    return this.request({ kind: 'retry', id });
  }

  /** `onError` hears when the connection to the jobs worker is lost before the run ended. */
  async watchRun(id: number, onEvent: (event: WatchEvent) => void, onError?: (error: KoboldError) => void): Promise<() => void> {
    let seq = 0;
    await this.request({ kind: 'watch', id }, (assigned) => {
      seq = assigned;
      this.watchers.set(seq, {
        onEvent: (event) => {
          if (event.type === 'end') this.watchers.delete(seq);
          onEvent(event);
        },
        ...(onError && { onError }),
      });
    }).catch((error: unknown) => {
      this.watchers.delete(seq);
      throw error;
    });
    return () => {
      if (!this.watchers.delete(seq)) return;
      void this.request({ kind: 'unwatch', watch: seq }).catch(() => {});
    };
  }

  /** Drops the connection; pending calls fail. */
  close(): void {
    void this.connection?.then(
      (wire) => wire.socket.destroy(),
      () => {},
    );
  }

  private async request<T>(message: Request, beforeSend?: (seq: number) => void): Promise<T> {
    const wire = await this.connect();
    const seq = this.nextSeq++;
    beforeSend?.(seq);
    return new Promise<T>((resolve, reject) => {
      const timer =
        message.kind === 'watch' || message.kind === 'unwatch'
          ? undefined
          : setTimeout(() => {
              this.pending.delete(seq);
              reject(this.unavailable(`no answer within ${this.settings.requestTimeoutMs} ms`));
            }, this.settings.requestTimeoutMs);
      this.pending.set(seq, { resolve: resolve as (value: unknown) => void, reject, timer });
      wire.send({ ...message, seq } as ApiRequest);
    });
  }

  private connect(): Promise<WireConnection<ApiReply, ApiRequest>> {
    this.connection ??= connectWithRetry(this.socketPath, this.settings.connectTimeoutMs).then(
      (socket) => {
        const wire: WireConnection<ApiReply, ApiRequest> = new WireConnection(socket, this.settings, {
          message: (reply) => this.receive(reply),
          close: (error) => this.lost(wire, error?.message ?? 'the connection closed'),
        });
        this.current = wire;
        return wire;
      },
      (error: unknown) => {
        this.connection = undefined;
        throw this.unavailable((error as Error).message);
      },
    );
    return this.connection;
  }

  private receive(reply: ApiReply): void {
    if (reply.kind === 'event') {
      this.watchers.get(reply.ack)?.onEvent(reply.event);
      return;
    }
    const pending = this.pending.get(reply.ack);
    if (!pending) return;
    this.pending.delete(reply.ack);
    clearTimeout(pending.timer);
    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(fromWireError(reply.error));
  }

  private lost(wire: WireConnection<ApiReply, ApiRequest>, reason: string): void {
    if (this.current === wire) {
      this.current = undefined;
      this.connection = undefined;
    }
    const error = this.unavailable(reason);
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.pending.clear();
    for (const watcher of this.watchers.values()) watcher.onError?.(error);
    this.watchers.clear();
  }

  private unavailable(reason: string): KoboldError {
    return new KoboldError('KOBOLD_ERR_JOBS_UNAVAILABLE', { socket: this.socketPath, reason });
  }
}
