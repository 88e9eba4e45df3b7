// The chat's HTTP API (JSON in, JSON out; errors as {error: {code, message}} with the
// error's status). Every message goes through here — clients never publish to the hub —
// so each one is checked, filtered and rate-limited once, in the worker that accepted it.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { HttpRoutes } from '../../app/http-routes.js';
import { describeError, KoboldError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { ChatService } from './chat.js';

const MAX_BODY_BYTES = 16 * 1024;

const sessionBody = z.union([z.object({ nick: z.string().max(100) }).strict(), z.object({ siteToken: z.string().max(8192) }).strict(), z.object({}).strict()]);
const sendBody = z.object({ room: z.string().max(100).optional(), text: z.string().max(MAX_BODY_BYTES) }).strict();
const joinBody = z.object({ room: z.string().max(100) }).strict();
const systemBody = z.object({ room: z.string().max(100).optional(), text: z.string().max(MAX_BODY_BYTES) }).strict();

export function registerApi(http: HttpRoutes, chat: ChatService, logger: Logger): void {
  const handle = <T>(schema: z.ZodType<T>, run: (req: IncomingMessage, body: T) => Promise<unknown>) => {
    return async (req: IncomingMessage, res: ServerResponse) => {
      try {
        const body = parse(schema, await http.json(req, MAX_BODY_BYTES));
        http.send(res, 200, { result: await run(req, body) });
      } catch (error) {
        sendError(http, res, error, logger);
      }
    };
  };

  http.get('/chat/api/rooms', (_req, res) => {
    http.send(res, 200, { result: { rooms: chat.rooms.list().map((room) => ({ name: room.name, topic: room.topic })) } });
  });

  /** {nick}: a guest; {siteToken}: a host-site user; {} with a Bearer token: a renewed token. */
  http.post(
    '/chat/api/session',
    handle(sessionBody, (req, body) => {
      if ('nick' in body) return chat.identity.guest(body.nick);
      if ('siteToken' in body) return chat.identity.site(body.siteToken);
      return chat.identity.refresh(bearer(req) ?? '');
    }),
  );

  http.post(
    '/chat/api/send',
    handle(sendBody, async (req, body) => chat.send(await chat.identity.authenticate(bearer(req)), body.room, body.text)),
  );

  /** Re-entering a room (a page reload): like /join without creating, not rate-limited as it publishes nothing. */
  http.post(
    '/chat/api/join',
    handle(joinBody, async (req, body) => {
      const user = await chat.identity.authenticate(bearer(req));
      chat.rooms.get(body.room);
      const { room } = await chat.rooms.join(user, body.room);
      return { joined: room };
    }),
  );

  /** The server API: a system message to one room or all of them. */
  http.post(
    '/chat/api/system',
    handle(systemBody, async (req, body) => {
      checkApiKey(chat.config.apiKey, req);
      return { rooms: await chat.system(body.room, body.text) };
    }),
  );
}

function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : undefined;
}

function checkApiKey(expected: string | undefined, req: IncomingMessage): void {
  const given = req.headers['x-api-key'];
  if (expected === undefined || typeof given !== 'string') throw new KoboldError('KOBOLD_ERR_CHAT_API_KEY');
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new KoboldError('KOBOLD_ERR_CHAT_API_KEY');
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue.path.length > 0 ? `field "${issue.path.join('.')}": ` : '';
  throw new KoboldError('KOBOLD_ERR_BAD_REQUEST', { reason: where + issue.message });
}

function sendError(http: HttpRoutes, res: ServerResponse, error: unknown, logger: Logger): void {
  if (error instanceof KoboldError && error.status !== undefined) {
    http.send(res, error.status, { error: error.toJSON() });
    return;
  }
  logger.error({ err: describeError(error) }, 'chat: request failed');
  http.send(res, 500, { error: { code: 'KOBOLD_ERR_INTERNAL', message: 'internal error' } });
}
