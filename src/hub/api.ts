// The server HTTP API: POST /api/{publish,broadcast,presence,history,disconnect} with a
// JSON body and the API key (`Authorization: apikey <key>` or `X-API-Key: <key>`).
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KoboldError } from '../errors.js';
import type { HubNode } from './node.js';
import { parseServerCommand, runServerCommand } from './server-commands.js';
import { readJson, requestUrl, requireMethod, sendError, sendJson } from './transports/http.js';

export interface ApiOptions {
  /** Shared with the site's servers; at least 16 characters. */
  apiKey: string;
  /** Largest request body; default 1 MiB. */
  maxBodyBytes?: number;
}

export function createApiHandler(node: HubNode, options: ApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  if (options.apiKey.length < 16) throw new KoboldError('KOBOLD_ERR_HUB_OPTIONS', { option: 'apiKey', reason: 'must be at least 16 characters' });
  const expected = Buffer.from(options.apiKey);
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  return (req, res) => {
    (async () => {
      requireMethod(req, 'POST');
      if (!keyMatches(presentedKey(req), expected)) throw new KoboldError('KOBOLD_ERR_HUB_API_KEY');
      const method = requestUrl(req).pathname.split('/').pop() ?? '';
      const body = await readJson(req, maxBodyBytes);
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: 'the body is a JSON object' });
      }
      return runServerCommand(node, parseServerCommand({ ...body, method }));
    })()
      .then((result) => sendJson(res, 200, '{"result":' + result + '}'))
      .catch((error) => sendError(res, error));
  };
}

function presentedKey(req: IncomingMessage): string {
  const header = req.headers.authorization;
  if (header !== undefined && header.toLowerCase().startsWith('apikey ')) return header.slice(7).trim();
  const key = req.headers['x-api-key'];
  return typeof key === 'string' ? key : '';
}

function keyMatches(presented: string, expected: Buffer): boolean {
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
