// Binary frames between web workers and the hub's log server (a UNIX socket).
//
// frame  = length:u32be kind:u8 body          (length counts kind + body)
// string = byteLength:u32be utf8-bytes
// number = f64be
//
// Publications and publish acks are binary (the hot path); the rarer requests and
// replies (history, presence) carry a JSON string.
import { KoboldError } from '../errors.js';
import type { Publication } from './types.js';

export const FrameKind = {
  /** server -> client: JSON { instance } — sent first on every connection. */
  hello: 1,
  /** client -> server: seq:u32 channel data info('' when none). */
  publish: 2,
  /** server -> client: channel epoch offset time info data. */
  publication: 3,
  /** server -> client: seq:u32 offset epoch — the ack of a publish. */
  position: 4,
  /** client -> server: seq:u32 JSON request. */
  request: 5,
  /** server -> client: seq:u32 JSON result. */
  reply: 6,
  /** server -> client: seq:u32 JSON { code, params } — a request failed. */
  failure: 7,
  /** server -> client: JSON PresenceEvent. */
  presence: 8,
} as const;

export type Frame =
  | { kind: typeof FrameKind.hello; json: string }
  | { kind: typeof FrameKind.publish; seq: number; channel: string; data: string; info: string }
  | { kind: typeof FrameKind.publication; publication: Publication }
  | { kind: typeof FrameKind.position; seq: number; offset: number; epoch: string }
  | { kind: typeof FrameKind.request | typeof FrameKind.reply | typeof FrameKind.failure; seq: number; json: string }
  | { kind: typeof FrameKind.presence; json: string };

export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
const HEADER_BYTES = 5;

/** Writes fields into one exactly-sized buffer. */
class FrameBuilder {
  private readonly buffer: Buffer;
  private at = HEADER_BYTES;

  constructor(kind: number, bodyBytes: number) {
    this.buffer = Buffer.allocUnsafe(HEADER_BYTES + bodyBytes);
    this.buffer.writeUInt32BE(1 + bodyBytes, 0);
    this.buffer[4] = kind;
  }

  u32(value: number): this {
    this.at = this.buffer.writeUInt32BE(value, this.at);
    return this;
  }

  f64(value: number): this {
    this.at = this.buffer.writeDoubleBE(value, this.at);
    return this;
  }

  string(value: string, bytes: number): this {
    this.at = this.buffer.writeUInt32BE(bytes, this.at);
    this.at += this.buffer.write(value, this.at, 'utf8');
    return this;
  }

  done(): Buffer {
    return this.buffer;
  }
}

const size = (value: string) => Buffer.byteLength(value, 'utf8');

export function encodePublish(seq: number, channel: string, data: string, info: string): Buffer {
  const [c, d, i] = [size(channel), size(data), size(info)];
  return new FrameBuilder(FrameKind.publish, 16 + c + d + i).u32(seq).string(channel, c).string(data, d).string(info, i).done();
}

export function encodePublication(publication: Publication): Buffer {
  const info = publication.info === undefined ? '' : JSON.stringify(publication.info);
  const [c, e, i, d] = [size(publication.channel), size(publication.epoch), size(info), size(publication.data)];
  return new FrameBuilder(FrameKind.publication, 32 + c + e + i + d)
    .string(publication.channel, c)
    .string(publication.epoch, e)
    .f64(publication.offset)
    .f64(publication.time)
    .string(info, i)
    .string(publication.data, d)
    .done();
}

export function encodePosition(seq: number, offset: number, epoch: string): Buffer {
  const e = size(epoch);
  return new FrameBuilder(FrameKind.position, 16 + e).u32(seq).f64(offset).string(epoch, e).done();
}

/** request, reply and failure frames: a sequence number and a JSON string. */
export function encodeSequenced(kind: 5 | 6 | 7, seq: number, json: string): Buffer {
  const j = size(json);
  return new FrameBuilder(kind, 8 + j).u32(seq).string(json, j).done();
}

