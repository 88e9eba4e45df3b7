// SharedTable: a fixed-capacity hash table in shared memory with a fixed row schema of
// int, float and string columns (like Swoole's Table), used by every process at once.
//
// The slots are split into stripes of up to 256; a key hashes to one stripe and probes
// linearly inside it. Each stripe has a lock word (writers: set, delete, increment) and
// a version counter that writers make odd while they change the stripe, so readers copy a
// row without locking and retry if the version moved (a seqlock).
//
// Layout (bytes; docs/shm.md has the full table):
//   0 magic 'KBTB'  4 version  8 capacity  12 slots  16 stripeSlots  20 rowSize  24 rows in use
//   28 keyMaxBytes  32 schema length   64 schema (JSON, 2048 bytes)
//   2112 stripes: 16 bytes each [lock][version][rows in use][reserved]
//   then the rows, rowSize bytes each: [0 state][4 hash][8 key length][12 key bytes][columns, 8-aligned]
// A deleted row becomes a tombstone (state 2) that later inserts reuse, so rows never move.
import { KoboldError } from '../errors.js';
import { lockWord, unlockWord } from './lock.js';
import type { ShmNative } from './native.js';
import {
  PLAIN_ACCESS_IS_ORDERED, alignUp, checkInteger, layoutError, openStructure, optionError, requireNative, unlinkSegment,
  type SegmentName, type SegmentOptions,
} from './segment.js';

export type ColumnSpec = { type: 'int' } | { type: 'float' } | { type: 'string'; maxBytes: number };
export type TableSchema = Record<string, ColumnSpec>;
/** A row as get() returns it: numbers for int and float columns, strings for string columns. */
export type Row<S extends TableSchema> = { [K in keyof S]: S[K] extends { type: 'string' } ? string : number };
/** Numeric column names of a schema. */
export type NumericColumn<S extends TableSchema> = { [K in keyof S]: S[K] extends { type: 'string' } ? never : K }[keyof S] & string;

export interface TableOptions<S extends TableSchema> extends SegmentOptions {
  /** Rows the table must hold. Only used when creating. */
  capacity: number;
  columns: S;
  /** Longest key in UTF-8 bytes. Default 64. */
  keyMaxBytes?: number;
}

const TABLE = { label: 'table', magic: 0x4b425442, version: 1 } as const;
const W_CAPACITY = 2;
const W_SLOTS = 3;
const W_STRIPE_SLOTS = 4;
const W_ROW_SIZE = 5;
const W_COUNT = 6;
const W_KEY_MAX = 7;
const W_SCHEMA_LENGTH = 8;
const SCHEMA_OFFSET = 64;
const SCHEMA_BYTES = 2048;
const STRIPES_OFFSET = SCHEMA_OFFSET + SCHEMA_BYTES;
const STRIPE_WORDS = 4;
const S_LOCK = 0;
const S_VERSION = 1;
const S_USED = 2;
const MAX_STRIPE_SLOTS = 256;
const MAX_CAPACITY = 1 << 24;
const EMPTY = 0;
const USED = 1;
const DELETED = 2;
const KEY_OFFSET = 12;
/** Optimistic read attempts before a reader takes the stripe's lock. */
const OPTIMISTIC_READS = 4;

