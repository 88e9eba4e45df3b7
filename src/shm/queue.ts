// SharedQueue: a bounded message queue in shared memory with System V semantics: every
// message has a positive type, and a receiver asks for type 0 (the oldest message),
// N (the oldest of type N) or -N (the oldest of the lowest type <= N).
//
// Messages sit in fixed slots, linked in arrival order; one lock word guards the lists.
// Every send bumps a counter that receivers futex-wait on, and every receive one that
// blocked senders wait on, so waiting never polls and never blocks the event loop.
//
// Layout (bytes; docs/shm.md has the full table):
//   0 magic 'KBMQ'  4 version  8 capacity  12 maxMessageBytes  16 slotSize  20 lock
//   24 count  28 sends  32 receives  36 receive sleepers  40 send sleepers
//   44 first (oldest message's slot, -1)  48 last  52 free list  56 next sequence
//   64 slots: [0 state][4 next][8 type][12 length][16 sequence][20 reserved][24 payload]
import { KoboldError } from '../errors.js';
import { lockWord, unlockWord } from './lock.js';
import type { ShmNative } from './native.js';
import { alignUp, checkInteger, layoutError, openStructure, requireNative, unlinkSegment, type SegmentName, type SegmentOptions } from './segment.js';

const QUEUE = { label: 'queue', magic: 0x4b424d51, version: 1 } as const;
const HEADER_BYTES = 64;
const W_CAPACITY = 2;
const W_MAX_BYTES = 3;
const W_SLOT_SIZE = 4;
const W_LOCK = 5;
const W_COUNT = 6;
const W_SENDS = 7;
const W_RECEIVES = 8;
const W_RECEIVE_SLEEPERS = 9;
const W_SEND_SLEEPERS = 10;
const W_FIRST = 11;
const W_LAST = 12;
const W_FREE = 13;
const W_NEXT_SEQ = 14;
const SLOT_HEADER_BYTES = 24;
const F_STATE = 0;
const F_NEXT = 1;
const F_TYPE = 2;
const F_LENGTH = 3;
const F_SEQ = 4;
const FREE = 0;
const READY = 1;
const NONE = -1;
const WAKE_ALL = 0x7fffffff;
/** Waits re-check at least this often, in case a process died between its change and its wake. */
const MAX_SLEEP_MS = 1000;

export interface QueueOptions extends SegmentOptions {
  /** Messages the queue holds before send() waits or trySend() throws. Default 1024. */
  capacity?: number;
  /** Largest payload in bytes. Default 4096. */
  maxMessageBytes?: number;
}

export interface WaitOptions {
  /** Give up after this long. Default: wait until a message (or room) comes. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface QueueMessage {
  type: number;
  payload: Buffer;
}

const encoder = new TextEncoder();

export class SharedQueue {
  readonly name: string;
  readonly capacity: number;
  readonly maxMessageBytes: number;
  readonly #native: ShmNative;
  readonly #buffer: ArrayBuffer;
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #slotWords: number;

  private constructor(name: string, native: ShmNative, buffer: ArrayBuffer) {
    this.name = name;
    this.#native = native;
    this.#buffer = buffer;
    this.#words = new Int32Array(buffer);
    this.#bytes = new Uint8Array(buffer);
    this.capacity = this.#words[W_CAPACITY];
    this.maxMessageBytes = this.#words[W_MAX_BYTES];
    this.#slotWords = this.#words[W_SLOT_SIZE] >> 2;
    if (this.#slotWords * 4 !== slotSize(this.maxMessageBytes) || buffer.byteLength < HEADER_BYTES + this.capacity * this.#slotWords * 4) {
      throw layoutError(name, QUEUE, 'its header does not match its size');
    }
  }

  /** Opens the queue, creating it when it does not exist; an existing queue must have the same geometry. */
  static create(name: SegmentName, options: QueueOptions = {}): SharedQueue {
    const capacity = checkInteger('capacity', options.capacity ?? 1024, 1, 1 << 20);
    const maxMessageBytes = checkInteger('maxMessageBytes', options.maxMessageBytes ?? 4096, 1, 1 << 24);
    const size = slotSize(maxMessageBytes);
    const buffer = openStructure(name, QUEUE, {
      size: HEADER_BYTES + capacity * size,
      init(buffer) {
        const words = new Int32Array(buffer);
        words[1] = QUEUE.version;
        words[W_CAPACITY] = capacity;
        words[W_MAX_BYTES] = maxMessageBytes;
        words[W_SLOT_SIZE] = size;
        words[W_FIRST] = NONE;
        words[W_LAST] = NONE;
        words[W_FREE] = 0;
        for (let slot = 0; slot < capacity; slot++) words[(HEADER_BYTES + slot * size) / 4 + F_NEXT] = slot + 1 < capacity ? slot + 1 : NONE;
        Atomics.store(words, 0, QUEUE.magic);
      },
    }, options);
    const queue = new SharedQueue(name, requireNative(options), buffer);
    if (queue.capacity !== capacity || queue.maxMessageBytes !== maxMessageBytes) {
      throw layoutError(name, QUEUE, `it exists with capacity ${queue.capacity} and maxMessageBytes ${queue.maxMessageBytes}`);
    }
    return queue;
  }

