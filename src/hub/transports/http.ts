// Small HTTP helpers shared by the HTTP-facing transports and the server API.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KoboldError } from '../../errors.js';
import { errorBody } from '../protocol.js';

/** Reads a request body up to `limit` bytes; KOBOLD_ERR_HUB_TOO_LARGE beyond. */
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size: `more than ${limit}`, limit }));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

/** Parses a JSON body; KOBOLD_ERR_HUB_INVALID_JSON names the problem. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const text = await readBody(req, limit);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new KoboldError('KOBOLD_ERR_HUB_INVALID_JSON', { reason: (error as Error).message });
  }
}

export function sendJson(res: ServerResponse, status: number, json: string): void {
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
  const header = req.headers.authorization;
  if (header !== undefined && header.startsWith('Bearer ')) return header.slice(7).trim();
  return url.searchParams.get('token') ?? undefined;
}

export function requestUrl(req: IncomingMessage): URL {
  return new URL(req.url ?? '/', 'http://localhost');
}

export function requireMethod(req: IncomingMessage, method: string): void {
  if (req.method !== method) throw new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: `use ${method} for this endpoint` });
}
