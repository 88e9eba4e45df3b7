// What a connection can be written to (a transport) and the bounded queue in front of
// it: frames due to one connection in one event-loop turn leave in one writeMany; a
// connection that does not keep up never makes the queue grow past maxQueueBytes.
import type { DisconnectReason } from './disconnect.js';
import { flushAtTurnEnd, type Flushable, flushWithin } from './turn.js';
import type { Publication, StreamPosition } from './types.js';

export type TransportName = 'websocket' | 'sse';

/**
 * How frames are wrapped for a transport: `websocket` (each frame a whole WebSocket text
 * frame holding one JSON text), `msgpack` (a whole WebSocket binary frame holding one
 * MessagePack message, for connections that chose the `kobold.msgpack` subprotocol) or
 * `sse` (each frame an SSE event).
 */
export type FrameFormat = 'websocket' | 'msgpack' | 'sse';

/** A connection's write side. Transports only write; the session decides what. */
export interface Transport {
  readonly name: TransportName;
  readonly format: FrameFormat;
  /** Bytes handed to the transport and not yet on the wire. */
  bufferedBytes(): number;
  /** Called (once per registration) when bufferedBytes() fell back after being high. */
  onDrain(listener: () => void): void;
  /** Writes all frames with one write; `frames` is only read during the call. */
  writeMany(frames: readonly Buffer[]): void;
  /** Ends the connection, telling the client why where the transport can. */
  close(disconnect: DisconnectReason): void;
}

export interface OutboundLimits {
  maxQueueBytes: number;
  writeHighWaterBytes: number;
  slowConsumerPolicy: 'drop' | 'disconnect';
  /** 0: flush at the end of the turn; N: within N ms (see HubLimits.writeDelayMs). */
  writeDelayMs: number;
}

/** What the queue asks of the connection it belongs to (an interface, not callbacks: no closures per connection). */
export interface QueueOwner {
  /** A gap marker in the connection's format. */
  gapFrame(channel: string, last: StreamPosition): Buffer;
  /** The policy is `disconnect` and the queue overflowed. */
  overflowed(): void;
}

export class OutboundQueue implements Flushable {
  private frames: Buffer[] = [];
  /** The publication each frame carries, or undefined (replies, pushes): only publications may be dropped. */
  private publications: (Publication | undefined)[] = [];
  private bytes = 0;
  private waitingForDrain = false;
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly limits: OutboundLimits,
    private readonly owner: QueueOwner,
  ) {}

  get queuedBytes(): number {
    return this.bytes;
  }

  push(frame: Buffer, publication?: Publication): void {
    if (this.closed) return;
    this.frames.push(frame);
    this.publications.push(publication);
    this.bytes += frame.length;
    if (this.bytes > this.limits.maxQueueBytes) {
      if (this.limits.slowConsumerPolicy === 'disconnect') {
        this.owner.overflowed();
        return;
      }
      this.dropOldest();
    }
    // The first frame of a batch asks for the flush; while waiting for drain, the drain does.
    if (this.frames.length === 1 && !this.waitingForDrain) {
      if (this.limits.writeDelayMs === 0) flushAtTurnEnd(this);
      else flushWithin(this.limits.writeDelayMs, this);
    }
  }

  flush(): void {
    if (this.closed || this.frames.length === 0 || this.waitingForDrain) return;
    if (this.transport.bufferedBytes() > this.limits.writeHighWaterBytes) {
      this.waitingForDrain = true;
      this.transport.onDrain(() => {
        this.waitingForDrain = false;
        this.flush();
      });
      return;
    }
    const frames = this.frames;
    this.frames = [];
    this.publications = [];
    this.bytes = 0;
    this.transport.writeMany(frames);
  }

  /** Writes what is queued now, then stops taking frames. */
  close(): void {
    if (!this.waitingForDrain) this.flush();
    this.closed = true;
    this.frames = [];
    this.publications = [];
    this.bytes = 0;
  }

  /**
   * Drops the oldest publications until the queue is half full, then tells the client,
   * per channel, the last position it got intact so it resumes from there.
   */
  private dropOldest(): void {
    const target = this.limits.maxQueueBytes / 2;
    const resumeFrom = new Map<string, StreamPosition>();
    const frames: Buffer[] = [];
    const publications: (Publication | undefined)[] = [];
    for (let i = 0; i < this.frames.length; i++) {
      const publication = this.publications[i];
      if (this.bytes > target && publication !== undefined) {
        this.bytes -= this.frames[i].length;
        if (!resumeFrom.has(publication.channel)) {
          resumeFrom.set(publication.channel, { offset: publication.offset - 1, epoch: publication.epoch });
        }
        continue;
      }
      frames.push(this.frames[i]);
      publications.push(publication);
    }
    for (const [channel, last] of resumeFrom) {
      const frame = this.owner.gapFrame(channel, last);
      frames.push(frame);
      publications.push(undefined);
      this.bytes += frame.length;
    }
    this.frames = frames;
    this.publications = publications;
  }
}
