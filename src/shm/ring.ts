// SharedRing: one writer appends fixed-size records to a cyclic buffer in shared memory;
// any number of readers in any process read them by sequence number, with no copy per
// reader and no round trip to the writer. The oldest records are overwritten; a reader
// that falls more than `capacity` behind is told how many it lost.
//
// Layout (bytes, little-endian; docs/shm.md has the full table):
//   0 magic 'KBRG'   4 version   8 recordSize   12 capacity   16 slotSize   20 epoch
//   24 writer pid    32 head (int64: records < head are complete)
//   40 tail (int64: records < tail may be overwritten; the writer raises it *before* overwriting)
//   64 slots: capacity x slotSize bytes, each [0 stamp][4 length][8 payload: recordSize bytes]
// A slot's stamp is 2*seq+1 while the writer fills it and 2*seq+2 once done (mod 2^32), so a
// reader that sees the same finished stamp before and after copying knows the copy is whole.
import { KoboldError } from '../errors.js';
import { PLAIN_ACCESS_IS_ORDERED, isProcessAlive, checkInteger, layoutError, openStructure, optionError, unlinkSegment, type SegmentName, type SegmentOptions } from './segment.js';

const RING = { label: 'ring', magic: 0x4b425247, version: 1 } as const;
const HEADER_BYTES = 64;
const W_RECORD_SIZE = 2;
const W_CAPACITY = 3;
const W_SLOT_SIZE = 4;
const W_EPOCH = 5;
const W_WRITER = 6;
const B_HEAD = 4; // BigInt64 index of byte 32
const B_TAIL = 5; // BigInt64 index of byte 40
const SLOT_HEADER_BYTES = 8;
const MAX_RECORD_SIZE = 1 << 20;
const MAX_CAPACITY = 1 << 26;
/** Readers keep a ready-made view for each payload length below this. */
const VIEW_CACHE_LENGTHS = 512;

export interface RingOptions extends SegmentOptions {
  /** Largest payload of one record, in bytes: a multiple of 8. Only used when creating. */
  recordSize: number;
  /** Number of records kept: a power of two. Only used when creating. */
  capacity: number;
  /** Copy payloads word by word with Atomics (the default off x86). */
  atomicCopy?: boolean;
}

export interface RingOpenOptions extends SegmentOptions {
  atomicCopy?: boolean;
}

/** Where a new reader starts: 'latest' (only records written from now on), 'oldest', or a sequence number. */
export type ReadFrom = 'latest' | 'oldest' | number;

export interface ReadResult {
  /** Records delivered to the callback. */
  read: number;
  /** Records skipped because the writer overwrote them before this reader got to them. */
  lost: number;
  /** When lost > 0: the oldest sequence still valid, where reading resumed. Otherwise -1. */
  resumedAt: number;
}

/** Called once per record; `payload` is only valid during the call (copy it to keep it). */
export type RecordHandler = (payload: Uint8Array, seq: number) => void;

export class SharedRing {
  readonly name: string;
  readonly recordSize: number;
  readonly capacity: number;
  /** Random number chosen when the ring was created: a changed epoch means a new ring. */
  readonly epoch: number;
  readonly #buffer: ArrayBuffer;
  readonly #words: Int32Array;
  readonly #counters: BigInt64Array;
  readonly #atomicCopy: boolean;

  private constructor(name: string, buffer: ArrayBuffer, atomicCopy: boolean | undefined) {
    this.name = name;
    this.#buffer = buffer;
    this.#words = new Int32Array(buffer);
    this.#counters = new BigInt64Array(buffer, 0, HEADER_BYTES / 8);
    this.recordSize = this.#words[W_RECORD_SIZE];
    this.capacity = this.#words[W_CAPACITY];
    this.epoch = this.#words[W_EPOCH] >>> 0;
    this.#atomicCopy = atomicCopy ?? !PLAIN_ACCESS_IS_ORDERED;
    if (this.#words[W_SLOT_SIZE] !== SLOT_HEADER_BYTES + this.recordSize || buffer.byteLength < HEADER_BYTES + this.capacity * this.#words[W_SLOT_SIZE]) {
      throw layoutError(name, RING, 'its header does not match its size');
    }
  }

