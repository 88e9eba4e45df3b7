// The hub's contracts. A backend (memory, socket, later shm and redis) implements
// Broker + PresenceManager; the per-process node (node.ts) only talks to these
// interfaces, so every backend is interchangeable and runs one contract suite
// (test/hub/broker.contract.ts).

/** Where a stream stands: the offset of its last publication and the epoch of the stream. */
export interface StreamPosition {
  /** 0 for a stream with no publication yet; +1 per publication. */
  readonly offset: number;
  /** Changes whenever the stream's history is lost (store reset, writer restart without persistence). */
  readonly epoch: string;
}

/** Who published, as clients see it. Absent for server-side publications. */
export interface ClientInfo {
  readonly userId: string;
  readonly clientId: string;
  /** Public info from the publisher's token (e.g. `{ name }`). */
  readonly info?: Record<string, unknown>;
}

/** One entry of a channel's stream. */
export interface Publication {
  readonly channel: string;
  readonly offset: number;
  readonly epoch: string;
  /** The payload as JSON text, serialized once by the publisher and never re-encoded on the way. */
  readonly data: string;
  readonly info?: ClientInfo;
  /** Milliseconds since the epoch, set by the backend that assigned the offset. */
  readonly time: number;
}

export interface PublishOptions {
  readonly info?: ClientInfo;
}

export interface HistoryQuery {
  /**
   * At most this many publications. Without `since`: the newest ones; with `since`: the
   * oldest ones after it (page forward by calling again). 0 asks for the position only.
   */
  readonly limit?: number;
  /** Only publications after this position. */
  readonly since?: StreamPosition;
}

export interface HistoryResult {
  /** Oldest first. */
  readonly publications: readonly Publication[];
  /** The stream's current top. */
  readonly position: StreamPosition;
  /**
   * True when `since` could not be honoured: its epoch is not the stream's, or publications
   * after it already left the window. `publications` then holds the newest ones (up to
   * `limit`) so the caller can resync in one round trip.
   */
  readonly lost: boolean;
}

export type Unsubscribe = () => void;

/**
 * Moves publications between processes and keeps each channel's history.
 *
 * Guarantees every backend gives (checked by the contract suite):
 * - offsets of one channel in one epoch are 1, 2, 3 … with no gap and no repeat;
 * - every listener sees a channel's publications in offset order;
 * - `publish` resolves only after its publication is in history, so a `history` call that
 *   starts after the resolve sees it;
 * - history keeps at most the namespace's `historySize` publications, none older than its
 *   `historyTtlMs`.
 */
export interface Broker {
  /** Appends to the channel's stream; resolves with the position assigned to the publication. */
  publish(channel: string, data: string, options?: PublishOptions): Promise<StreamPosition>;
  /** Reads the channel's history (see HistoryQuery); never throws for an unknown channel. */
  history(channel: string, query?: HistoryQuery): Promise<HistoryResult>;
  /** Receives every publication on every channel (the log), from any process. */
  onPublication(listener: (publication: Publication) => void): Unsubscribe;
}

/** One connection's presence in a channel. */
export interface PresenceEntry {
  /** Unique across processes and hosts (node.ts prefixes it with a per-process id). */
  readonly clientId: string;
  readonly userId: string;
  readonly info?: Record<string, unknown>;
}

/** One user in a channel, however many connections they have. */
export interface PresenceUser {
  readonly userId: string;
  readonly info?: Record<string, unknown>;
  /** How many connections of this user are in the channel. */
  readonly connections: number;
}

export interface PresenceCounts {
  readonly clients: number;
  readonly users: number;
}

export interface PresenceEvent {
  readonly type: 'join' | 'leave';
  readonly channel: string;
  readonly user: { readonly userId: string; readonly info?: Record<string, unknown> };
}

/**
 * Who is in which channel, across every process.
 *
 * - Users are de-duplicated by `userId` across connections and processes.
 * - A `join` event fires when a user's first connection enters a channel, `leave` when their
 *   last one goes, so several tabs of one user make one join.
 * - When a process dies or loses the backend, its entries are removed (and leaves fire).
 * - Entries with an empty `userId` (anonymous) count as clients but are not listed as users.
 */
export interface PresenceManager {
  /** Idempotent per (channel, clientId). */
  addPresence(channel: string, entry: PresenceEntry): Promise<void>;
  /** Idempotent; removing an absent entry is not an error. */
  removePresence(channel: string, clientId: string): Promise<void>;
  presence(channel: string): Promise<PresenceUser[]>;
  presenceCounts(channel: string): Promise<PresenceCounts>;
  onPresence(listener: (event: PresenceEvent) => void): Unsubscribe;
}

