// One-process backend: a bounded history ring per channel, epochs, presence.
// The socket log server (log-server.ts) keeps its state in one of these too.
import { randomBytes } from 'node:crypto';
import { NamespaceTable } from '../channels.js';
import type {
  Closer,
  HistoryQuery,
  HistoryResult,
  HubBackend,
  LocalHistory,
  LocalPublisher,
  NamespaceOptions,
  PresenceCounts,
  PresenceEntry,
  PresenceEvent,
  PresenceUser,
  Publication,
  PublishOptions,
  StreamPosition,
  Unsubscribe,
} from '../types.js';

export interface MemoryBackendOptions {
  namespaces: readonly NamespaceOptions[];
  /** Clock, for tests of history age. */
  now?: () => number;
  /** How often idle, empty streams are forgotten. */
  sweepIntervalMs?: number;
}

/** Retention for channels outside every namespace (the hub's own `$` channels). */
const NO_HISTORY = { historySize: 0, historyTtlMs: 60_000 };

export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/** A channel's stream as one writer hands it to the next (reload): position and kept publications. */
export interface StreamSnapshot {
  readonly channel: string;
  readonly offset: number;
  readonly epoch: string;
  readonly lastActivity: number;
  readonly publications: readonly Publication[];
}

/** A channel's stream: offset counter, epoch and a ring of its newest publications. */
class Stream {
  offset = 0;
  lastActivity: number;
  private ring: (Publication | undefined)[];
  private start = 0;
  private count = 0;

  constructor(
    readonly size: number,
    readonly ttlMs: number,
    now: number,
    readonly epoch = newEpoch(),
  ) {
    this.ring = new Array(size);
    this.lastActivity = now;
  }

  append(publication: Publication): void {
    this.lastActivity = publication.time;
    if (this.size === 0) return;
    this.ring[(this.start + this.count) % this.size] = publication;
    if (this.count < this.size) this.count++;
    else this.start = (this.start + 1) % this.size;
  }

  /** Drops publications older than the ttl. */
  expire(now: number): void {
    const oldest = now - this.ttlMs;
    while (this.count > 0 && this.at(0).time < oldest) {
      this.ring[this.start] = undefined;
      this.start = (this.start + 1) % this.size;
      this.count--;
    }
  }

  get length(): number {
    return this.count;
  }

  /** The i-th kept publication, oldest first. */
  at(i: number): Publication {
    return this.ring[(this.start + i) % this.size] as Publication;
  }

  /** Offset of the oldest kept publication; offset + 1 when none is kept. */
  firstOffset(): number {
    return this.count === 0 ? this.offset + 1 : this.at(0).offset;
  }

  slice(from: number, to: number): Publication[] {
    const out: Publication[] = [];
    for (let i = from; i < to; i++) out.push(this.at(i));
    return out;
  }
}