  /** Attaches to an existing queue. */
  static open(name: SegmentName, options: SegmentOptions = {}): SharedQueue {
    return new SharedQueue(name, requireNative(options), openStructure(name, QUEUE, undefined, options));
  }

  static unlink(name: SegmentName, options: SegmentOptions = {}): boolean {
    return unlinkSegment(name, options);
  }

  /** Messages waiting (a snapshot). */
  get size(): number {
    return Atomics.load(this.#words, W_COUNT);
  }

  /** Sends without waiting; throws KOBOLD_ERR_SHM_QUEUE_FULL when the queue is full. */
  trySend(type: number, payload: Uint8Array | string): void {
    if (!this.#send(type, toBytes(payload, this))) throw this.#fullError();
  }

  /** Sends, waiting for room while the queue is full; rejects with KOBOLD_ERR_SHM_QUEUE_FULL on timeout. */
  async send(type: number, payload: Uint8Array | string, options: WaitOptions = {}): Promise<void> {
    const bytes = toBytes(payload, this);
    const sent = await this.#waitFor(W_RECEIVES, W_SEND_SLEEPERS, options, () => this.#send(type, bytes) || undefined);
    if (sent === undefined) throw this.#fullError();
  }

  /** Takes a matching message if there is one: type 0 = any, N = exactly N, -N = lowest type <= N. */
  tryReceive(type = 0): QueueMessage | undefined {
    checkType(type, true);
    const message = this.#locked(() => {
      const [slot, previous] = this.#match(type);
      return slot === NONE ? undefined : this.#take(slot, previous);
    });
    if (message !== undefined) this.#signal(W_RECEIVES, W_SEND_SLEEPERS);
    return message;
  }

  /** Waits for a matching message; resolves undefined on timeout or abort. */
  receive(type = 0, options: WaitOptions = {}): Promise<QueueMessage | undefined> {
    checkType(type, true);
    return this.#waitFor(W_SENDS, W_RECEIVE_SLEEPERS, options, () => this.tryReceive(type));
  }

  // --- internals