  /** Opens the ring, creating it when it does not exist. An existing ring must have the same geometry. */
  static create(name: SegmentName, options: RingOptions): SharedRing {
    const recordSize = checkInteger('recordSize', options.recordSize, 8, MAX_RECORD_SIZE);
    if (recordSize % 8 !== 0) throw optionError('recordSize', `must be a multiple of 8, got ${recordSize}`);
    const capacity = checkInteger('capacity', options.capacity, 2, MAX_CAPACITY);
    if ((capacity & (capacity - 1)) !== 0) throw optionError('capacity', `must be a power of two, got ${capacity}`);
    const slotSize = SLOT_HEADER_BYTES + recordSize;
    const buffer = openStructure(name, RING, {
      size: HEADER_BYTES + capacity * slotSize,
      init(buffer) {
        const words = new Int32Array(buffer, 0, HEADER_BYTES / 4);
        words[1] = RING.version;
        words[W_RECORD_SIZE] = recordSize;
        words[W_CAPACITY] = capacity;
        words[W_SLOT_SIZE] = slotSize;
        words[W_EPOCH] = (Math.random() * 0xffffffff) | 1;
        Atomics.store(words, 0, RING.magic);
      },
    }, options);
    const ring = new SharedRing(name, buffer, options.atomicCopy);
    if (ring.recordSize !== recordSize || ring.capacity !== capacity) {
      throw layoutError(name, RING, `it exists with recordSize ${ring.recordSize} and capacity ${ring.capacity}`);
    }
    return ring;
  }

  /** Attaches to an existing ring; its geometry comes from its header. */
  static open(name: SegmentName, options: RingOpenOptions = {}): SharedRing {
    return new SharedRing(name, openStructure(name, RING, undefined, options), options.atomicCopy);
  }

  /** Removes the ring's name; processes that opened it keep using it. */
  static unlink(name: SegmentName, options: SegmentOptions = {}): boolean {
    return unlinkSegment(name, options);
  }

