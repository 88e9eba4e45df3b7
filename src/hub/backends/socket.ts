// A web worker's end of the hub log (one host): publications, history and presence go
// to the log server (log-server.ts) over a UNIX socket; the log comes back on it.
// Reconnects when the writer restarts; a restarted writer has new epochs, which clients
// see as "history lost" and resync.
import { connect, type Socket } from 'node:net';
import pino, { type Logger } from 'pino';
import { describeError, type ErrorCode, KoboldError } from '../../errors.js';
import type { LogRequest } from '../log-server.js';
import type { RingInfo } from '../ring-log.js';
import { BatchWriter } from '../turn.js';
import type {
  Closer,
  HistoryQuery,
  HistoryResult,
  HubBackend,
  PresenceCounts,
  PresenceEntry,
  PresenceEvent,
  PresenceUser,
  Publication,
  PublishOptions,
  ReconnectNotifier,
  StreamPosition,
  Unsubscribe,
} from '../types.js';
import { DEFAULT_MAX_FRAME_BYTES, encodePublish, encodeSequenced, type Frame, FrameDecoder, FrameKind } from '../wire.js';

export interface ConnectHubOptions {
  socketPath: string;
  logger?: Logger;
  /** A request not answered within this fails with KOBOLD_ERR_HUB_TIMEOUT (also while reconnecting). */
  requestTimeoutMs?: number;
  /** start() gives up when the writer does not answer within this (startOrKeepTrying() goes on without it). */
  connectTimeoutMs?: number;
  /** Reconnect delays double from the first to the second, with jitter. */
  reconnectDelayMs?: readonly [number, number];
  maxFrameBytes?: number;
  /** Requests sent first on every connection (unanswered), chosen from the writer's hello. */
  greeting?: (hello: WriterHello) => readonly LogRequest[];
}

/** What the log server says first on every connection (log-server.ts). */
export interface WriterHello {
  /** Changes on every start of the writer. */
  readonly instance: string;
  /** Present when the writer also writes the log to a shared-memory ring (the `shm` backend). */
  readonly ring?: RingInfo;
}

