// How the hub's log lies in its SharedRing: one publication per record, or several
// consecutive records ("parts") when it is larger than one, written in one publication of
// the ring head so readers see all of them or none. The writer (ring-log.ts) encodes;
// web workers (shm.ts) decode, follow, and read old publications back by sequence number.
//
// part    = tag:u8 0:u8 0:u16 n:u32 bytes       n: the part count (first) or index (continuation)
// body    = offset:f64 time:f64 prevSeq:f64 channel:u32 epoch:u32 info:u32 data:u32 (byte lengths)
//           channel epoch info data              (utf8; info '' when absent), little-endian
// prevSeq is the ring sequence of the channel's previous publication in the same epoch, or -1:
// readers walk a channel's history backwards through it without an index of their own.
import type { RingReader, SharedRing } from '../../shm/ring.js';
import type { Publication } from '../types.js';

const FIRST = 1;
const CONTINUATION = 2;
const PART_HEADER_BYTES = 8;
const BODY_FIXED_BYTES = 40;
/** Epochs are 8 characters (6 random bytes in base64url); room is kept for longer ones. */
const EPOCH_BYTES_BOUND = 32;

/** A decoded record body: the publication and where the channel's previous one lies. */
export interface LoggedPublication {
  readonly publication: Publication;
  readonly prevSeq: number;
}

/** The largest publication body a ring can hold: a quarter of it, so one publication never laps a reader alone. */
export function maxBodyBytes(ring: Pick<SharedRing, 'recordSize' | 'capacity'>): number {
  const parts = Math.min(0xffff, Math.max(1, ring.capacity >> 2));
  return parts * (ring.recordSize - PART_HEADER_BYTES);
}

/**
 * An upper bound of a publication's body size, known before the writer assigns its epoch.
 * Strings are measured only when 3 bytes per character might not fit (the usual case is cheap).
 */
export function bodyBytesBound(channel: string, data: string, info: string, limit: number): number {
  const fixed = BODY_FIXED_BYTES + EPOCH_BYTES_BOUND;
  const rough = fixed + 3 * (channel.length + data.length + info.length);
  return rough <= limit ? rough : fixed + Buffer.byteLength(channel) + Buffer.byteLength(data) + Buffer.byteLength(info);
}

/** What the writer keeps per stream: its name and epoch as bytes (encoded once, not per publication) and its newest record. */
export interface StreamRecord {
  readonly epoch: string;
  readonly bytes: Buffer;
  readonly channelBytes: number;
  /** Ring sequence of the stream's newest publication (the next one links to it); -1: none in the ring. */
  lastSeq: number;
}

/** Encodes publications into ring parts, reusing one buffer for the common one-part case. */
export class RecordEncoder {
  private scratch = Buffer.allocUnsafe(4096);
  /** Numbers go through a DataView: Buffer's write methods cost ten times more. */
  private fields = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.length);
  /** Views of the scratch buffer's first n bytes, made once per n (a Buffer's subarray costs more than the rest). */
  private views: Uint8Array[] = [];
  /** Streams with a publication in the ring, by channel. */
  readonly streams = new Map<string, StreamRecord>();

  constructor(private readonly recordSize: number) {}

  /** The channel's stream record, a new one (linked to nothing) when the epoch changed. */
  stream(channel: string, epoch: string): StreamRecord {
    const known = this.streams.get(channel);
    if (known !== undefined && known.epoch === epoch) return known;
    const channelBytes = Buffer.byteLength(channel);
    const bytes = Buffer.allocUnsafe(channelBytes + Buffer.byteLength(epoch));
    bytes.write(channel, 0, 'utf8');
    bytes.write(epoch, channelBytes, 'utf8');
    const stream = { epoch, bytes, channelBytes, lastSeq: -1 };
    this.streams.set(channel, stream);
    return stream;
  }

  /**
   * One record, or the parts of a publication that needs several; valid until the next call.
   * `stream` is stream(publication.channel, publication.epoch): the record links to its lastSeq.
   */
  encode(publication: Publication, stream: StreamRecord, info: string): Uint8Array | Uint8Array[] {
    const data = publication.data;
    const bound = PART_HEADER_BYTES + BODY_FIXED_BYTES + stream.bytes.length + 3 * (info.length + data.length);
    if (this.scratch.length < bound) {
      this.scratch = Buffer.allocUnsafe(bound * 2);
      this.fields = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.length);
      this.views = [];
    }
    const buffer = this.scratch;
    const fields = this.fields;
    const base = PART_HEADER_BYTES;
    fields.setFloat64(base, publication.offset, true);
    fields.setFloat64(base + 8, publication.time, true);
    fields.setFloat64(base + 16, stream.lastSeq, true);
    let at = base + BODY_FIXED_BYTES;
    buffer.set(stream.bytes, at);
    at += stream.bytes.length;
    const i = info === '' ? 0 : buffer.write(info, at, 'utf8');
    at += i;
    const d = buffer.write(data, at, 'utf8');
    at += d;
    fields.setUint32(base + 24, stream.channelBytes, true);
    fields.setUint32(base + 28, stream.bytes.length - stream.channelBytes, true);
    fields.setUint32(base + 32, i, true);
    fields.setUint32(base + 36, d, true);
    const perPart = this.recordSize - PART_HEADER_BYTES;
    const bodyBytes = at - base;
    const count = Math.ceil(bodyBytes / perPart);
    fields.setUint32(0, FIRST, true);
    fields.setUint32(4, count, true);
    if (count === 1) return (this.views[at] ??= new Uint8Array(buffer.buffer, buffer.byteOffset, at));
    const parts: Uint8Array[] = [];
    for (let index = 0; index < count; index++) {
      const start = base + index * perPart;
      const end = Math.min(at, start + perPart);
      const part = Buffer.allocUnsafe(PART_HEADER_BYTES + end - start);
      writePartHeader(part, 0, index === 0 ? FIRST : CONTINUATION, index === 0 ? count : index);
      buffer.copy(part, PART_HEADER_BYTES, start, end);
      parts.push(part);
    }
    return parts;
  }
}

