// What a connection can be written to (a transport) and the bounded queue in front of
// it: frames due to one connection in one event-loop turn leave in one writeMany; a
// connection that does not keep up never makes the queue grow past maxQueueBytes.
import type { DisconnectReason } from './disconnect.js';
import { flushAtTurnEnd, type Flushable } from './turn.js';
import type { Publication, StreamPosition } from './types.js';

export type TransportName = 'websocket' | 'sse';

/** How frames are wrapped for a transport: `json` (one JSON text per frame) or `sse` (an event per frame). */
export type FrameFormat = 'json' | 'sse';

/** A connection's write side. Transports only write; the session decides what. */
export interface Transport {
  readonly name: TransportName;
  readonly format: FrameFormat;
  /** Bytes handed to the transport and not yet on the wire. */
  bufferedBytes(): number;
  /** Called (once per registration) when bufferedBytes() fell back after being high. */
  onDrain(listener: () => void): void;
  /** Writes all frames with one write. */
  writeMany(frames: readonly Buffer[]): void;
  /** Ends the connection, telling the client why where the transport can. */
  close(disconnect: DisconnectReason): void;
}

export interface OutboundLimits {
  maxQueueBytes: number;
  writeHighWaterBytes: number;
  slowConsumerPolicy: 'drop' | 'disconnect';
}

interface Queued {
  readonly frame: Buffer;
  /** Set for publication frames, which may be dropped for a slow consumer. */
  readonly publication?: Publication;
}

export class OutboundQueue implements Flushable {
  private frames: Queued[] = [];
  private bytes = 0;
  private waitingForDrain = false;
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly limits: OutboundLimits,
    /** Wraps a gap marker for this transport's format. */
    private readonly gapFrame: (channel: string, last: StreamPosition) => Buffer,
    /** Called when the policy is `disconnect` and the queue overflowed. */
    private readonly overflowed: () => void,
  ) {}

  get queuedBytes(): number {
    return this.bytes;
  }

  push(frame: Buffer, publication?: Publication): void {
    if (this.closed) return;
    this.frames.push(publication === undefined ? { frame } : { frame, publication });
    this.bytes += frame.length;
    if (this.bytes > this.limits.maxQueueBytes) {
      if (this.limits.slowConsumerPolicy === 'disconnect') {
        this.overflowed();
        return;
      }
      this.dropOldest();
    }
    if (!this.waitingForDrain) flushAtTurnEnd(this);
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
    const frames = this.frames.map((queued) => queued.frame);
    this.frames = [];
    this.bytes = 0;
    this.transport.writeMany(frames);
  }

  /** Writes what is queued now, then stops taking frames. */
  close(): void {
    if (!this.waitingForDrain) this.flush();
    this.closed = true;
    this.frames = [];
    this.bytes = 0;
  }

  /**
   * Drops the oldest publications until the queue is half full, then tells the client,
   * per channel, the last position it got intact so it resumes from there.
   */
  private dropOldest(): void {
    const target = this.limits.maxQueueBytes / 2;
    const resumeFrom = new Map<string, StreamPosition>();
    const kept: Queued[] = [];
    for (const queued of this.frames) {
      const publication = queued.publication;
      if (this.bytes > target && publication !== undefined) {
        this.bytes -= queued.frame.length;
        if (!resumeFrom.has(publication.channel)) {
          resumeFrom.set(publication.channel, { offset: publication.offset - 1, epoch: publication.epoch });
        }
        continue;
      }
      kept.push(queued);
    }
    this.frames = kept;
    for (const [channel, last] of resumeFrom) {
      const frame = this.gapFrame(channel, last);
      this.frames.push({ frame });
      this.bytes += frame.length;
    }
  }
}