interface Pending {
  readonly op: string;
  readonly frame: Buffer;
  /** Publishes are not repeated after a lost connection: the writer may have applied them. */
  readonly idempotent: boolean;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class SocketBackend implements HubBackend, Closer, ReconnectNotifier {
  private socket: Socket | null = null;
  private writer: BatchWriter | null = null;
  private ready = false;
  private closed = false;
  private attempts = 0;
  private connectedOnce = false;
  private seq = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Sent, waiting for an answer. */
  private readonly inFlight = new Map<number, Pending>();
  /** Waiting for a connection. */
  private queued: { seq: number; pending: Pending }[] = [];
  /** Presence this worker holds, re-added after a reconnect. */
  private readonly presenceHeld = new Map<string, { channel: string; entry: PresenceEntry }>();
  private readonly publicationListeners = new Set<(publication: Publication) => void>();
  private readonly presenceListeners = new Set<(event: PresenceEvent) => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private readonly logger: Logger;
  private readonly requestTimeoutMs: number;
  private readonly delays: readonly [number, number];
  /** Until the first greeting or the start's deadline: how start() ends. */
  private firstConnect: { resolve: (greeted: boolean) => void; reject: (error: Error) => void; deadline: number; keepTrying: boolean } | null = null;
  private lastHello: WriterHello = { instance: '' };

  constructor(private readonly options: ConnectHubOptions) {
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.delays = options.reconnectDelayMs ?? [50, 2000];
  }

  /** The current (or last) writer's hello. */
  get hello(): WriterHello {
    return this.lastHello;
  }

  /** Whether the log server is connected now (requests made meanwhile wait for it). */
  get connected(): boolean {
    return this.ready;
  }

  /** Resolves once the writer greeted us; rejects after connectTimeoutMs of failed attempts. */
  async start(): Promise<void> {
    await this.begin(false);
  }

  /**
   * Like start(), but after connectTimeoutMs without a writer resolves false and goes on
   * trying: requests wait for it (each up to requestTimeoutMs), and reconnect listeners hear
   * when it greets.
   */
  startOrKeepTrying(): Promise<boolean> {
    return this.begin(true);
  }

  private begin(keepTrying: boolean): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject, deadline: Date.now() + (this.options.connectTimeoutMs ?? 10_000), keepTrying };
      this.dial();
    });
  }

  publish(channel: string, data: string, options: PublishOptions = {}): Promise<StreamPosition> {
    const info = options.info === undefined ? '' : JSON.stringify(options.info);
    return this.send('publish', (seq) => encodePublish(seq, channel, data, info), false) as Promise<StreamPosition>;
  }

  history(channel: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    return this.request({ op: 'history', channel, limit: query.limit, since: query.since }) as Promise<HistoryResult>;
  }

  onPublication(listener: (publication: Publication) => void): Unsubscribe {
    this.publicationListeners.add(listener);
    return () => this.publicationListeners.delete(listener);
  }

  async addPresence(channel: string, entry: PresenceEntry): Promise<void> {
    this.presenceHeld.set(channel + '\n' + entry.clientId, { channel, entry });
    await this.request({ op: 'addPresence', channel, entry });
  }

  async removePresence(channel: string, clientId: string): Promise<void> {
    this.presenceHeld.delete(channel + '\n' + clientId);
    await this.request({ op: 'removePresence', channel, clientId });
  }

  presence(channel: string): Promise<PresenceUser[]> {
    return this.request({ op: 'presence', channel }) as Promise<PresenceUser[]>;
  }

  presenceCounts(channel: string): Promise<PresenceCounts> {
    return this.request({ op: 'presenceCounts', channel }) as Promise<PresenceCounts>;
  }

  onPresence(listener: (event: PresenceEvent) => void): Unsubscribe {
    this.presenceListeners.add(listener);
    return () => this.presenceListeners.delete(listener);
  }

  onReconnect(listener: () => void): Unsubscribe {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    const error = new KoboldError('KOBOLD_ERR_HUB_UNAVAILABLE', { reason: 'the hub connection was closed' });
    for (const pending of this.inFlight.values()) this.settle(pending, error);
    for (const { pending } of this.queued) this.settle(pending, error);
    this.inFlight.clear();
    this.queued = [];
    this.writer?.flush();
    this.socket?.end();
    this.socket?.destroy();
  }

  private request(request: LogRequest): Promise<unknown> {
    return this.send(request.op, (seq) => encodeSequenced(FrameKind.request, seq, JSON.stringify(request)), true);
  }

  private send(op: string, encode: (seq: number) => Buffer, idempotent: boolean): Promise<unknown> {
    if (this.closed) return Promise.reject(new KoboldError('KOBOLD_ERR_HUB_UNAVAILABLE', { reason: 'the hub connection was closed' }));
    this.seq = (this.seq + 1) >>> 0 || 1; // 0 is for requests nobody waits on
    const seq = this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.inFlight.delete(seq);
        this.queued = this.queued.filter((item) => item.seq !== seq);
        reject(new KoboldError('KOBOLD_ERR_HUB_TIMEOUT', { op, timeoutMs: this.requestTimeoutMs }));
      }, this.requestTimeoutMs);
      const pending: Pending = { op, frame: encode(seq), idempotent, resolve, reject, timer };
      if (this.ready) this.transmit(seq, pending);
      else this.queued.push({ seq, pending });
    });
  }

  private transmit(seq: number, pending: Pending): void {
    this.inFlight.set(seq, pending);
    this.writer!.push(pending.frame);
  }

  private settle(pending: Pending, outcome: Error | { value: unknown }): void {
    clearTimeout(pending.timer);
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome.value);
  }

  private dial(): void {
    const socket = connect(this.options.socketPath);
    const decoder = new FrameDecoder(this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.socket = socket;
    this.writer = new BatchWriter((chunk) => {
      if (!socket.destroyed) socket.write(chunk);
    });
    socket.on('data', (chunk) => {
      try {
        for (const frame of decoder.push(chunk)) this.handle(frame);
      } catch (error) {
        this.logger.warn({ err: describeError(error) }, 'hub: bad bytes from the log server; reconnecting');
        socket.destroy();
      }
    });
    socket.on('error', (error) => this.logger.debug({ err: describeError(error) }, 'hub: log server connection error'));
    socket.on('close', () => this.lost(socket));
  }

  private handle(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.hello:
        this.lastHello = JSON.parse(frame.json) as WriterHello;
        return this.greeted();
      case FrameKind.publication:
        for (const listener of this.publicationListeners) listener(frame.publication);
        return;
      case FrameKind.presence: {
        const event = JSON.parse(frame.json) as PresenceEvent;
        for (const listener of this.presenceListeners) listener(event);
        return;
      }
      case FrameKind.position:
        return this.answer(frame.seq, { value: { offset: frame.offset, epoch: frame.epoch } });
      case FrameKind.reply:
        return this.answer(frame.seq, { value: JSON.parse(frame.json) });
      case FrameKind.failure: {
        const { code, params } = JSON.parse(frame.json) as { code: ErrorCode; params: Record<string, string> };
        return this.answer(frame.seq, new KoboldError(code, params));
      }
      default:
        throw new KoboldError('KOBOLD_ERR_HUB_WIRE', { reason: `the log server may not send frame kind ${frame.kind}` });
    }
  }

  private answer(seq: number, outcome: Error | { value: unknown }): void {
    const pending = this.inFlight.get(seq);
    if (pending === undefined) return;
    this.inFlight.delete(seq);
    this.settle(pending, outcome);
  }

  private greeted(): void {
    this.ready = true;
    this.attempts = 0;
    for (const request of this.options.greeting?.(this.lastHello) ?? []) {
      this.writer!.push(encodeSequenced(FrameKind.request, 0, JSON.stringify(request)));
    }
    for (const { channel, entry } of this.presenceHeld.values()) {
      this.writer!.push(encodeSequenced(FrameKind.request, 0, JSON.stringify({ op: 'addPresence', channel, entry })));
    }
    const queued = this.queued;
    this.queued = [];
    for (const { seq, pending } of queued) this.transmit(seq, pending);
    if (this.firstConnect !== null) {
      this.firstConnect.resolve(true);
      this.firstConnect = null;
    } else {
      // A writer after the start: one again, or the first one of a start that went on without it.
      this.logger.info(this.connectedOnce ? 'hub: reconnected to the log server' : 'hub: connected to the log server');
      for (const listener of this.reconnectListeners) listener();
    }
    this.connectedOnce = true;
  }

  private lost(socket: Socket): void {
    if (socket !== this.socket) return;
    this.ready = false;
    this.writer?.clear();
    const resend: { seq: number; pending: Pending }[] = [];
    for (const [seq, pending] of this.inFlight) {
      if (pending.idempotent) resend.push({ seq, pending });
      else this.settle(pending, new KoboldError('KOBOLD_ERR_HUB_UNAVAILABLE', { reason: `connection lost during ${pending.op}` }));
    }
    this.inFlight.clear();
    this.queued = [...resend, ...this.queued]; // sent first, so they go first again
    if (this.closed) return;
    if (this.firstConnect !== null && Date.now() > this.firstConnect.deadline) {
      const { keepTrying, resolve, reject } = this.firstConnect;
      this.firstConnect = null;
      if (keepTrying) {
        resolve(false);
      } else {
        reject(new KoboldError('KOBOLD_ERR_HUB_UNAVAILABLE', { reason: `no log server at ${this.options.socketPath}` }));
        void this.close();
        return;
      }
    }
    const [min, max] = this.delays;
    const delay = Math.min(max, min * 2 ** this.attempts++) * (0.5 + Math.random() / 2);
    if (this.connectedOnce && this.attempts === 1) this.logger.warn('hub: lost the log server; reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.dial();
    }, delay);
  }
}

/** Connects a web worker to the hub's log server; resolves once connected. */
export async function connectHub(options: ConnectHubOptions): Promise<SocketBackend> {
  const backend = new SocketBackend(options);
  await backend.start();
  return backend;
}
