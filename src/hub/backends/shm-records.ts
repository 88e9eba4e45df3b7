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

/** An upper bound of a publication's body size, known before the writer assigns its epoch. */
export function bodyBytesBound(channel: string, data: string, info: string): number {
  return BODY_FIXED_BYTES + EPOCH_BYTES_BOUND + Buffer.byteLength(channel) + Buffer.byteLength(data) + Buffer.byteLength(info);
}

/** Encodes publications into ring parts, reusing one buffer for the common one-part case. */
export class RecordEncoder {
  private scratch = Buffer.allocUnsafe(4096);

  constructor(private readonly recordSize: number) {}

  /** The parts of one publication, valid until the next call. */
  encode(publication: Publication, prevSeq: number, info: string): Uint8Array[] {
    const { channel, epoch, data } = publication;
    const bound = PART_HEADER_BYTES + BODY_FIXED_BYTES + 3 * (channel.length + epoch.length + info.length + data.length);
    if (this.scratch.length < bound) this.scratch = Buffer.allocUnsafe(bound * 2);
    const buffer = this.scratch;
    const base = PART_HEADER_BYTES;
    buffer.writeDoubleLE(publication.offset, base);
    buffer.writeDoubleLE(publication.time, base + 8);
    buffer.writeDoubleLE(prevSeq, base + 16);
    let at = base + BODY_FIXED_BYTES;
    const c = buffer.write(channel, at, 'utf8');
    at += c;
    const e = buffer.write(epoch, at, 'utf8');
    at += e;
    const i = info === '' ? 0 : buffer.write(info, at, 'utf8');
    at += i;
    const d = buffer.write(data, at, 'utf8');
    at += d;
    buffer.writeUInt32LE(c, base + 24);
    buffer.writeUInt32LE(e, base + 28);
    buffer.writeUInt32LE(i, base + 32);
    buffer.writeUInt32LE(d, base + 36);
    const perPart = this.recordSize - PART_HEADER_BYTES;
    const bodyBytes = at - base;
    const count = Math.ceil(bodyBytes / perPart);
    writePartHeader(buffer, 0, FIRST, count);
    if (count === 1) return [buffer.subarray(0, at)];
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

/** Decodes a whole body (a Buffer holding exactly one). */
export function decodeBody(body: Buffer): LoggedPublication {
  const c = body.readUInt32LE(24);
  const e = body.readUInt32LE(28);
  const i = body.readUInt32LE(32);
  const d = body.readUInt32LE(36);
  let at = BODY_FIXED_BYTES;
  const channel = body.toString('utf8', at, (at += c));
  const epoch = body.toString('utf8', at, (at += e));
  const info = i === 0 ? undefined : JSON.parse(body.toString('utf8', at, at + i));
  at += i;
  const data = body.toString('utf8', at, at + d);
  const offset = body.readDoubleLE(0);
  const time = body.readDoubleLE(8);
  const publication: Publication = info === undefined ? { channel, offset, epoch, data, time } : { channel, offset, epoch, data, info, time };
  return { publication, prevSeq: body.readDoubleLE(16) };
}

/**
 * Joins parts back into bodies while following a ring. Feed every record in order; after a
 * gap (records lost to a lap), call reset() so a half-read publication is dropped.
 */
export class RecordAssembler {
  private parts: Buffer[] = [];
  private expected = 0;
  private firstSeq = -1;

  /** The body completed by this record and the sequence of its first part, or null. */
  push(payload: Uint8Array, seq: number): { body: Buffer; seq: number } | null {
    const record = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const tag = record[0];
    const n = record.readUInt32LE(4);
    if (tag === FIRST) {
      if (n === 1) {
        this.reset();
        return { body: record.subarray(PART_HEADER_BYTES), seq };
      }
      this.parts = [Buffer.from(record.subarray(PART_HEADER_BYTES))];
      this.expected = n;
      this.firstSeq = seq;
      return null;
    }
    if (tag !== CONTINUATION || this.parts.length !== n || seq !== this.firstSeq + n) {
      this.reset(); // a continuation without its start: its publication was lost
      return null;
    }
    this.parts.push(Buffer.from(record.subarray(PART_HEADER_BYTES)));
    if (this.parts.length < this.expected) return null;
    const body = Buffer.concat(this.parts);
    const first = this.firstSeq;
    this.reset();
    return { body, seq: first };
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
  let done: { body: Buffer; seq: number } | null = null;
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
  return done === null ? null : decodeBody((done as { body: Buffer }).body);
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
      if (done !== null) onPublication(decodeBody(done.body), done.seq);
    }, to - reader.position);
    if (result.read === 0 && result.lost === 0) break;
  }
  return reader.position;
}
