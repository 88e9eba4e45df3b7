// The client protocol: JSON commands in, replies and pushes out (docs/protocol.md), or the
// same messages in MessagePack on a WebSocket that chose it. Commands are validated here, at
// the edge; frames going out are built by string concatenation around the publication's JSON
// text (MessagePack: from its decoded value), once per publication and format, and wrapped
// for the transport (a whole WebSocket frame, an SSE event) so that delivering one to a
// connection is writing the same bytes again.
import { Packr, Unpackr } from 'msgpackr';
import { z } from 'zod';
import { isKoboldError, KoboldError } from '../errors.js';
import type { DisconnectReason } from './disconnect.js';
import type { FrameFormat } from './outbound.js';
import type { HistoryResult, PresenceCounts, PresenceEvent, PresenceUser, Publication, StreamPosition } from './types.js';

export const position = z.object({ offset: z.number().int().min(0), epoch: z.string().max(64) }).strict();
const channel = z.string().min(1).max(255);
const id = z.number().int().min(0).optional();

export const command = z.discriminatedUnion('cmd', [
  z.object({ id, cmd: z.literal('connect'), token: z.string().max(8192).optional() }).strict(),
  z
    .object({ id, cmd: z.literal('subscribe'), channel, since: position.optional(), history: z.number().int().min(0).optional() })
    .strict(),
  z.object({ id, cmd: z.literal('unsubscribe'), channel }).strict(),
  z.object({ id, cmd: z.literal('publish'), channel, data: z.unknown() }).strict(),
  z.object({ id, cmd: z.literal('presence'), channel }).strict(),
  z
    .object({ id, cmd: z.literal('history'), channel, limit: z.number().int().min(0).optional(), since: position.optional() })
    .strict(),
  z.object({ id, cmd: z.literal('ping') }).strict(),
  z.object({ id, cmd: z.literal('refresh'), token: z.string().max(8192) }).strict(),
]);

export type Command = z.infer<typeof command>;
export const COMMAND_NAMES = command.options.map((option) => option.shape.cmd.value);

/** A command that failed to parse, with the id to answer to when one could be read. */
export class CommandError extends Error {
  constructor(
    readonly error: KoboldError,
    readonly id?: number,
  ) {
    super(error.message);
  }
}

/** Parses one command; throws CommandError naming what was wrong. */
export function parseCommand(text: string, maxBytes: number): Command {
  const size = Buffer.byteLength(text);
  if (size > maxBytes) throw new CommandError(new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size, limit: maxBytes }));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CommandError(new KoboldError('KOBOLD_ERR_HUB_INVALID_JSON', { reason: (error as Error).message }));
  }
  return parseCommandValue(value);
}

export function parseCommandValue(value: unknown): Command {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CommandError(new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: 'a command is a JSON object' }));
  }
  const record = value as Record<string, unknown>;
  const commandId = idOf(record);
  if (typeof record.cmd !== 'string') {
    throw new CommandError(new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: 'field "cmd" is missing' }), commandId);
  }
  if (!(COMMAND_NAMES as string[]).includes(record.cmd)) {
    throw new CommandError(new KoboldError('KOBOLD_ERR_HUB_UNKNOWN_COMMAND', { command: record.cmd.slice(0, 40) }), commandId);
  }
  const parsed = command.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.length > 0 ? `field "${issue.path.join('.')}"` : record.cmd;
    throw new CommandError(new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: `${field}: ${issue.message}` }), commandId);
  }
  return parsed.data;
}

function idOf(record: Record<string, unknown>): number | undefined {
  return typeof record.id === 'number' && Number.isInteger(record.id) && record.id >= 0 ? record.id : undefined;
}

// --- MessagePack (WebSocket subprotocol `kobold.msgpack`)

/** The WebSocket subprotocol a client asks for to speak MessagePack instead of JSON. */
export const MESSAGEPACK_SUBPROTOCOL = 'kobold.msgpack';

// Plain maps, no msgpackr records, so any MessagePack library reads what we write; map
// headers sized to the object (an object may have more than 65535 keys).
const messagePackEncoder = new Packr({ useRecords: false, variableMapSize: true });
// Integers of 64 bits read as numbers, as JSON.parse would read them.
const messagePackDecoder = new Unpackr({ useRecords: false, int64AsType: 'number' });

/** Deeper values are refused; it also stops at a cycle, should an extension build one. */
const MAX_MESSAGEPACK_DEPTH = 1000;

/**
 * Parses one command sent as MessagePack (a binary WebSocket message); throws CommandError
 * naming what was wrong. It must hold exactly what a JSON command could: values MessagePack
 * has and JSON has not (binary, extension types such as timestamps, NaN) are refused, so
 * publication data stays JSON.
 */
