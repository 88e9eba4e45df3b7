// Small HTTP helpers shared by the HTTP-facing transports and the server API.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody as readRequestBody } from '../../app/body.js';
import { KoboldError } from '../../errors.js';
import { errorBody } from '../protocol.js';

/** Reads a request body up to `limit` bytes; KOBOLD_ERR_HUB_TOO_LARGE beyond. */
export async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const body = await readRequestBody(req, limit, (max) => new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size: `more than ${max}`, limit: max }));
  return body.toString();
}

/**
 * Calls `then` with the request's body (at most `limit` bytes). A small body normally comes in
 * the socket read that brought the headers, and Node's parser hands it over right after the
 * request handler returns (not within the same tick: the handler runs in a callback scope of
 * its own). So the body is looked for once that read is done, in setImmediate: it is then
 * whole in the request's buffer and taken in one read, with no stream events and no promise.
 * A body still on its way is read as it arrives (readBody).
 */
export function readBodyThen(req: IncomingMessage, limit: number, then: (error: unknown, body: string) => void): void {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) {
    req.resume();
    then(new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size: declared, limit }), '');
    return;
  }
  setImmediate(takeBody, req, limit, then);
}

function takeBody(req: IncomingMessage, limit: number, then: (error: unknown, body: string) => void): void {
  if (req.complete && req.readableLength <= limit) {
    const body = req.read() as Buffer | null;
    then(null, body === null ? '' : body.toString());
    return;
  }
  readBody(req, limit).then(
    (body) => then(null, body),
    (error: unknown) => then(error, ''),
  );
}

/** Parses JSON text; KOBOLD_ERR_HUB_INVALID_JSON names the problem. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new KoboldError('KOBOLD_ERR_HUB_INVALID_JSON', { reason: (error as Error).message });
  }
}

/** Parses a JSON body; KOBOLD_ERR_HUB_INVALID_JSON names the problem. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return parseJson(await readBody(req, limit));
}

/** `json` as text, or as a Buffer kept ready (refresh answers sent again). */
export function sendJson(res: ServerResponse, status: number, json: string | Buffer): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-cache, no-store',
    'Content-Length': Buffer.byteLength(json),
  });
  res.end(json);
}

/** An error as `{ "error": { code, message } }` with the error's HTTP status (500 for unexpected ones). */
export function sendError(res: ServerResponse, error: unknown): void {
  const status = error instanceof KoboldError ? (error.status ?? 500) : 500;
  sendJson(res, status, JSON.stringify({ error: errorBody(error) }));
}

/** `Authorization: Bearer <token>`, else a `token` query parameter (EventSource cannot set headers). */
export function requestToken(req: IncomingMessage, url: URL): string | undefined {
  return bearerToken(req) ?? url.searchParams.get('token') ?? undefined;
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header !== undefined && header.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
}

export function requestUrl(req: IncomingMessage): URL {
  return new URL(req.url ?? '/', 'http://localhost');
}

export function requireMethod(req: IncomingMessage, method: string): void {
  if (req.method !== method) throw new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: `use ${method} for this endpoint` });
}
