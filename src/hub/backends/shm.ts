// The `shm` backend, a web worker's end of the hub log on one host. The writer puts each
// publication once into a SharedRing (ring-log.ts); every worker reads it in place after a
// doorbell and keeps a small index (channel -> newest position and ring sequence), so
// history — what refresh and long-poll requests ask — is answered from the ring by whichever
// worker gets the request, with no hop to the writer, whenever the ring still holds the
// answer. Publishing, presence and history the ring no longer holds go over the log
// server's socket (a SocketBackend inside), exactly as with the `socket` backend.
import pino, { type Logger } from 'pino';
import { describeError } from '../../errors.js';
import { followRing, type RingFollower } from '../../shm/follow.js';
import { shmAvailable } from '../../shm/native.js';
import { type RingReader, SharedRing } from '../../shm/ring.js';
import { NamespaceTable } from '../channels.js';
import type { RingInfo } from '../ring-log.js';
import type {
  Closer,
  HistoryQuery,
  HistoryResult,
  HubBackend,
  LocalHistory,
  NamespaceOptions,
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
import { readPublicationAt, RecordAssembler, scanRing } from './shm-records.js';
import { type ConnectHubOptions, SocketBackend } from './socket.js';

export interface ConnectHubLogOptions extends ConnectHubOptions {
  /** The namespaces' retention (historySize, historyTtlMs), applied to history read from the ring. */
  namespaces: readonly NamespaceOptions[];
  /** How often the index forgets channels whose newest publication left the ring. Default 30 s. */
  indexSweepMs?: number;
}

/** Retention of channels outside every namespace (the hub's own `$` channels), as in memory.ts. */
const NO_HISTORY = { historySize: 0, historyTtlMs: 60_000 };

/** Where a channel's stream stands as this worker knows it. */
interface Head {
  epoch: string;
  offset: number;
  /** Ring sequence of the newest publication; -1 when known from the writer's answer only. */
  seq: number;
  /** The worker's change count when this head last moved (see headVersion). */
  version: number;
}

/**
 * Connects a worker to the hub writer: reads the log from the writer's ring when the writer
 * offers one and this process can map shared memory, else from the socket. A writer that
 * does not answer within connectTimeoutMs (failing, or not started yet) does not keep the
 * worker from starting: it goes on without it, and follows the writer once it greets.
 */
export async function connectHubLog(options: ConnectHubLogOptions): Promise<HubBackend & Closer & ReconnectNotifier> {
  const canMap = shmAvailable();
  const socket = new SocketBackend({ ...options, greeting: (hello) => (canMap && hello.ring !== undefined ? [{ op: 'readRing' }] : []) });
  if (!(await socket.startOrKeepTrying())) {
    options.logger?.warn(
      { socketPath: options.socketPath, waitedMs: options.connectTimeoutMs },
      'hub: no writer answered; starting without it (what needs the writer waits for it, then fails with KOBOLD_ERR_HUB_TIMEOUT, until it is back)',
    );
    return canMap ? new ShmBackend(socket, undefined, options) : socket;
  }
  const ring = socket.hello.ring;
  if (!canMap || ring === undefined) return socket;
  try {
    return new ShmBackend(socket, ring, options);
  } catch (error) {
    await socket.close();
    throw error;
  }
}

export class ShmBackend implements HubBackend, Closer, ReconnectNotifier, LocalHistory {
  /** The writer's ring, once a writer offered one (a worker may start before its writer). */
  private ring: SharedRing | null = null;
  private follower: RingFollower | null = null;
  private lookup: RingReader | null = null;
  private readonly assembler = new RecordAssembler();
  private readonly heads = new Map<string, Head>();
  /** Counts head changes, so every new or moved head gets a version no head had before. */
  private changes = 0;
  private readonly namespaces: NamespaceTable;
  private readonly publicationListeners = new Set<(publication: Publication) => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private readonly logger: Logger;
  private readonly sweepTimer: NodeJS.Timeout;
  /** True while publications are handed to listeners (a listener's history() must not re-enter the reader). */
  private delivering = false;
  private closed = false;

  constructor(
    private readonly socket: SocketBackend,
    info: RingInfo | undefined,
    options: ConnectHubLogOptions,
  ) {
    this.namespaces = new NamespaceTable(options.namespaces);
    this.logger = options.logger ?? pino({ level: 'silent' });
    if (info !== undefined) this.attach(info);
    // Only a writer without a ring sends publications on the socket to a worker that reads
    // rings. The ring does not hold them: the head moves (so kept answers give way), with no
    // ring sequence (so history beyond it is the writer's).
    socket.onPublication((publication) => {
      if (this.socket.hello.ring !== undefined) return;
      this.setHead(publication.channel, publication, -1);
      this.deliver(publication);
    });
    socket.onReconnect(() => this.writerChanged());
    this.sweepTimer = setInterval(() => this.forgetOutOfRing(), options.indexSweepMs ?? 30_000);
    this.sweepTimer.unref();
  }

  /** The ring this worker reads, or null before a writer offered one (for tests and the benchmark). */
  get segment(): string | null {
    return this.ring?.name ?? null;
  }

  publish(channel: string, data: string, options?: PublishOptions): Promise<StreamPosition> {
    return this.socket.publish(channel, data, options);
  }

  async history(channel: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    const local = this.historyNow(channel, query);
    if (local !== null) return local;
    const result = await this.socket.history(channel, query);
    if (!this.heads.has(channel)) this.setHead(channel, result.position, -1);
    return result;
  }

  /** History from the ring, or null when the writer must answer (the ring no longer holds it, or never had the channel). */
  historyNow(channel: string, query: HistoryQuery = {}): HistoryResult | null {
    this.readUpToNow();
    return this.answerFromRing(channel, query);
  }

  /**
   * A number that changes whenever the channel's position as this worker knows it may have
   * (read up to now first, like historyNow): an answer built from history stays right while
   * the versions of its channels stay the same. -1 for a channel not in the index.
   */
  headVersion(channel: string): number {
    this.readUpToNow();
    return this.heads.get(channel)?.version ?? -1;
  }

  private readUpToNow(): void {
    // What the writer acknowledged before this call is in the ring: read up to it first.
    if (!this.delivering && this.socket.hello.ring !== undefined) this.follower?.drain();
  }

  onPublication(listener: (publication: Publication) => void): Unsubscribe {
    this.publicationListeners.add(listener);
    return () => this.publicationListeners.delete(listener);
  }

  addPresence(channel: string, entry: PresenceEntry): Promise<void> {
    return this.socket.addPresence(channel, entry);
  }

  removePresence(channel: string, clientId: string): Promise<void> {
    return this.socket.removePresence(channel, clientId);
  }

  presence(channel: string): Promise<PresenceUser[]> {
    return this.socket.presence(channel);
  }

  presenceCounts(channel: string): Promise<PresenceCounts> {
    return this.socket.presenceCounts(channel);
  }

  onPresence(listener: (event: PresenceEvent) => void): Unsubscribe {
    return this.socket.onPresence(listener);
  }

  onReconnect(listener: () => void): Unsubscribe {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.follower?.close();
    this.publicationListeners.clear();
    await this.socket.close();
  }

  /** Maps the ring, indexes what it holds up to `info.head` and follows it from there. */
  private attach(info: RingInfo): void {
    const ring = SharedRing.open(info.segment);
    this.ring = ring;
    this.lookup = ring.reader();
    this.heads.clear();
    this.index(ring, info.head);
    this.assembler.reset();
    const follower: RingFollower = followRing(ring, info.doorbell, (payload, seq) => this.onRecord(payload, seq), {
      from: info.head,
      onLost: (lost) => this.lapped(lost, ring, follower),
    });
    this.follower = follower;
  }

  private index(ring: SharedRing, to: number): void {
    scanRing(ring.reader(), ring.tail, to, ({ publication }, seq) => this.setHead(publication.channel, publication, seq));
  }

  /** The channel's head moved to `at` (ring sequence `seq`, -1 when not in the ring). */
  private setHead(channel: string, at: StreamPosition, seq: number): void {
    const head = this.heads.get(channel);
    if (head === undefined) this.heads.set(channel, { epoch: at.epoch, offset: at.offset, seq, version: ++this.changes });
    else {
      head.epoch = at.epoch;
      head.offset = at.offset;
      head.seq = seq;
      head.version = ++this.changes;
    }
  }

  private onRecord(payload: Uint8Array, seq: number): void {
    const logged = this.assembler.push(payload, seq);
    if (logged === null) return;
    this.setHead(logged.publication.channel, logged.publication, this.assembler.completedAt);
    this.deliver(logged.publication);
  }

  private deliver(publication: Publication): void {
    this.delivering = true;
    try {
      for (const listener of this.publicationListeners) {
        try {
          listener(publication);
        } catch (error) {
          this.logger.error({ err: describeError(error), channel: publication.channel }, 'hub: a publication listener threw');
        }
      }
    } finally {
      this.delivering = false;
    }
  }

  /**
   * History from the ring, with the same answers as the writer's memory (memory.ts), or null
   * when the ring no longer holds all it needs (then the writer answers).
   */
  private answerFromRing(channel: string, query: HistoryQuery): HistoryResult | null {
    const head = this.heads.get(channel);
    if (head === undefined) return null;
    const retention = this.namespaces.find(channel) ?? NO_HISTORY;
    const position = { offset: head.offset, epoch: head.epoch };
    const keep = Math.min(query.limit ?? Infinity, retention.historySize);
    const oldestKept = Date.now() - retention.historyTtlMs;
    const newest = (lost: boolean): HistoryResult | null => {
      const publications = this.walkBack(channel, head, keep, 0, oldestKept);
      return publications === null ? null : { publications: publications.reverse(), position, lost };
    };
    const since = query.since;
    if (since === undefined) return newest(false);
    if (since.epoch !== head.epoch || since.offset > head.offset) return newest(true);
    const wanted = head.offset - since.offset;
    if (wanted === 0) return { publications: [], position, lost: false };
    if (wanted > retention.historySize) return newest(true);
    const after = this.walkBack(channel, head, wanted, since.offset, oldestKept);
    if (after === null) return null;
    if (after.length < wanted) return newest(true); // some of them expired
    return { publications: after.reverse().slice(0, query.limit ?? Infinity), position, lost: false };
  }

  /**
   * Up to `max` publications of the channel, newest first, with offsets above `above` and
   * not older than `oldestKept`; null when the chain leaves the ring before that.
   */
  private walkBack(channel: string, head: Head, max: number, above: number, oldestKept: number): Publication[] | null {
    const found: Publication[] = [];
    let seq = head.seq;
    let offset = head.offset;
    while (found.length < max && offset > above && offset > 0) {
      if (seq < 0 || this.lookup === null) return null;
      const logged = readPublicationAt(this.lookup, seq);
      if (logged === null) return null;
      const publication = logged.publication;
      if (publication.channel !== channel || publication.epoch !== head.epoch || publication.offset !== offset) return null;
      if (publication.time < oldestKept) break;
      found.push(publication);
      seq = logged.prevSeq;
      offset--;
    }
    return found;
  }

  /** The writer wrote more than the ring holds since this worker last read: re-index, and let the node re-check its channels. */
  private lapped(lost: number, ring: SharedRing, follower: RingFollower): void {
    this.logger.warn({ lost }, 'hub: this worker fell behind the log ring; re-checking its channels');
    this.heads.clear();
    this.index(ring, follower.reader.position);
    for (const listener of this.reconnectListeners) listener();
  }

  /** A (re)started writer: positions it told us may be gone; its ring may be another one. */
  private writerChanged(): void {
    for (const [channel, head] of this.heads) if (head.seq < 0) this.heads.delete(channel);
    const info = this.socket.hello.ring;
    if (info !== undefined && (this.ring === null || info.segment !== this.ring.name || info.epoch !== this.ring.epoch)) {
      this.logger.info({ segment: info.segment }, this.ring === null ? "hub: following the writer's log ring" : 'hub: the writer uses another log ring; following it');
      this.follower?.close();
      this.attach(info);
    }
    for (const listener of this.reconnectListeners) listener();
  }

  private forgetOutOfRing(): void {
    const tail = this.ring?.tail ?? 0;
    for (const [channel, head] of this.heads) if (head.seq < tail) this.heads.delete(channel);
  }
}