export function parseMessagePackCommand(bytes: Uint8Array, maxBytes: number): Command {
  if (bytes.length > maxBytes) throw new CommandError(new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size: bytes.length, limit: maxBytes }));
  let value: unknown;
  try {
    value = messagePackDecoder.unpack(bytes);
  } catch (error) {
    throw new CommandError(new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: `not valid MessagePack: ${(error as Error).message}` }));
  }
  const problem = nonJsonPart(value, 0);
  if (problem !== null) {
    const field = problem.path.length > 0 ? `field "${problem.path.join('.')}": ` : '';
    const commandId = isPlainObject(value) ? idOf(value) : undefined;
    throw new CommandError(new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: field + problem.what + ' has no JSON equivalent' }), commandId);
  }
  return parseCommandValue(value);
}

/** The first part of a decoded value that JSON cannot hold, with its path; null when there is none. */
function nonJsonPart(value: unknown, depth: number): { path: (string | number)[]; what: string } | null {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(value) ? null : { path: [], what: String(value) };
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_MESSAGEPACK_DEPTH) return { path: [], what: `nesting deeper than ${MAX_MESSAGEPACK_DEPTH} levels` };
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const problem = nonJsonPart(value[i], depth + 1);
          if (problem !== null) {
            problem.path.unshift(i);
            return problem;
          }
        }
        return null;
      }
      if (value instanceof Uint8Array) return { path: [], what: 'binary data' };
      if (!isPlainObject(value)) return { path: [], what: `a ${value.constructor?.name ?? 'value'} (a MessagePack extension type)` };
      for (const key in value) {
        const problem = nonJsonPart(value[key], depth + 1);
        if (problem !== null) {
          problem.path.unshift(key);
          return problem;
        }
      }
      return null;
    }
    default:
      return { path: [], what: `a ${typeof value}` };
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** A publication's push as a whole binary WebSocket frame of MessagePack, its data decoded from the stored JSON. */
export function encodeMessagePackPublication(publication: Publication): Buffer {
  const push: Record<string, unknown> = {
    push: 'pub',
    channel: publication.channel,
    offset: publication.offset,
    epoch: publication.epoch,
    time: publication.time,
    data: JSON.parse(publication.data),
  };
  if (publication.info !== undefined) push.info = publication.info;
  return webSocketBinaryFrame(messagePackEncoder.pack(push));
}

// --- frames out

/**
 * One JSON text wrapped for a transport: a WebSocket text frame, an SSE `data:` event, or a
 * binary WebSocket frame holding the same message in MessagePack.
 */
export function encodeFrame(format: FrameFormat, json: string): Buffer {
  if (format === 'websocket') return webSocketTextFrame(json);
  if (format === 'sse') return Buffer.from('data: ' + json + '\n\n');
  return webSocketBinaryFrame(messagePackEncoder.pack(JSON.parse(json)));
}

/** A final, unmasked WebSocket text frame (RFC 6455 §5.2, server to client) holding `text`. */
export function webSocketTextFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const frame = webSocketFrame(0x1, length);
  frame.write(text, frame.length - length, 'utf8');
  return frame;
}

/** A final, unmasked WebSocket binary frame holding `payload`. */
export function webSocketBinaryFrame(payload: Uint8Array): Buffer {
  const frame = webSocketFrame(0x2, payload.length);
  frame.set(payload, frame.length - payload.length);
  return frame;
}

