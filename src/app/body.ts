import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import { describeError, KoboldError } from '../errors.js';

/**
 * Reads a whole request body, refusing more than `limitBytes` (413) — from Content-Length
 * before reading anything when the client declares it, else as the bytes arrive. `tooLarge`
 * makes the error (the hub answers with its own code).
 */
export function readBody(
  req: IncomingMessage,
  limitBytes: number,
  tooLarge: (limit: number) => KoboldError = (limit) => new KoboldError('KOBOLD_ERR_BODY_TOO_LARGE', { limit }),
): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) return Promise.reject(tooLarge(limitBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        // Answer now; Node reads and discards the rest after the reply, so the client,
        // still sending, does not get a reset instead of the 413.
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(limitBytes));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/** Reads and parses a JSON body; malformed JSON is a 400 that says where it broke. */
export async function readJson(req: IncomingMessage, limitBytes: number): Promise<unknown> {
  const body = await readBody(req, limitBytes);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: `request body is not valid JSON: ${describeError(error)}` });
  }
}

export interface MultipartLimits {
  maxFileBytes: number;
  maxFiles: number;
  maxFields: number;
}

export interface MultipartFile {
  field: string;
  filename: string;
  mimeType: string;
  stream: Readable;
}

export interface MultipartHandlers {
  /** Consume `file.stream` (pipe it somewhere); the upload is not buffered in memory. */
  onFile?(file: MultipartFile): void | Promise<void>;
  onField?(name: string, value: string): void;
}

/**
 * Streams a multipart/form-data upload through busboy. Rejects with 413 when a file is over
 * `maxFileBytes` or there are too many files or fields, and with 400 for a malformed body.
 */
export function readMultipart(req: IncomingMessage, limits: MultipartLimits, handlers: MultipartHandlers): Promise<void> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { fileSize: limits.maxFileBytes, files: limits.maxFiles, fields: limits.maxFields } });
    } catch (error) {
      reject(new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: `not a multipart request: ${describeError(error)}` }));
      return;
    }
    let failed = false;
    const pending: Promise<void>[] = [];
    const fail = (error: KoboldError) => {
      if (failed) return;
      failed = true;
      req.unpipe(parser);
      req.resume();
      reject(error);
    };
    parser.on('file', (field, stream, info) => {
      stream.on('limit', () => fail(new KoboldError('KOBOLD_ERR_BODY_TOO_LARGE', { limit: limits.maxFileBytes })));
      if (handlers.onFile === undefined) {
        stream.resume();
        return;
      }
      pending.push(Promise.resolve(handlers.onFile({ field, filename: info.filename ?? '', mimeType: info.mimeType, stream })));
    });
    parser.on('field', (name, value) => handlers.onField?.(name, value));
    parser.on('filesLimit', () => fail(new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: `more than ${limits.maxFiles} files in one request` })));
    parser.on('fieldsLimit', () => fail(new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: `more than ${limits.maxFields} fields in one request` })));
    parser.on('error', (error: unknown) => fail(new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: `malformed multipart body: ${describeError(error)}` })));
    parser.on('close', () => {
      if (!failed) Promise.all(pending).then(() => resolve(), reject);
    });
    req.pipe(parser);
  });
}