interface Column {
  readonly name: string;
  readonly type: ColumnSpec['type'];
  readonly offset: number;
  readonly maxBytes: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SharedTable<S extends TableSchema = TableSchema> {
  readonly name: string;
  readonly capacity: number;
  readonly columns: Readonly<S>;
  readonly keyMaxBytes: number;
  readonly #native: ShmNative;
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #floats: Float64Array;
  readonly #columns: Column[];
  readonly #byName = new Map<string, Column>();
  readonly #rowsOffset: number;
  readonly #rowSize: number;
  readonly #stripeSlots: number;
  readonly #stripeCount: number;
  readonly #keyScratch: Uint8Array;
  readonly #optimisticReads: boolean;

  private constructor(name: string, native: ShmNative, buffer: ArrayBuffer) {
    this.name = name;
    this.#native = native;
    this.#words = new Int32Array(buffer);
    this.#bytes = new Uint8Array(buffer);
    this.#floats = new Float64Array(buffer, 0, buffer.byteLength >> 3);
    this.capacity = this.#words[W_CAPACITY];
    this.keyMaxBytes = this.#words[W_KEY_MAX];
    this.#rowSize = this.#words[W_ROW_SIZE];
    this.#stripeSlots = this.#words[W_STRIPE_SLOTS];
    const slots = this.#words[W_SLOTS];
    this.#stripeCount = slots / this.#stripeSlots;
    this.#rowsOffset = alignUp(STRIPES_OFFSET + this.#stripeCount * STRIPE_WORDS * 4, 64);
    const schemaJson = decoder.decode(this.#bytes.subarray(SCHEMA_OFFSET, SCHEMA_OFFSET + this.#words[W_SCHEMA_LENGTH]));
    this.columns = JSON.parse(schemaJson) as S;
    const layout = layoutRow(this.columns, this.keyMaxBytes);
    this.#columns = layout.columns;
    for (const column of this.#columns) this.#byName.set(column.name, column);
    this.#keyScratch = new Uint8Array(this.keyMaxBytes + 4);
    this.#optimisticReads = PLAIN_ACCESS_IS_ORDERED;
    if (layout.rowSize !== this.#rowSize || buffer.byteLength < this.#rowsOffset + slots * this.#rowSize) {
      throw layoutError(name, TABLE, 'its header does not match its size');
    }
  }

  /** Opens the table, creating it when it does not exist; an existing table must have the same schema. */
  static create<S extends TableSchema>(name: SegmentName, options: TableOptions<S>): SharedTable<S> {
    const capacity = checkInteger('capacity', options.capacity, 1, MAX_CAPACITY);
    const keyMaxBytes = checkInteger('keyMaxBytes', options.keyMaxBytes ?? 64, 1, 1024);
    const schemaJson = JSON.stringify(checkSchema(options.columns));
    const schemaBytes = encoder.encode(schemaJson);
    if (schemaBytes.byteLength > SCHEMA_BYTES) throw optionError('columns', `the schema takes ${schemaBytes.byteLength} bytes as JSON, over ${SCHEMA_BYTES}`);
    const { rowSize } = layoutRow(options.columns, keyMaxBytes);
    const slots = Math.max(16, nextPowerOfTwo(Math.ceil((capacity * 4) / 3)));
    const stripeSlots = Math.min(MAX_STRIPE_SLOTS, slots);
    const rowsOffset = alignUp(STRIPES_OFFSET + (slots / stripeSlots) * STRIPE_WORDS * 4, 64);
    const buffer = openStructure(name, TABLE, {
      size: rowsOffset + slots * rowSize,
      init(buffer) {
        const words = new Int32Array(buffer, 0, SCHEMA_OFFSET / 4);
        words[1] = TABLE.version;
        words[W_CAPACITY] = capacity;
        words[W_SLOTS] = slots;
        words[W_STRIPE_SLOTS] = stripeSlots;
        words[W_ROW_SIZE] = rowSize;
        words[W_KEY_MAX] = keyMaxBytes;
        words[W_SCHEMA_LENGTH] = schemaBytes.byteLength;
        new Uint8Array(buffer).set(schemaBytes, SCHEMA_OFFSET);
        Atomics.store(words, 0, TABLE.magic);
      },
    }, options);
    const table = new SharedTable<S>(name, requireNative(options), buffer);
    if (JSON.stringify(table.columns) !== schemaJson || table.capacity !== capacity || table.keyMaxBytes !== keyMaxBytes) {
      throw layoutError(name, TABLE, `it exists with capacity ${table.capacity}, keyMaxBytes ${table.keyMaxBytes} and columns ${JSON.stringify(table.columns)}`);
    }
    return table;
  }

  /** Attaches to an existing table; its schema comes from its header. */
  static open(name: SegmentName, options: SegmentOptions = {}): SharedTable {
    return new SharedTable(name, requireNative(options), openStructure(name, TABLE, undefined, options));
  }

  static unlink(name: SegmentName, options: SegmentOptions = {}): boolean {
    return unlinkSegment(name, options);
  }

  /** Rows in use (a snapshot). */
  get size(): number {
    return Atomics.load(this.#words, W_COUNT);
  }

  get(key: string): Row<S> | undefined {
    return this.#read(key, (slot) => this.#readRow(slot));
  }

  /** One column of a row, without building the whole row. */
  getValue<K extends keyof S & string>(key: string, column: K): Row<S>[K] | undefined {
    const col = this.#column(column);
    return this.#read(key, (slot) => this.#readColumn(slot, col) as Row<S>[K]);
  }

  has(key: string): boolean {
    return this.#read(key, () => true) ?? false;
  }

  /**
   * Sets the given columns of a row, creating it (other columns 0 or '') when missing.
   * Values are checked before anything is written.
   */
  set(key: string, values: Partial<Row<S>>): void {
    const entries = Object.entries(values);
    for (const [name, value] of entries) this.#checkValue(this.#column(name), value);
    this.#write(key, true, (slot) => {
      for (const [name, value] of entries) this.#writeColumn(slot, this.#column(name), value as number | string);
      return undefined;
    });
  }

  /** Adds `by` to a numeric column atomically (across processes) and returns the new value; creates the row when missing. */
  increment(key: string, column: NumericColumn<S>, by = 1): number {
    const col = this.#column(column);
    if (col.type === 'string') throw this.#valueError(column, 'increment needs an int or float column');
    if (col.type === 'int' && !Number.isSafeInteger(by)) throw this.#valueError(column, `increment ${by} is not a safe integer`);
    return this.#write(key, true, (slot) => {
      const next = (this.#readColumn(slot, col) as number) + by;
      this.#checkValue(col, next);
      this.#writeColumn(slot, col, next);
      return next;
    }) as number;
  }

  /** Removes a row; false when it was not there. */
  delete(key: string): boolean {
    return this.#write(key, false, (slot, stripe) => {
      Atomics.store(this.#words, this.#rowWord(slot), DELETED);
      Atomics.sub(this.#words, this.#stripeWord(stripe, S_USED), 1);
      Atomics.sub(this.#words, W_COUNT, 1);
      return true;
    }) ?? false;
  }

  /** Every row, one stripe at a time; each row is read consistently, the table as a whole is not a snapshot. */
  *entries(): IterableIterator<[string, Row<S>]> {
    for (let stripe = 0; stripe < this.#stripeCount; stripe++) {
      const rows: [string, Row<S>][] = [];
      this.#readStripe(stripe, () => {
        rows.length = 0;
        const first = stripe * this.#stripeSlots;
        for (let slot = first; slot < first + this.#stripeSlots; slot++) {
          if (this.#words[this.#rowWord(slot)] === USED) rows.push([this.#readKey(slot), this.#readRow(slot)]);
        }
        return true;
      });
      yield* rows;
    }
  }

  [Symbol.iterator](): IterableIterator<[string, Row<S>]> {
    return this.entries();
  }

  // --- reading

  #read<T>(key: string, onFound: (slot: number) => T): T | undefined {
    const keyLength = this.#encodeKey(key);
    const hash = fnv1a(this.#keyScratch, keyLength);
    const stripe = this.#stripeOf(hash);
    return this.#readStripe(stripe, () => {
      const slot = this.#find(stripe, hash, keyLength);
      return slot < 0 ? undefined : onFound(slot);
    });
  }

  /** Runs a read of one stripe under its seqlock, falling back to its lock when writers keep it busy. */
  #readStripe<T>(stripe: number, readFn: () => T): T {
    const versionWord = this.#stripeWord(stripe, S_VERSION);
    if (this.#optimisticReads) {
      for (let attempt = 0; attempt < OPTIMISTIC_READS; attempt++) {
        const before = Atomics.load(this.#words, versionWord);
        if ((before & 1) !== 0) continue;
        let result: T;
        try {
          result = readFn();
        } catch {
          continue; // a torn string may fail to decode: retry like any torn read
        }
        if (Atomics.load(this.#words, versionWord) === before) return result;
      }
    }
    return this.#locked(stripe, readFn);
  }

  #find(stripe: number, hash: number, keyLength: number): number {
    const first = stripe * this.#stripeSlots;
    const mask = this.#stripeSlots - 1;
    for (let probe = 0; probe <= mask; probe++) {
      const slot = first + ((hash + probe) & mask);
      const word = this.#rowWord(slot);
      const state = this.#words[word];
      if (state === EMPTY) return -1;
      if (state === USED && this.#words[word + 1] === hash && this.#words[word + 2] === keyLength && this.#keyEquals(slot, keyLength)) return slot;
    }
    return -1;
  }

  #readRow(slot: number): Row<S> {
    const row: Record<string, number | string> = {};
    for (const column of this.#columns) row[column.name] = this.#readColumn(slot, column);
    return row as Row<S>;
  }

  #readColumn(slot: number, column: Column): number | string {
    const offset = this.#rowsOffset + slot * this.#rowSize + column.offset;
    if (column.type === 'float') return this.#floats[offset >> 3];
    if (column.type === 'int') return this.#words[(offset >> 2) + 1] * 0x100000000 + (this.#words[offset >> 2] >>> 0);
    const length = this.#words[offset >> 2];
    if (length < 0 || length > column.maxBytes) throw new RangeError('torn string length');
    return decoder.decode(this.#bytes.subarray(offset + 4, offset + 4 + length));
  }

  #readKey(slot: number): string {
    const start = this.#rowsOffset + slot * this.#rowSize;
    const length = Math.min(this.#words[(start >> 2) + 2], this.keyMaxBytes);
    return decoder.decode(this.#bytes.subarray(start + KEY_OFFSET, start + KEY_OFFSET + length));
  }

  // --- writing

  /** Runs fn on the key's row under its stripe lock; with `insert`, a missing row is created first. */
  #write<T>(key: string, insert: boolean, fn: (slot: number, stripe: number) => T): T | undefined {
    const keyLength = this.#encodeKey(key);
    const hash = fnv1a(this.#keyScratch, keyLength);
    const stripe = this.#stripeOf(hash);
    return this.#locked(stripe, () => {
      const versionWord = this.#stripeWord(stripe, S_VERSION);
      let slot = this.#find(stripe, hash, keyLength);
      if (slot < 0 && !insert) return undefined;
      Atomics.add(this.#words, versionWord, 1);
      try {
        if (slot < 0) slot = this.#insert(stripe, hash, keyLength);
        return fn(slot, stripe);
      } finally {
        Atomics.add(this.#words, versionWord, 1);
      }
    });
  }

  #insert(stripe: number, hash: number, keyLength: number): number {
    if (Atomics.add(this.#words, W_COUNT, 1) >= this.capacity) {
      Atomics.sub(this.#words, W_COUNT, 1);
      throw new KoboldError('KOBOLD_ERR_SHM_TABLE_FULL', { segment: this.name, reason: `all ${this.capacity} rows are in use` });
    }
    const first = stripe * this.#stripeSlots;
    const mask = this.#stripeSlots - 1;
    for (let probe = 0; probe <= mask; probe++) {
      const slot = first + ((hash + probe) & mask);
      const word = this.#rowWord(slot);
      if (this.#words[word] === USED) continue;
      const start = this.#rowsOffset + slot * this.#rowSize;
      this.#bytes.fill(0, start + 4, start + this.#rowSize);
      this.#words[word + 1] = hash;
      this.#words[word + 2] = keyLength;
      this.#bytes.set(this.#keyScratch.subarray(0, keyLength), start + KEY_OFFSET);
      Atomics.store(this.#words, word, USED);
      Atomics.add(this.#words, this.#stripeWord(stripe, S_USED), 1);
      return slot;
    }
    Atomics.sub(this.#words, W_COUNT, 1);
    throw new KoboldError('KOBOLD_ERR_SHM_TABLE_FULL', { segment: this.name, reason: `stripe ${stripe} of its ${this.#stripeSlots}-row stripes is full; create it with a larger capacity` });
  }

  #writeColumn(slot: number, column: Column, value: number | string): void {
    const offset = this.#rowsOffset + slot * this.#rowSize + column.offset;
    if (column.type === 'float') this.#floats[offset >> 3] = value as number;
    else if (column.type === 'int') {
      // A safe integer as little-endian int64, without BigInt: high word signed, low unsigned.
      const high = Math.floor((value as number) / 0x100000000);
      this.#words[offset >> 2] = (value as number) - high * 0x100000000;
      this.#words[(offset >> 2) + 1] = high;
    }
    else this.#words[offset >> 2] = encoder.encodeInto(value as string, this.#bytes.subarray(offset + 4, offset + 4 + column.maxBytes)).written;
  }

  #checkValue(column: Column, value: unknown): void {
    if (column.type === 'string') {
      if (typeof value !== 'string') throw this.#valueError(column.name, 'expected a string');
      if (Buffer.byteLength(value) > column.maxBytes) throw this.#valueError(column.name, `longer than ${column.maxBytes} bytes`);
    } else if (typeof value !== 'number' || (column.type === 'int' ? !Number.isSafeInteger(value) : Number.isNaN(value))) {
      throw this.#valueError(column.name, `expected ${column.type === 'int' ? 'a safe integer' : 'a number'}, got ${String(value)}`);
    }
  }

  /**
   * Runs fn holding the stripe's lock. A lock taken from a dead holder leaves the stripe's
   * version odd and its count stale: both are repaired before fn runs.
   */
  #locked<T>(stripe: number, fn: () => T): T {
    const lockIndex = this.#stripeWord(stripe, S_LOCK);
    if (lockWord(this.#native, this.#words, lockIndex)) this.#repairStripe(stripe);
    try {
      return fn();
    } finally {
      unlockWord(this.#native, this.#words, lockIndex);
    }
  }

  #repairStripe(stripe: number): void {
    const versionWord = this.#stripeWord(stripe, S_VERSION);
    if ((Atomics.load(this.#words, versionWord) & 1) !== 0) Atomics.add(this.#words, versionWord, 1);
    let used = 0;
    const first = stripe * this.#stripeSlots;
    for (let slot = first; slot < first + this.#stripeSlots; slot++) if (this.#words[this.#rowWord(slot)] === USED) used++;
    const recorded = Atomics.exchange(this.#words, this.#stripeWord(stripe, S_USED), used);
    Atomics.add(this.#words, W_COUNT, used - recorded);
  }

  // --- helpers

  #column(name: string): Column {
    const column = this.#byName.get(name);
    if (column === undefined) throw this.#valueError(name, 'no such column');
    return column;
  }

  #valueError(column: string, reason: string): KoboldError {
    return new KoboldError('KOBOLD_ERR_SHM_TABLE_VALUE', { segment: this.name, column, reason });
  }

  #encodeKey(key: string): number {
    // ASCII keys (the usual case) are copied directly: encodeInto costs more than the rest of a get.
    const scratch = this.#keyScratch;
    const length = key.length;
    if (length <= this.keyMaxBytes) {
      let i = 0;
      for (; i < length; i++) {
        const code = key.charCodeAt(i);
        if (code >= 0x80) break;
        scratch[i] = code;
      }
      if (i === length) return length;
    }
    const { read, written } = encoder.encodeInto(key, scratch);
    if (read < key.length || written > this.keyMaxBytes) throw this.#valueError('key', `longer than ${this.keyMaxBytes} bytes`);
    return written;
  }

  #keyEquals(slot: number, keyLength: number): boolean {
    const start = this.#rowsOffset + slot * this.#rowSize + KEY_OFFSET;
    const bytes = this.#bytes;
    const key = this.#keyScratch;
    for (let i = 0; i < keyLength; i++) if (bytes[start + i] !== key[i]) return false;
    return true;
  }

  #stripeOf(hash: number): number {
    return (Math.imul(hash, 0x9e3779b1) >>> 8) & (this.#stripeCount - 1);
  }

  #stripeWord(stripe: number, field: number): number {
    return (STRIPES_OFFSET >> 2) + stripe * STRIPE_WORDS + field;
  }

  #rowWord(slot: number): number {
    return (this.#rowsOffset + slot * this.#rowSize) >> 2;
  }
}

function checkSchema(columns: TableSchema): TableSchema {
  const names = Object.keys(columns);
  if (names.length === 0) throw optionError('columns', 'a table needs at least one column');
  for (const name of names) {
    const spec = columns[name];
    if (spec.type === 'string') checkInteger(`columns.${name}.maxBytes`, spec.maxBytes, 1, 65536);
    else if (spec.type !== 'int' && spec.type !== 'float') throw optionError(`columns.${name}.type`, `must be int, float or string, got ${String((spec as { type: unknown }).type)}`);
  }
  return columns;
}

function layoutRow(columns: TableSchema, keyMaxBytes: number): { columns: Column[]; rowSize: number } {
  let offset = alignUp(KEY_OFFSET + keyMaxBytes, 8);
  const laid: Column[] = [];
  for (const [name, spec] of Object.entries(columns)) {
    const maxBytes = spec.type === 'string' ? spec.maxBytes : 8;
    laid.push({ name, type: spec.type, offset, maxBytes });
    offset = alignUp(offset + (spec.type === 'string' ? 4 + maxBytes : 8), 8);
  }
  return { columns: laid, rowSize: offset };
}

function fnv1a(bytes: Uint8Array, length: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ bytes[i], 0x01000193);
  return hash | 0;
}

function nextPowerOfTwo(value: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, value)));
}