/** A frame's buffer with its header written (FIN, `opcode`, the length); the payload goes last. */
function webSocketFrame(opcode: number, length: number): Buffer {
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x80 | opcode;
  if (header === 2) {
    frame[1] = length;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  return frame;
}

/** `{"offset":…,"epoch":…,"time":…,"data":<raw>,"info":…}` */
export function encodePublicationFields(publication: Publication): string {
  const info = publication.info === undefined ? '' : ',"info":' + JSON.stringify(publication.info);
  return (
    '"offset":' + publication.offset + ',"epoch":' + JSON.stringify(publication.epoch) + ',"time":' + publication.time + ',"data":' + publication.data + info
  );
}

export function encodePublicationPush(publication: Publication): string {
  return '{"push":"pub","channel":' + JSON.stringify(publication.channel) + ',' + encodePublicationFields(publication) + '}';
}

export function encodeHistoryResult(result: HistoryResult, channelName?: string): string {
  const publications = result.publications.map((p) => '{' + encodePublicationFields(p) + '}').join(',');
  const named = channelName === undefined ? '' : '"channel":' + JSON.stringify(channelName) + ',';
  return '{' + named + '"position":' + JSON.stringify(result.position) + ',"lost":' + result.lost + ',"publications":[' + publications + ']}';
}

export function encodeReply(commandId: number | undefined, resultJson: string): string {
  return '{"id":' + (commandId ?? 0) + ',"result":' + resultJson + '}';
}

export function errorBody(error: unknown): { code: string; message: string } {
  if (isKoboldError(error)) return { code: error.code, message: error.message };
  const internal = new KoboldError('KOBOLD_ERR_HUB_INTERNAL');
  return { code: internal.code, message: internal.message };
}

export function encodeError(commandId: number | undefined, error: unknown): string {
  const body = JSON.stringify(errorBody(error));
  return commandId === undefined ? '{"error":' + body + '}' : '{"id":' + commandId + ',"error":' + body + '}';
}

export function encodePresencePush(event: PresenceEvent): string {
  return JSON.stringify({ push: event.type, channel: event.channel, user: event.user });
}

/** Publications after `position` were dropped for this connection: resubscribe with `since` = position. */
export function encodeGapPush(channelName: string, last: StreamPosition): string {
  return JSON.stringify({ push: 'gap', channel: channelName, offset: last.offset, epoch: last.epoch });
}

export function encodeDisconnectPush(disconnect: DisconnectReason): string {
  return JSON.stringify({ push: 'disconnect', ...disconnect });
}

export function encodePresenceResult(users: PresenceUser[], counts: PresenceCounts): string {
  return JSON.stringify({ users, counts });
}

// --- stateless HTTP requests (long-polling, refresh, commands over POST)

/** A long-poll or refresh request: channel -> where the client stands (null: it has nothing yet). */
export interface PollRequest {
  readonly token?: string;
  readonly channels: Readonly<Record<string, StreamPosition | null>>;
  readonly timeoutMs?: number;
}

/**
 * Checks a long-poll or refresh request (the same rules as `channel` and `position` above) and
 * returns it as it is. Written by hand: refresh mode is a hot path, and a schema library
 * costs more than the rest of the request. Errors name the field.
 */
export function parsePollRequest(value: unknown): PollRequest {
  if (!isObject(value)) throw badField('', 'expected an object');
  for (const key in value) {
    const field = value[key];
    if (key === 'channels') checkPositions(field);
    else if (key === 'token') {
      if (typeof field !== 'string' || field.length > 8192) throw badField(key, 'expected a string of at most 8192 characters');
    } else if (key === 'timeoutMs') {
      if (!isWholeNumber(field)) throw badField(key, 'expected an integer >= 0');
    } else throw badField(key, 'unknown field');
  }
  if (value.channels === undefined) throw badField('channels', 'required');
  return value as unknown as PollRequest;
}

function checkPositions(channels: unknown): void {
  if (!isObject(channels)) throw badField('channels', 'expected an object of channel -> position or null');
  for (const name in channels) {
    if (name.length === 0 || name.length > 255) throw badField(`channels.${name}`, 'a channel name has 1 to 255 characters');
    const since = channels[name];
    if (since === null) continue;
    if (!isObject(since)) throw badField(`channels.${name}`, 'expected {offset, epoch} or null');
    for (const key in since) {
      const field = since[key];
      if (key === 'offset') {
        if (!isWholeNumber(field)) throw badField(`channels.${name}.offset`, 'expected an integer >= 0');
      } else if (key === 'epoch') {
        if (typeof field !== 'string' || field.length > 64) throw badField(`channels.${name}.epoch`, 'expected a string of at most 64 characters');
      } else throw badField(`channels.${name}.${key}`, 'unknown field');
    }
    if (since.offset === undefined) throw badField(`channels.${name}.offset`, 'required');
    if (since.epoch === undefined) throw badField(`channels.${name}.epoch`, 'required');
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isWholeNumber(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function badField(field: string, problem: string): KoboldError {
  return new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: field === '' ? problem : `field "${field}": ${problem}` });
}

/** Commands that need no session, sent over HTTP POST by SSE, long-polling and refresh clients. */
export const httpCommand = z.discriminatedUnion('cmd', [
  z.object({ token: z.string().max(8192).optional(), cmd: z.literal('publish'), channel, data: z.unknown() }).strict(),
  z.object({ token: z.string().max(8192).optional(), cmd: z.literal('presence'), channel }).strict(),
  z
    .object({
      token: z.string().max(8192).optional(),
      cmd: z.literal('history'),
      channel,
      limit: z.number().int().min(0).optional(),
      since: position.optional(),
    })
    .strict(),
]);
export type HttpCommand = z.infer<typeof httpCommand>;