export class MemoryBackend implements HubBackend, Closer, LocalHistory, LocalPublisher {
  private readonly namespaces: NamespaceTable;
  private readonly now: () => number;
  private readonly streams = new Map<string, Stream>();
  private readonly publicationListeners = new Set<(publication: Publication) => void>();
  private readonly presenceListeners = new Set<(event: PresenceEvent) => void>();
  /** channel -> clientId -> entry */
  private readonly entries = new Map<string, Map<string, PresenceEntry>>();
  /** channel -> userId -> connections */
  private readonly users = new Map<string, Map<string, number>>();
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(options: MemoryBackendOptions) {
    this.namespaces = new NamespaceTable(options.namespaces);
    this.now = options.now ?? Date.now;
    this.sweepTimer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000);
    this.sweepTimer.unref();
  }

  async publish(channel: string, data: string, options: PublishOptions = {}): Promise<StreamPosition> {
    return this.publishNow(channel, data, options);
  }

  /** Synchronous publish, for the log server that assigns offsets in arrival order. */
  publishNow(channel: string, data: string, options: PublishOptions = {}): StreamPosition {
    const stream = this.stream(channel);
    const publication: Publication = {
      channel,
      offset: ++stream.offset,
      epoch: stream.epoch,
      data,
      info: options.info,
      time: this.now(),
    };
    stream.append(publication);
    for (const listener of this.publicationListeners) listener(publication);
    return { offset: publication.offset, epoch: publication.epoch };
  }

  async history(channel: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    return this.historyNow(channel, query);
  }

  historyNow(channel: string, query: HistoryQuery = {}): HistoryResult {
    const stream = this.stream(channel);
    stream.expire(this.now());
    const position = { offset: stream.offset, epoch: stream.epoch };
    const limit = query.limit ?? Infinity;
    const newest = (): Publication[] => stream.slice(Math.max(0, stream.length - limit), stream.length);
    const since = query.since;
    if (since === undefined) return { publications: newest(), position, lost: false };
    const lost = since.epoch !== stream.epoch || since.offset > stream.offset || since.offset + 1 < stream.firstOffset();
    if (lost) return { publications: newest(), position, lost: true };
    const from = since.offset + 1 - stream.firstOffset();
    const to = Math.min(stream.length, from + limit);
    return { publications: stream.slice(from, to), position, lost: false };
  }

  onPublication(listener: (publication: Publication) => void): Unsubscribe {
    this.publicationListeners.add(listener);
    return () => this.publicationListeners.delete(listener);
  }

  async addPresence(channel: string, entry: PresenceEntry): Promise<void> {
    this.addPresenceNow(channel, entry);
  }

  addPresenceNow(channel: string, entry: PresenceEntry): void {
    let entries = this.entries.get(channel);
    if (entries === undefined) this.entries.set(channel, (entries = new Map()));
    if (entries.has(entry.clientId)) return;
    entries.set(entry.clientId, entry);
    if (entry.userId === '') return;
    let users = this.users.get(channel);
    if (users === undefined) this.users.set(channel, (users = new Map()));
    const connections = (users.get(entry.userId) ?? 0) + 1;
    users.set(entry.userId, connections);
    if (connections === 1) this.emitPresence({ type: 'join', channel, user: userOf(entry) });
  }

  async removePresence(channel: string, clientId: string): Promise<void> {
    this.removePresenceNow(channel, clientId);
  }

  removePresenceNow(channel: string, clientId: string): void {
    const entries = this.entries.get(channel);
    const entry = entries?.get(clientId);
    if (entries === undefined || entry === undefined) return;
    entries.delete(clientId);
    if (entries.size === 0) this.entries.delete(channel);
    if (entry.userId === '') return;
    const users = this.users.get(channel)!;
    const connections = users.get(entry.userId)! - 1;
    if (connections > 0) {
      users.set(entry.userId, connections);
      return;
    }
    users.delete(entry.userId);
    if (users.size === 0) this.users.delete(channel);
    this.emitPresence({ type: 'leave', channel, user: userOf(entry) });
  }

  async presence(channel: string): Promise<PresenceUser[]> {
    return this.presenceNow(channel);
  }

  presenceNow(channel: string): PresenceUser[] {
    const users = this.users.get(channel);
    if (users === undefined) return [];
    const infoByUser = new Map<string, PresenceEntry>();
    for (const entry of this.entries.get(channel)!.values()) {
      if (entry.userId !== '' && !infoByUser.has(entry.userId)) infoByUser.set(entry.userId, entry);
    }
    return [...users].map(([userId, connections]) => {
      const info = infoByUser.get(userId)?.info;
      return info === undefined ? { userId, connections } : { userId, info, connections };
    });
  }

  async presenceCounts(channel: string): Promise<PresenceCounts> {
    return this.presenceCountsNow(channel);
  }

  presenceCountsNow(channel: string): PresenceCounts {
    return { clients: this.entries.get(channel)?.size ?? 0, users: this.users.get(channel)?.size ?? 0 };
  }

  onPresence(listener: (event: PresenceEvent) => void): Unsubscribe {
    this.presenceListeners.add(listener);
    return () => this.presenceListeners.delete(listener);
  }

  /** Every stream's position and kept publications, for a writer that takes over (see log-server.ts). */
  exportStreams(): StreamSnapshot[] {
    const now = this.now();
    return [...this.streams].map(([channel, stream]) => {
      stream.expire(now);
      return { channel, offset: stream.offset, epoch: stream.epoch, lastActivity: stream.lastActivity, publications: stream.slice(0, stream.length) };
    });
  }

  /** Continues streams exported by a previous writer: same epochs and offsets, so clients resume without loss. */
  importStreams(snapshots: readonly StreamSnapshot[]): void {
    for (const snapshot of snapshots) {
      const retention = this.namespaces.find(snapshot.channel) ?? NO_HISTORY;
      const stream = new Stream(retention.historySize, retention.historyTtlMs, snapshot.lastActivity, snapshot.epoch);
      stream.offset = snapshot.offset;
      for (const publication of snapshot.publications) stream.append(publication);
      stream.lastActivity = snapshot.lastActivity;
      this.streams.set(snapshot.channel, stream);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.publicationListeners.clear();
    this.presenceListeners.clear();
  }

  private emitPresence(event: PresenceEvent): void {
    for (const listener of this.presenceListeners) listener(event);
  }

  private stream(channel: string): Stream {
    let stream = this.streams.get(channel);
    if (stream === undefined) {
      const retention = this.namespaces.find(channel) ?? NO_HISTORY;
      stream = new Stream(retention.historySize, retention.historyTtlMs, this.now());
      this.streams.set(channel, stream);
    }
    return stream;
  }

  /** Forgets streams that kept nothing and saw no publication for a ttl; a later use starts a new epoch. */
  private sweep(): void {
    const now = this.now();
    for (const [channel, stream] of this.streams) {
      stream.expire(now);
      if (stream.length === 0 && stream.lastActivity < now - stream.ttlMs) this.streams.delete(channel);
    }
  }
}

function userOf(entry: PresenceEntry): PresenceEvent['user'] {
  return entry.info === undefined ? { userId: entry.userId } : { userId: entry.userId, info: entry.info };
}
