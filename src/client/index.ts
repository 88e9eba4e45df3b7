// Kobold hub client for browsers and Node: picks the best transport that works
// (WebSocket -> SSE -> long-polling -> refresh), reconnects with backoff and jitter, and
// resumes every channel from its last offset so nothing is lost within the history window.
import { shouldReconnect } from '../hub/disconnect.js';
import { PollingClientTransport } from './transports/polling.js';
import { SseClientTransport } from './transports/sse.js';
import { type MessagePackCodec, type WebSocketConstructor, WebSocketClientTransport } from './transports/websocket.js';
import {
  type ClientPublication,
  type ClientTransport,
  type ClientTransportName,
  type HistoryAnswer,
  HubClientError,
  type ServerError,
  type StreamPosition,
  type TransportContext,
  type TransportEvents,
} from './types.js';

export { HubClientError, type ClientPublication, type ClientTransportName, type HistoryAnswer, type StreamPosition };
export type { MessagePackCodec, WebSocketConstructor, WebSocketLike } from './transports/websocket.js';

export interface HubClientOptions {
  /** The hub's HTTP base, e.g. `https://example.com/hub` (the WebSocket URL is derived from it). */
  url: string;
  /** A token, or a function returning a fresh one (called on every (re)connect). */
  token?: string | (() => Promise<string | undefined> | string | undefined);
  /** Transports to try, best first. Default: all four. */
  transports?: ClientTransportName[];
  /** Default: globalThis.WebSocket (browsers, Node >= 22); pass `ws`'s WebSocket in older Node. */
  WebSocket?: WebSocketConstructor;
  /**
   * Speak MessagePack over WebSocket: pass `messagePack` from `src/client/msgpack.ts` (or the
   * bundle built with `messagePack: true`). SSE, long-polling and refresh stay JSON. It is not
   * part of this module so that clients without it do not carry msgpackr.
   */
  messagePack?: MessagePackCodec;
  fetch?: typeof fetch;
  /** Reconnect delay doubles from min to max; each wait is randomized (jitter). */
  backoffMs?: { min: number; max: number };
  openTimeoutMs?: number;
  /** Refresh mode's polling period. */
  refreshIntervalMs?: number;
}

export type ClientState = 'disconnected' | 'connecting' | 'connected' | 'closed';

export interface ClientEvents {
  state: (state: ClientState) => void;
  /** The channel's history was lost (e.g. the server restarted): reload its state from your source of truth. */
  resync: (channel: string, answer: HistoryAnswer) => void;
  join: (channel: string, user: { userId: string; info?: Record<string, unknown> }) => void;
  leave: (channel: string, user: { userId: string; info?: Record<string, unknown> }) => void;
  /**
   * A channel was refused (forbidden, unknown…); its subscription is dropped. A refusal
   * because the hub writer did not answer for a moment (`KOBOLD_ERR_HUB_UNAVAILABLE` or
   * `KOBOLD_ERR_HUB_TIMEOUT`, e.g. while it is replaced) is not reported: the client tries
   * the channel again with backoff.
   */
  error: (channel: string, error: ServerError) => void;
  /** The server said not to reconnect (codes 3500–3999). */
  disconnect: (code: number, reason: string) => void;
}

interface ChannelState {
  readonly handlers: Set<(publication: ClientPublication) => void>;
  last?: StreamPosition;
  recovering: boolean;
  /** Set while the channel waits to be tried again after the hub was unavailable. */
  retryTimer?: ReturnType<typeof setTimeout>;
  retries: number;
}

/** The server could not reach the hub writer for the moment (HTTP 503): worth trying again. */
const HUB_NOT_ANSWERING = new Set(['KOBOLD_ERR_HUB_UNAVAILABLE', 'KOBOLD_ERR_HUB_TIMEOUT']);

const ALL_TRANSPORTS: ClientTransportName[] = ['websocket', 'sse', 'longpoll', 'refresh'];