  /** Next sequence number to be written; every record below it is complete. */
  get head(): number {
    return Number(Atomics.load(this.#counters, B_HEAD));
  }

  /** Oldest sequence number that is still readable (once the ring has filled: head - capacity or more). */
  get tail(): number {
    return Number(Atomics.load(this.#counters, B_TAIL));
  }

  /** Pid of the live writer, or 0. */
  get writerPid(): number {
    return Atomics.load(this.#words, W_WRITER);
  }

  /**
   * Becomes the ring's one writer. Throws KOBOLD_ERR_SHM_WRITER_BUSY while another live
   * process (or another writer in this one) holds it; a dead writer's claim is taken over.
   */
  writer(): RingWriter {
    for (;;) {
      const holder = Atomics.load(this.#words, W_WRITER);
      // Our own pid with no writer of ours open is a claim left by an earlier boot (file-backed rings).
      const busy = holder === process.pid ? writersInThisProcess.has(this.name) : holder !== 0 && isProcessAlive(holder);
      if (busy) throw new KoboldError('KOBOLD_ERR_SHM_WRITER_BUSY', { segment: this.name, pid: holder });
      if (Atomics.compareExchange(this.#words, W_WRITER, holder, process.pid) === holder) {
        writersInThisProcess.add(this.name);
        return new RingWriter(this, this.#buffer, this.#atomicCopy, () => writersInThisProcess.delete(this.name));
      }
    }
  }

  reader(options: { from?: ReadFrom } = {}): RingReader {
    return new RingReader(this, this.#buffer, options.from ?? 'latest', this.#atomicCopy);
  }
}

/** Names of the rings this process holds an open writer for. */
const writersInThisProcess = new Set<string>();

function doneStamp(seq: number): number {
  return ((seq % 0x80000000) * 2 + 2) | 0;
}

function slotOffset(ring: SharedRing, seq: number): number {
  return HEADER_BYTES + (seq % ring.capacity) * (SLOT_HEADER_BYTES + ring.recordSize);
}

export class RingWriter {
  readonly #ring: SharedRing;
  readonly #bytes: Uint8Array;
  readonly #words: Int32Array;
  readonly #counters: BigInt64Array;
  readonly #scratch: Uint8Array;
  readonly #scratchWords: Int32Array;
  readonly #atomicCopy: boolean;
  readonly #encoder = new TextEncoder();
  #head: number;
  #tail: number;
  #closed = false;

  readonly #onClose: () => void;

  /** @internal use SharedRing.writer() */
  constructor(ring: SharedRing, buffer: ArrayBuffer, atomicCopy: boolean, onClose: () => void) {
    this.#ring = ring;
    this.#onClose = onClose;
    this.#bytes = new Uint8Array(buffer);
    this.#words = new Int32Array(buffer);
    this.#counters = new BigInt64Array(buffer, 0, HEADER_BYTES / 8);
    this.#scratchWords = new Int32Array(ring.recordSize >> 2);
    this.#scratch = new Uint8Array(this.#scratchWords.buffer);
    this.#atomicCopy = atomicCopy;
    this.#head = ring.head;
    this.#tail = ring.tail;
  }

  /** Appends one record and publishes it; returns its sequence number. */
  write(payload: Uint8Array | string): number {
    this.#checkSize(payload);
    const seq = this.#head;
    this.#reserve(seq + 1);
    this.#fill(seq, payload);
    this.#publish(seq + 1);
    return seq;
  }

  /**
   * Appends many records with one publication per `capacity` records; returns the first
   * sequence number. Sizes are checked first: on error nothing is written.
   */
  writeMany(payloads: readonly (Uint8Array | string)[]): number {
    for (const payload of payloads) this.#checkSize(payload);
    const first = this.#head;
    const chunk = this.#ring.capacity;
    for (let start = 0; start < payloads.length; start += chunk) {
      const end = Math.min(payloads.length, start + chunk);
      this.#reserve(first + end);
      for (let i = start; i < end; i++) this.#fill(first + i, payloads[i]);
      this.#publish(first + end);
    }
    return first;
  }

  /** Gives up the writer role so another process can take it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.compareExchange(this.#words, W_WRITER, process.pid, 0);
    this.#onClose();
  }

  #checkSize(payload: Uint8Array | string): void {
    const limit = this.#ring.recordSize;
    if (this.#closed) throw new KoboldError('KOBOLD_ERR_SHM_OPTION', { option: 'writer', reason: 'this writer was closed' });
    const size = typeof payload === 'string' ? (payload.length * 3 <= limit ? 0 : Buffer.byteLength(payload)) : payload.byteLength;
    if (size > limit) throw new KoboldError('KOBOLD_ERR_SHM_TOO_LARGE', { size, limit, segment: this.#ring.name });
  }

  /** Raises the tail before overwriting, so readers never trust a slot being rewritten. */
  #reserve(newHead: number): void {
    const tail = newHead - this.#ring.capacity;
    if (tail > this.#tail) {
      this.#tail = tail;
      Atomics.store(this.#counters, B_TAIL, BigInt(tail));
    }
  }

  #publish(head: number): void {
    this.#head = head;
    Atomics.store(this.#counters, B_HEAD, BigInt(head));
  }

  #fill(seq: number, payload: Uint8Array | string): void {
    const offset = slotOffset(this.#ring, seq);
    const stampIndex = offset >> 2;
    const stamp = doneStamp(seq);
    Atomics.store(this.#words, stampIndex, stamp - 1);
    let length: number;
    if (this.#atomicCopy) {
      length = typeof payload === 'string' ? this.#encoder.encodeInto(payload, this.#scratch).written : (this.#scratch.set(payload), payload.byteLength);
      const base = stampIndex + 2;
      for (let w = 0, n = (length + 3) >> 2; w < n; w++) Atomics.store(this.#words, base + w, this.#scratchWords[w]);
    } else if (typeof payload === 'string') {
      const start = offset + SLOT_HEADER_BYTES;
      length = this.#encoder.encodeInto(payload, this.#bytes.subarray(start, start + this.#ring.recordSize)).written;
    } else {
      this.#bytes.set(payload, offset + SLOT_HEADER_BYTES);
      length = payload.byteLength;
    }
    this.#words[stampIndex + 1] = length;
    Atomics.store(this.#words, stampIndex, stamp);
  }
}

export class RingReader {
  readonly #ring: SharedRing;
  readonly #words: Int32Array;
  readonly #counters: BigInt64Array;
  readonly #scratch: Uint8Array;
  readonly #scratchWords: Int32Array;
  readonly #atomicCopy: boolean;
  readonly #views: Uint8Array[] = [];
  #position: number;

  /** @internal use SharedRing.reader() */
  constructor(ring: SharedRing, buffer: ArrayBuffer, from: ReadFrom, atomicCopy: boolean) {
    this.#ring = ring;
    this.#words = new Int32Array(buffer);
    this.#counters = new BigInt64Array(buffer, 0, HEADER_BYTES / 8);
    this.#scratchWords = new Int32Array(ring.recordSize >> 2);
    this.#scratch = new Uint8Array(this.#scratchWords.buffer);
    this.#atomicCopy = atomicCopy;
    this.#position = from === 'latest' ? ring.head : from === 'oldest' ? ring.tail : from;
  }

  /** Sequence number of the next record this reader will read. */
  get position(): number {
    return this.#position;
  }

  /** Moves to a sequence number (O(1)); a position already overwritten is reported as lost by the next read. */
  seek(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0) throw optionError('seq', `must be a non-negative integer, got ${seq}`);
    this.#position = seq;
  }

  /** Records written but not yet read by this reader (ignoring any it will find lost). */
  get backlog(): number {
    return Math.max(0, Number(Atomics.load(this.#counters, B_HEAD)) - this.#position);
  }

  /**
   * Reads up to `max` records from the current position, calling onRecord for each in order.
   * Records overwritten before they could be read are skipped and counted in `lost`.
   */
  read(onRecord: RecordHandler, max = Infinity): ReadResult {
    const ring = this.#ring;
    const words = this.#words;
    const recordSize = ring.recordSize;
    const head = Number(Atomics.load(this.#counters, B_HEAD));
    let position = this.#position;
    let read = 0;
    let lost = 0;
    let resumedAt = -1;
    while (position < head && read < max) {
      const stampIndex = slotOffset(ring, position) >> 2;
      const expected = doneStamp(position);
      if (Atomics.load(words, stampIndex) === expected) {
        const length = words[stampIndex + 1];
        if (length >= 0 && length <= recordSize) {
          this.#copyOut(stampIndex + 2, (length + 3) >> 2);
          if (Atomics.load(words, stampIndex) === expected) {
            this.#position = ++position;
            read++;
            onRecord(this.#view(length), position - 1);
            continue;
          }
        }
      }
      // The slot no longer holds `position`: the writer overwrote it, and raised the tail first.
      const tail = Number(Atomics.load(this.#counters, B_TAIL));
      const resume = tail > position ? tail : position + 1;
      lost += resume - position;
      resumedAt = resume;
      this.#position = position = resume;
    }
    return { read, lost, resumedAt };
  }

  /** The scratch buffer's first `length` bytes; views of short lengths are made once and reused. */
  #view(length: number): Uint8Array {
    if (length >= VIEW_CACHE_LENGTHS) return this.#scratch.subarray(0, length);
    return (this.#views[length] ??= this.#scratch.subarray(0, length));
  }

  #copyOut(firstWord: number, count: number): void {
    const target = this.#scratchWords;
    const words = this.#words;
    if (this.#atomicCopy) {
      for (let w = 0; w < count; w++) target[w] = Atomics.load(words, firstWord + w);
    } else {
      for (let w = 0; w < count; w++) target[w] = words[firstWord + w];
    }
  }
}
