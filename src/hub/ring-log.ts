// The writer's side of the `shm` backend: the log server (log-server.ts) writes every
// publication once to a SharedRing that every web worker maps and reads (backends/shm.ts),
// and rings a doorbell so they read it on their event loop. At start, the ring's content
// rebuilds the writer's streams: history survives a writer restart, and with a file-backed
// ring a restart of the whole daemon.
import type { Logger } from 'pino';
import { describeError, isKoboldError, KoboldError } from '../errors.js';
import { Doorbell } from '../shm/doorbell.js';
import { type RingWriter, SharedRing } from '../shm/ring.js';
import type { StreamSnapshot } from './backends/memory.js';
import { bodyBytesBound, maxBodyBytes, RecordEncoder, scanRing } from './backends/shm-records.js';
import type { Publication } from './types.js';

export interface RingLogOptions {
  /** A /dev/shm name, or a file path (the ring then survives restarts of the daemon). */
  segment: string;
  /** The doorbell's UNIX socket. */
  doorbellPath: string;
  /** Bytes per ring record (a multiple of 8); larger publications take several. */
  recordBytes: number;
  /** Records in the ring (a power of two). */
  records: number;
}

/** What a web worker needs to read the ring; the log server sends it in its hello. */
export interface RingInfo {
  readonly segment: string;
  readonly doorbell: string;
  /** The ring's creation stamp: another value means another ring. */
  readonly epoch: number;
  /** The ring's head when the hello was sent: the worker follows from there. */
  readonly head: number;
}

/** How long a new writer waits for its predecessor to let go of the ring. */
const CLAIM_TIMEOUT_MS = 3_000;

export class RingLog {
  private readonly encoder: RecordEncoder;
  private readonly maxBody: number;
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;

  private constructor(
    private readonly ring: SharedRing,
    private readonly writer: RingWriter,
    private readonly doorbell: Doorbell,
    private readonly segment: string,
  ) {
    this.encoder = new RecordEncoder(ring.recordSize);
    this.maxBody = maxBodyBytes(ring);
    // Streams whose newest record the ring overwrote link to nothing: forget them now and then.
    this.sweepTimer = setInterval(() => this.forgetOverwritten(), 30_000);
    this.sweepTimer.unref();
  }

  /** Maps (or creates) the ring, becomes its writer and listens on the doorbell. */
  static async open(options: RingLogOptions, logger: Logger): Promise<RingLog> {
    const geometry = { recordSize: options.recordBytes, capacity: options.records };
    let ring: SharedRing;
    try {
      ring = SharedRing.create(options.segment, geometry);
    } catch (error) {
      if (!isKoboldError(error, 'KOBOLD_ERR_SHM_LAYOUT')) throw error;
      logger.warn({ segment: options.segment, reason: describeError(error) }, 'hub: the log ring has another layout; starting a new one (its history is lost)');
      SharedRing.unlink(options.segment);
      ring = SharedRing.create(options.segment, geometry);
    }
    const writer = await claimWriter(ring);
    try {
      return new RingLog(ring, writer, await Doorbell.listen(options.doorbellPath), options.segment);
    } catch (error) {
      writer.close();
      throw error;
    }
  }

  info(): RingInfo {
    return { segment: this.segment, doorbell: this.doorbell.path, epoch: this.ring.epoch, head: this.ring.head };
  }

  /**
   * The streams the ring holds, oldest publication first, each in its newest epoch and from
   * its newest unbroken run of offsets; also links each channel's next publication to them.
   */
  recover(): StreamSnapshot[] {
    const streams = new Map<string, { epoch: string; publications: Publication[] }>();
    scanRing(this.ring.reader({ from: 'oldest' }), this.ring.tail, this.ring.head, ({ publication }, seq) => {
      const stream = streams.get(publication.channel);
      const previous = stream?.publications[stream.publications.length - 1];
      if (stream === undefined || stream.epoch !== publication.epoch || previous!.offset + 1 !== publication.offset) {
        streams.set(publication.channel, { epoch: publication.epoch, publications: [publication] });
      } else {
        stream.publications.push(publication);
      }
      this.encoder.stream(publication.channel, publication.epoch).lastSeq = seq;
    });
    return [...streams].map(([channel, { epoch, publications }]) => {
      const newest = publications[publications.length - 1];
      return { channel, epoch, offset: newest.offset, lastActivity: newest.time, publications };
    });
  }

  /** Throws KOBOLD_ERR_HUB_TOO_LARGE for a publication the ring cannot hold (a quarter of it). */
  checkFits(channel: string, data: string, info: string): void {
    const size = bodyBytesBound(channel, data, info, this.maxBody);
    if (size > this.maxBody) throw new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size, limit: this.maxBody });
  }

  /** Writes one publication (checked with checkFits) and rings the doorbell at the end of the turn. */
  append(publication: Publication): void {
    if (this.closed) return;
    const stream = this.encoder.stream(publication.channel, publication.epoch);
    const parts = this.encoder.encode(publication, stream, publication.info === undefined ? '' : JSON.stringify(publication.info));
    stream.lastSeq = parts instanceof Uint8Array ? this.writer.write(parts) : this.writer.writeMany(parts);
    this.doorbell.ring();
  }

  /** Gives the ring and the doorbell up (to a successor, or at stop); the ring's content stays. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.writer.close();
    await this.doorbell.close();
  }

  private forgetOverwritten(): void {
    const tail = this.ring.tail;
    for (const [channel, stream] of this.encoder.streams) if (stream.lastSeq < tail) this.encoder.streams.delete(channel);
  }
}

/** The ring's writer role; a predecessor handing over may still be letting go of it. */
async function claimWriter(ring: SharedRing): Promise<RingWriter> {
  const deadline = Date.now() + CLAIM_TIMEOUT_MS;
  for (;;) {
    try {
      return ring.writer();
    } catch (error) {
      if (!isKoboldError(error, 'KOBOLD_ERR_SHM_WRITER_BUSY') || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