/** hello and presence frames: a JSON string. */
export function encodeJson(kind: 1 | 8, json: string): Buffer {
  const j = size(json);
  return new FrameBuilder(kind, 4 + j).string(json, j).done();
}

/** Reads fields of one frame body, failing with KOBOLD_ERR_HUB_WIRE past its end. */
class BodyReader {
  private at: number;

  constructor(
    private readonly buffer: Buffer,
    start: number,
    private readonly end: number,
  ) {
    this.at = start;
  }

  private need(bytes: number, what: string): void {
    if (this.at + bytes > this.end) throw new KoboldError('KOBOLD_ERR_HUB_WIRE', { reason: `truncated ${what}` });
  }

  u32(): number {
    this.need(4, 'integer');
    const value = this.buffer.readUInt32BE(this.at);
    this.at += 4;
    return value;
  }

  f64(): number {
    this.need(8, 'number');
    const value = this.buffer.readDoubleBE(this.at);
    this.at += 8;
    return value;
  }

  string(): string {
    const bytes = this.u32();
    this.need(bytes, 'string');
    const value = this.buffer.toString('utf8', this.at, this.at + bytes);
    this.at += bytes;
    return value;
  }

  finish(): void {
    if (this.at !== this.end) throw new KoboldError('KOBOLD_ERR_HUB_WIRE', { reason: `${this.end - this.at} stray bytes after a frame` });
  }
}

function decodeBody(kind: number, reader: BodyReader): Frame {
  switch (kind) {
    case FrameKind.hello:
    case FrameKind.presence:
      return { kind, json: reader.string() };
    case FrameKind.publish:
      return { kind, seq: reader.u32(), channel: reader.string(), data: reader.string(), info: reader.string() };
    case FrameKind.publication: {
      const channel = reader.string();
      const epoch = reader.string();
      const offset = reader.f64();
      const time = reader.f64();
      const info = reader.string();
      const data = reader.string();
      const publication: Publication =
        info === '' ? { channel, epoch, offset, time, data } : { channel, epoch, offset, time, data, info: JSON.parse(info) };
      return { kind, publication };
    }
    case FrameKind.position:
      return { kind, seq: reader.u32(), offset: reader.f64(), epoch: reader.string() };
    case FrameKind.request:
    case FrameKind.reply:
    case FrameKind.failure:
      return { kind, seq: reader.u32(), json: reader.string() };
    default:
      throw new KoboldError('KOBOLD_ERR_HUB_WIRE', { reason: `unknown frame kind ${kind}` });
  }
}

/**
 * Splits a byte stream into frames. Feed it chunks as they arrive; it keeps partial
 * frames until the rest comes. After it throws, the stream is out of step: close it.
 */
export class FrameDecoder {
  /** Chunks of an incomplete frame, joined only once the whole frame is here. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private neededBytes = 0;

  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  push(chunk: Buffer): Frame[] {
    let buffer = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < this.neededBytes) return [];
      buffer = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    const frames: Frame[] = [];
    let at = 0;
    this.neededBytes = 4;
    while (buffer.length - at >= 4) {
      const length = buffer.readUInt32BE(at);
      if (length === 0) throw new KoboldError('KOBOLD_ERR_HUB_WIRE', { reason: 'empty frame' });
      if (length > this.maxFrameBytes) {
        throw new KoboldError('KOBOLD_ERR_HUB_WIRE', { reason: `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}` });
      }
      const end = at + 4 + length;
      if (end > buffer.length) {
        this.neededBytes = 4 + length;
        break;
      }
      const reader = new BodyReader(buffer, at + HEADER_BYTES, end);
      try {
        frames.push(decodeBody(buffer[at + 4], reader));
      } catch (error) {
        if (error instanceof KoboldError) throw error;
        throw new KoboldError('KOBOLD_ERR_HUB_WIRE', { reason: `bad frame body: ${(error as Error).message}` });
      }
      reader.finish();
      at = end;
    }
    if (at < buffer.length) {
      this.pending = [buffer.subarray(at)];
      this.pendingBytes = buffer.length - at;
    }
    return frames;
  }
}
