// Small HTTP helpers shared by the HTTP-facing transports and the server API.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { readBody as readRequestBody } from '../../app/body.js';
import { KoboldError } from '../../errors.js';
import { errorBody } from '../protocol.js';
import { type Flushable, flushAtTurnEnd } from '../turn.js';

/** Reads a request body up to `limit` bytes; KOBOLD_ERR_HUB_TOO_LARGE beyond. */
export async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const body = await readRequestBody(req, limit, (max) => new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size: `more than ${max}`, limit: max }));
  return body.toString();
}

/**
 * Calls `then` with the request's body (at most `limit` bytes). A small body normally comes in
 * the socket read that brought the headers, and Node's parser hands it over right after the
 * request handler returns (not within the same tick: the handler runs in a callback scope of
 * its own). So the body is looked for once the turn's reads are done (flushAtTurnEnd: one
 * setImmediate for all of them, and the nextTicks their answers leave run once, not once per
 * request): it is then whole in the request's buffer and taken in one read, with no stream
 * events and no promise. A body still on its way is read as it arrives (readBody).
 */
export function readBodyThen(req: IncomingMessage, limit: number, then: (error: unknown, body: string) => void): void {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) {
    req.resume();
    then(new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size: declared, limit }), '');
    return;
  }
  flushAtTurnEnd(new BodyAtTurnEnd(req, limit, then));
}

/** `then('')` once the turn's reads are done, like readBodyThen, for a request with no body (GET). */
export function noBodyThen(then: (error: unknown, body: string) => void): void {
  flushAtTurnEnd(new BodyAtTurnEnd(null, 0, then));
}

class BodyAtTurnEnd implements Flushable {
  constructor(
    private readonly req: IncomingMessage | null,
    private readonly limit: number,
    private readonly then: (error: unknown, body: string) => void,
  ) {}

  flush(): void {
    const { req, limit, then } = this;
    if (req === null) return then(null, '');
    if (req.complete && req.readableLength <= limit) {
      const body = req.read() as Buffer | null;
      return then(null, body === null ? '' : body.toString());
    }
    readBody(req, limit).then(
      (body) => then(null, body),
      (error: unknown) => then(error, ''),
    );
  }
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

/**
 * A JSON answer with its headers built once, to be sent again as is (refresh answers kept
 * ready). The body stays text: Node writes a text body and the head in one chunk, a Buffer
 * body as a second one.
 */
export class ReadyJson {
  readonly headers: OutgoingHttpHeaders;

  constructor(readonly body: string) {
    this.headers = jsonHeaders(Buffer.byteLength(body));
  }
}

function jsonHeaders(length: number): OutgoingHttpHeaders {
  return { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-cache, no-store', 'Content-Length': length };
}

/** `json` as text, or a ReadyJson kept ready (refresh answers sent again). */
export function sendJson(res: ServerResponse, status: number, json: string | ReadyJson): void {
  if (res.headersSent || res.destroyed) return;
  if (typeof json === 'string') {
    res.writeHead(status, jsonHeaders(Buffer.byteLength(json)));
    res.end(json);
  } else {
    res.writeHead(status, json.headers);
    res.end(json.body);
  }
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