export class HubClient {
  private readonly channels = new Map<string, ChannelState>();
  private readonly listeners: { [K in keyof ClientEvents]: Set<ClientEvents[K]> } = {
    state: new Set(),
    resync: new Set(),
    join: new Set(),
    leave: new Set(),
    error: new Set(),
    disconnect: new Set(),
  };
  private active: ClientTransport | null = null;
  private preferred = 0;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private currentState: ClientState = 'disconnected';
  private readonly order: ClientTransportName[];
  private readonly context: TransportContext;
  private connectedWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(private readonly options: HubClientOptions) {
    this.order = options.transports ?? ALL_TRANSPORTS;
    const token = options.token;
    const events: TransportEvents = {
      publication: (publication) => this.receive(publication),
      caughtUp: (channel, answer) => this.caughtUp(channel, answer),
      gap: (channel) => this.recover(channel),
      presence: (type, channel, user) => this.emit(type, channel, user),
      channelError: (channel, error) => {
        const state = this.channels.get(channel);
        if (state === undefined) return;
        if (HUB_NOT_ANSWERING.has(error.code)) return this.retryChannel(channel, state);
        this.dropChannel(channel, state);
        this.emit('error', channel, error);
      },
      closed: (code, reason) => this.transportClosed(code, reason),
    };
    this.context = {
      baseUrl: options.url.replace(/\/$/, ''),
      token: async () => (typeof token === 'function' ? ((await token()) ?? undefined) : token),
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      events,
      // A channel waiting to be tried again stays out until its timer: a poll would be refused at once, over and over.
      positions: () => new Map([...this.channels].filter(([, state]) => state.retryTimer === undefined).map(([channel, state]) => [channel, state.last])),
      openTimeoutMs: options.openTimeoutMs ?? 5000,
    };
  }

  /** The transport in use, or null while disconnected. */
  get transport(): ClientTransportName | null {
    return this.active?.name ?? null;
  }

  get state(): ClientState {
    return this.currentState;
  }

  /**
   * Connects (falling back through the transports); resolves once connected, with the
   * channels subscribed so far in place. Rejects (HubClientError `CLOSED`) when close() comes first.
   */
  connect(): Promise<void> {
    if (this.currentState === 'connected') return Promise.resolve();
    const connected = new Promise<void>((resolve, reject) => this.connectedWaiters.push({ resolve, reject }));
    if (this.currentState === 'disconnected' || this.currentState === 'closed') void this.establish();
    return connected;
  }

  /**
   * Calls `handler` for each publication on `channel`, in offset order, each once. With
   * `since`, starts after that position (e.g. one saved before a page reload).
   */
  subscribe(channel: string, handler: (publication: ClientPublication) => void, options: { since?: StreamPosition } = {}): { unsubscribe(): void } {
    let state = this.channels.get(channel);
    const isNew = state === undefined;
    if (state === undefined) this.channels.set(channel, (state = { handlers: new Set(), last: options.since, recovering: false, retries: 0 }));
    state.handlers.add(handler);
    if (isNew) this.active?.resync();
    return {
      unsubscribe: () => {
        const current = this.channels.get(channel);
        if (current === undefined) return;
        current.handlers.delete(handler);
        if (current.handlers.size > 0) return;
        this.dropChannel(channel, current);
        this.active?.resync();
      },
    };
  }

  /** Where the client stands on a channel (save it to resume after a reload). */
  position(channel: string): StreamPosition | undefined {
    return this.channels.get(channel)?.last;
  }

  publish(channel: string, data: unknown): Promise<StreamPosition> {
    return this.command('publish', { channel, data });
  }

  presence(channel: string): Promise<{ users: { userId: string; info?: Record<string, unknown>; connections: number }[]; counts: { clients: number; users: number } }> {
    return this.command('presence', { channel });
  }

  history(channel: string, query: { limit?: number; since?: StreamPosition } = {}): Promise<HistoryAnswer> {
    return this.command('history', { channel, ...query });
  }

  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void {
    this.listeners[event].add(listener);
    return () => this.listeners[event].delete(listener);
  }

  close(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    for (const state of this.channels.values()) clearTimeout(state.retryTimer);
    const active = this.active;
    this.active = null;
    active?.close();
    this.setState('closed');
    const waiters = this.connectedWaiters;
    this.connectedWaiters = [];
    for (const { reject } of waiters) reject(new HubClientError('CLOSED', 'the client was closed before it connected'));
  }

  private isClosed(): boolean {
    return this.currentState === 'closed';
  }

  private async command(cmd: string, fields: Record<string, unknown>): Promise<any> {
    if (this.active === null) await this.connect();
    return this.active!.command(cmd, fields);
  }

  /** Tries transports from the preferred one down; after all failed, waits and starts again from the best. */
  private async establish(): Promise<void> {
    this.setState('connecting');
    for (let i = this.preferred; i < this.order.length; i++) {
      if (this.isClosed()) return;
      const transport = this.create(this.order[i]);
      try {
        this.active = transport;
        await transport.open();
      } catch {
        if (this.active === transport) this.active = null;
        transport.close();
        continue;
      }
      if (this.isClosed()) {
        transport.close();
        return;
      }
      this.preferred = i;
      this.attempt = 0;
      this.setState('connected');
      const waiters = this.connectedWaiters;
      this.connectedWaiters = [];
      for (const { resolve } of waiters) resolve();
      return;
    }
    if (this.isClosed()) return; // closed while the last attempt was opening
    this.preferred = 0;
    this.scheduleRetry();
  }