/** What a node needs from a backend. */
export type HubBackend = Broker & PresenceManager;

// --- optional abilities, each its own small interface

/** A backend that holds resources (sockets, timers) and must be closed. */
export interface Closer {
  close(): Promise<void>;
}

/**
 * A backend whose log can be interrupted (the connection to a writer dropped and came back).
 * Publications may have been missed in between; listeners re-check the channels they follow.
 */
export interface ReconnectNotifier {
  onReconnect(listener: () => void): Unsubscribe;
}

/**
 * A backend that can often answer history at once, from this process's memory or from shared
 * memory, with no round trip to another process. The HTTP transports (refresh, long-poll)
 * use it to answer in the turn the request arrived in.
 */
export interface LocalHistory {
  /** What history() would answer now, or null when the answer needs another process (then call history()). */
  historyNow(channel: string, query?: HistoryQuery): HistoryResult | null;
}

export function isCloser(value: object): value is Closer {
  return typeof (value as Partial<Closer>).close === 'function';
}

export function isReconnectNotifier(value: object): value is ReconnectNotifier {
  return typeof (value as Partial<ReconnectNotifier>).onReconnect === 'function';
}

export function hasLocalHistory(value: object): value is LocalHistory {
  return typeof (value as Partial<LocalHistory>).historyNow === 'function';
}

/** A backend that assigns positions in this process (the writer's own state): publishes with no promise. */
export interface LocalPublisher {
  publishNow(channel: string, data: string, options?: PublishOptions): StreamPosition;
}

export function hasLocalPublisher(value: object): value is LocalPublisher {
  return typeof (value as Partial<LocalPublisher>).publishNow === 'function';
}

// --- namespaces and access

/**
 * Who may do something in a namespace:
 * - `anyone`: also anonymous connections (demos);
 * - `user`: any connection with a valid token;
 * - `owner`: the channel's name (after `ns:`) is the user's id, e.g. `user:42` for user 42;
 * - `token`: the token's `channels` claim lists the channel (or `ns:*`);
 * - `{ roles }`: the token has one of these roles;
 * - `nobody`: only the server (apps, HTTP API, UNIX socket).
 */
export type AccessRule = 'anyone' | 'user' | 'owner' | 'token' | 'nobody' | { readonly roles: readonly string[] };

export interface NamespaceOptions {
  /** `room` for channels `room:*`; the empty name is the namespace of channels without `:`. */
  readonly name: string;
  /** Publications kept per channel; 0 keeps none (offsets still advance). */
  readonly historySize: number;
  /** Publications older than this leave the history. */
  readonly historyTtlMs: number;
  /** Track who is subscribed. */
  readonly presence: boolean;
  /** Push join/leave events to subscribers (needs `presence`). */
  readonly joinLeave: boolean;
  readonly subscribe: AccessRule;
  readonly publish: AccessRule;
  readonly seePresence: AccessRule;
  readonly seeHistory: AccessRule;
}

/** An authenticated (or anonymous) connection's identity. */
export interface Principal {
  /** Empty for anonymous connections. */
  readonly userId: string;
  readonly info?: Record<string, unknown>;
  readonly roles: readonly string[];
  /** Channels the token grants (`token` rule); `ns:*` grants a whole namespace. */
  readonly channels: readonly string[];
  /** Milliseconds since the epoch; absent: never. */
  readonly expiresAt?: number;
}

// --- what apps get

/**
 * `ctx.hub`: the server side of the hub in a web (or any non-writer) worker. No access rules
 * apply: the server may do anything. Each call goes to the hub writer, so it works across
 * workers: a publication reaches subscribers on every worker.
 */
export interface Hub {
  /** Publishes `data` (serialized to JSON once); resolves with the position the writer assigned. */
  publish(channel: string, data: unknown): Promise<StreamPosition>;
  /** Calls `listener` for every publication on `channel` (from any worker) while subscribed. */
  subscribe(channel: string, listener: (publication: Publication) => void): Unsubscribe;
  history(channel: string, query?: HistoryQuery): Promise<HistoryResult>;
  /** Who is in the channel, across workers (namespaces with `presence`). */
  presence(channel: string): Promise<PresenceUser[]>;
  presenceCounts(channel: string): Promise<PresenceCounts>;
  /** Closes every connection of the user on every worker (code 3501, or 3002 with `reconnect`). */
  disconnect(userId: string, options?: { reconnect?: boolean }): Promise<void>;
}