  #send(type: number, payload: Uint8Array): boolean {
    checkType(type, false);
    const words = this.#words;
    const sent = this.#locked(() => {
      const slot = words[W_FREE];
      if (slot === NONE) return false;
      const base = this.#slotBase(slot);
      words[W_FREE] = words[base + F_NEXT];
      words[base + F_TYPE] = type;
      words[base + F_LENGTH] = payload.byteLength;
      words[base + F_SEQ] = words[W_NEXT_SEQ];
      words[W_NEXT_SEQ] = (words[W_NEXT_SEQ] + 1) | 0;
      words[base + F_NEXT] = NONE;
      this.#bytes.set(payload, base * 4 + SLOT_HEADER_BYTES);
      words[base + F_STATE] = READY;
      const last = words[W_LAST];
      if (last === NONE) words[W_FIRST] = slot;
      else words[this.#slotBase(last) + F_NEXT] = slot;
      words[W_LAST] = slot;
      words[W_COUNT]++;
      return true;
    });
    if (sent) this.#signal(W_SENDS, W_RECEIVE_SLEEPERS);
    return sent;
  }

  /** The first slot in arrival order that matches `type`, and the slot before it. */
  #match(type: number): [number, number] {
    const words = this.#words;
    let best = NONE;
    let bestPrevious = NONE;
    let bestType = 0;
    let previous = NONE;
    for (let slot = words[W_FIRST]; slot !== NONE; previous = slot, slot = words[this.#slotBase(slot) + F_NEXT]) {
      const slotType = words[this.#slotBase(slot) + F_TYPE];
      if (type === 0 || slotType === type) return [slot, previous];
      if (type < 0 && slotType <= -type && (best === NONE || slotType < bestType)) {
        best = slot;
        bestPrevious = previous;
        bestType = slotType;
      }
    }
    return [best, bestPrevious];
  }

  #take(slot: number, previous: number): QueueMessage {
    const words = this.#words;
    const base = this.#slotBase(slot);
    const start = base * 4 + SLOT_HEADER_BYTES;
    const message = {
      type: words[base + F_TYPE],
      payload: Buffer.from(this.#bytes.subarray(start, start + words[base + F_LENGTH])),
    };
    const next = words[base + F_NEXT];
    if (previous === NONE) words[W_FIRST] = next;
    else words[this.#slotBase(previous) + F_NEXT] = next;
    if (words[W_LAST] === slot) words[W_LAST] = previous;
    words[base + F_STATE] = FREE;
    words[base + F_NEXT] = words[W_FREE];
    words[W_FREE] = slot;
    words[W_COUNT]--;
    return message;
  }

  /** Bumps a counter and wakes the processes sleeping on it, if any. */
  #signal(counter: number, sleepers: number): void {
    Atomics.add(this.#words, counter, 1);
    if (Atomics.load(this.#words, sleepers) > 0) this.#native.wake(this.#buffer, counter * 4, WAKE_ALL);
  }

  /**
   * Retries `attempt` each time `counter` moves until it returns a value, the timeout passes
   * or the signal aborts. Reads the counter before each attempt, so no change is missed.
   */
  async #waitFor<T>(counter: number, sleepers: number, options: WaitOptions, attempt: () => T | undefined): Promise<T | undefined> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const signal = options.signal;
    // Bump the counter before waking: a waiter whose thread has not reached futex_wait yet
    // would otherwise sleep through the wake.
    const onAbort = (): void => this.#signal(counter, sleepers);
    signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        const seen = Atomics.load(this.#words, counter);
        const result = attempt();
        if (result !== undefined) return result;
        const remaining = deadline - Date.now();
        if (remaining <= 0 || signal?.aborted) return undefined;
        Atomics.add(this.#words, sleepers, 1);
        try {
          await this.#native.waitAsync(this.#buffer, counter * 4, seen, Math.min(remaining, MAX_SLEEP_MS));
        } finally {
          Atomics.sub(this.#words, sleepers, 1);
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Runs fn under the queue's lock; a lock taken from a dead holder first rebuilds the lists. */
  #locked<T>(fn: () => T): T {
    if (lockWord(this.#native, this.#words, W_LOCK)) this.#rebuild();
    try {
      return fn();
    } finally {
      unlockWord(this.#native, this.#words, W_LOCK);
    }
  }

  /** Rebuilds the message and free lists from the slots' states, messages in sequence order. */
  #rebuild(): void {
    const words = this.#words;
    const nextSeq = words[W_NEXT_SEQ];
    const ready: number[] = [];
    let free = NONE;
    for (let slot = this.capacity - 1; slot >= 0; slot--) {
      const base = this.#slotBase(slot);
      if (words[base + F_STATE] === READY) ready.push(slot);
      else {
        words[base + F_NEXT] = free;
        free = slot;
      }
    }
    // Sequences wrap at 2^32; all live ones are within `capacity` of the next one.
    ready.sort((a, b) => ((words[this.#slotBase(a) + F_SEQ] - nextSeq) | 0) - ((words[this.#slotBase(b) + F_SEQ] - nextSeq) | 0));
    for (let i = 0; i < ready.length; i++) words[this.#slotBase(ready[i]) + F_NEXT] = i + 1 < ready.length ? ready[i + 1] : NONE;
    words[W_FIRST] = ready.length > 0 ? ready[0] : NONE;
    words[W_LAST] = ready.length > 0 ? ready[ready.length - 1] : NONE;
    words[W_FREE] = free;
    words[W_COUNT] = ready.length;
  }

  #slotBase(slot: number): number {
    return (HEADER_BYTES >> 2) + slot * this.#slotWords;
  }

  #fullError(): KoboldError {
    return new KoboldError('KOBOLD_ERR_SHM_QUEUE_FULL', { segment: this.name, capacity: this.capacity });
  }
}

function slotSize(maxMessageBytes: number): number {
  return alignUp(SLOT_HEADER_BYTES + maxMessageBytes, 8);
}

function toBytes(payload: Uint8Array | string, queue: SharedQueue): Uint8Array {
  const bytes = typeof payload === 'string' ? encoder.encode(payload) : payload;
  if (bytes.byteLength > queue.maxMessageBytes) {
    throw new KoboldError('KOBOLD_ERR_SHM_TOO_LARGE', { size: bytes.byteLength, limit: queue.maxMessageBytes, segment: queue.name });
  }
  return bytes;
}

function checkType(type: number, forReceive: boolean): void {
  const valid = Number.isInteger(type) && type <= 0x7fffffff && (forReceive ? type >= -0x7fffffff : type > 0);
  if (!valid) {
    throw new KoboldError('KOBOLD_ERR_SHM_OPTION', { option: 'type', reason: `${forReceive ? 'a receive type is an integer' : 'a message type is a positive integer'} up to 2^31-1, got ${type}` });
  }
}