  private create(name: ClientTransportName): ClientTransport {
    switch (name) {
      case 'websocket': {
        const WebSocketImpl = this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
        if (WebSocketImpl === undefined) return unavailable('websocket');
        return new WebSocketClientTransport(this.context, WebSocketImpl, this.options.messagePack);
      }
      case 'sse':
        return new SseClientTransport(this.context);
      case 'longpoll':
      case 'refresh':
        return new PollingClientTransport(name, this.context, this.options.refreshIntervalMs ?? 5000);
    }
  }

  private transportClosed(code: number, reason: string): void {
    this.active = null;
    if (this.currentState === 'closed') return;
    for (const state of this.channels.values()) {
      state.recovering = false;
      clearTimeout(state.retryTimer); // the reconnect subscribes every channel anyway
      state.retryTimer = undefined;
    }
    if (!shouldReconnect(code)) {
      this.setState('disconnected');
      this.emit('disconnect', code, reason);
      return;
    }
    this.setState('connecting');
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.establish();
    }, this.backoff(this.attempt++));
  }

  /** The wait before attempt `attempt` (from 0): doubling from min to max, randomized in its upper half. */
  private backoff(attempt: number): number {
    const { min, max } = this.options.backoffMs ?? { min: 500, max: 20_000 };
    const ceiling = Math.min(max, min * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** Subscribes `channel` again after a backoff; its live publications wait for the answer (recovering). */
  private retryChannel(channel: string, state: ChannelState): void {
    if (state.retryTimer !== undefined) return;
    state.recovering = true;
    state.retryTimer = setTimeout(() => {
      state.retryTimer = undefined;
      if (this.channels.get(channel) === state) this.active?.resync(channel);
    }, this.backoff(state.retries++));
  }

  private dropChannel(channel: string, state: ChannelState): void {
    clearTimeout(state.retryTimer);
    this.channels.delete(channel);
  }

  private receive(publication: ClientPublication): void {
    const state = this.channels.get(publication.channel);
    if (state === undefined || state.recovering) return;
    const last = state.last;
    if (last !== undefined && last.epoch === publication.epoch && publication.offset <= last.offset) return; // seen
    if (last !== undefined && (last.epoch !== publication.epoch || publication.offset !== last.offset + 1)) {
      this.recover(publication.channel);
      return;
    }
    this.deliver(state, publication);
  }

  private deliver(state: ChannelState, publication: ClientPublication): void {
    state.last = { offset: publication.offset, epoch: publication.epoch };
    for (const handler of state.handlers) handler(publication);
  }

  /** A gap: ask the server for everything after our position; live publications wait for the answer. */
  private recover(channel: string): void {
    const state = this.channels.get(channel);
    if (state === undefined || state.recovering || this.active === null) return;
    state.recovering = true;
    this.active.resync(channel);
  }

  private caughtUp(channel: string, answer: HistoryAnswer): void {
    const state = this.channels.get(channel);
    if (state === undefined) return;
    state.recovering = false;
    state.retries = 0;
    if (answer.lost) {
      state.last = answer.position;
      this.emit('resync', channel, answer);
      return;
    }
    for (const publication of answer.publications) {
      const last = state.last;
      if (last !== undefined && last.epoch === publication.epoch && publication.offset <= last.offset) continue;
      this.deliver(state, { ...publication, channel });
    }
    const last = state.last;
    if (last === undefined || (answer.publications.length === 0 && (last.epoch !== answer.position.epoch || last.offset < answer.position.offset))) {
      state.last = answer.position;
    } else if (last.epoch === answer.position.epoch && last.offset < answer.position.offset) {
      this.recover(channel); // the answer was one page: fetch the rest
    }
  }

  private setState(state: ClientState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit('state', state);
  }

  private emit<K extends keyof ClientEvents>(event: K, ...args: Parameters<ClientEvents[K]>): void {
    for (const listener of this.listeners[event]) (listener as (...a: Parameters<ClientEvents[K]>) => void)(...args);
  }
}

function unavailable(name: ClientTransportName): ClientTransport {
  const error = () => Promise.reject(new HubClientError('UNAVAILABLE', `${name} is not available here`));
  return { name, open: error, resync() {}, command: error, close() {} };
}