function writePartHeader(buffer: Buffer, at: number, tag: number, n: number): void {
  buffer[at] = tag;
  buffer[at + 1] = 0;
  buffer.writeUInt16LE(0, at + 2);
  buffer.writeUInt32LE(n, at + 4);
}

/** Bytes to decode bodies from: a reader's copy buffer (one per reader, reused) or a joined multi-part body. */
interface BodySource {
  readonly bytes: Buffer;
  readonly fields: DataView;
}

function sourceOf(buffer: ArrayBufferLike): BodySource {
  return { bytes: Buffer.from(buffer), fields: new DataView(buffer) };
}

/** Decodes the body that starts at byte `at` of `source`. */
function decodeBody({ bytes, fields }: BodySource, at: number): LoggedPublication {
  const c = fields.getUint32(at + 24, true);
  const e = fields.getUint32(at + 28, true);
  const i = fields.getUint32(at + 32, true);
  const d = fields.getUint32(at + 36, true);
  let from = at + BODY_FIXED_BYTES;
  const channel = bytes.toString('utf8', from, (from += c));
  const epoch = bytes.toString('utf8', from, (from += e));
  const info = i === 0 ? undefined : JSON.parse(bytes.toString('utf8', from, from + i));
  from += i;
  const data = bytes.toString('utf8', from, from + d);
  const offset = fields.getFloat64(at, true);
  const time = fields.getFloat64(at + 8, true);
  const publication: Publication = info === undefined ? { channel, offset, epoch, data, time } : { channel, offset, epoch, data, info, time };
  return { publication, prevSeq: fields.getFloat64(at + 16, true) };
}

/**
 * Joins parts back into publications while following a ring. Feed every record in order; a
 * publication whose parts are not all there in sequence (lost to a lap) is dropped.
 */
export class RecordAssembler {
  private parts: Buffer[] = [];
  private expected = 0;
  private firstSeq = -1;
  private source: BodySource | null = null;
  /** Sequence of the first part of the publication push() returned last. */
  completedAt = -1;

  /** The publication this record completes, or null. */
  push(payload: Uint8Array, seq: number): LoggedPublication | null {
    if (this.source === null || this.source.bytes.buffer !== payload.buffer) this.source = sourceOf(payload.buffer);
    const at = payload.byteOffset;
    const tag = payload[0];
    const n = this.source.fields.getUint32(at + 4, true);
    if (tag === FIRST) {
      if (n === 1) {
        this.reset();
        this.completedAt = seq;
        return decodeBody(this.source, at + PART_HEADER_BYTES);
      }
      this.parts = [Buffer.from(payload.subarray(PART_HEADER_BYTES))];
      this.expected = n;
      this.firstSeq = seq;
      return null;
    }
    if (tag !== CONTINUATION || this.parts.length !== n || seq !== this.firstSeq + n) {
      this.reset(); // a continuation without its start: its publication was lost
      return null;
    }
    this.parts.push(Buffer.from(payload.subarray(PART_HEADER_BYTES)));
    if (this.parts.length < this.expected) return null;
    const body = Buffer.concat(this.parts);
    this.completedAt = this.firstSeq;
    this.reset();
    return decodeBody(sourceOf(body.buffer), body.byteOffset);
  }

  reset(): void {
    this.parts = [];
    this.expected = 0;
    this.firstSeq = -1;
  }
}

/**
 * Reads the publication whose first part is at `seq`, or null when the ring no longer
 * holds it whole (overwritten) or `seq` is not a first part. O(parts).
 */
export function readPublicationAt(reader: RingReader, seq: number): LoggedPublication | null {
  const assembler = new RecordAssembler();
  let next = seq;
  let done: LoggedPublication | null = null;
  let broken = false;
  reader.seek(seq);
  while (done === null && !broken) {
    const result = reader.read((payload, at) => {
      if (at !== next || (at === seq && payload[0] !== FIRST)) {
        broken = true;
        return;
      }
      next++;
      done = assembler.push(payload, at);
    }, 1);
    if (result.read === 0 || result.lost > 0) broken = true;
  }
  return done;
}

/**
 * Calls `onPublication` for every whole publication in [from, to) of the ring, in order
 * (a publication whose first parts the ring's tail cut off is skipped). Returns where it stopped.
 */
export function scanRing(reader: RingReader, from: number, to: number, onPublication: (logged: LoggedPublication, seq: number) => void): number {
  const assembler = new RecordAssembler();
  reader.seek(from);
  while (reader.position < to) {
    const result = reader.read((payload, seq) => {
      const done = assembler.push(payload, seq);
      if (done !== null) onPublication(done, assembler.completedAt);
    }, to - reader.position);
    if (result.read === 0 && result.lost === 0) break;
  }
  return reader.position;
}
