// Stateless catch-up for the HTTP transports (long-polling and refresh): the client says
// where it stands per channel; the answer is everything after that, from history. Any web
// worker can answer, since the state is in the client's request and the shared log. When
// the backend holds the history at hand (LocalHistory: the shm ring, memory), the answer is
// built right after the socket read that brought the request, with no promise on the way.
import type { IncomingMessage } from 'node:http';
import { KoboldError } from '../../errors.js';
import { ANONYMOUS } from '../auth.js';
import { checkAccess } from '../channels.js';
import type { HubNode } from '../node.js';
import { encodeHistoryResult, errorBody, type PollRequest, parsePollRequest } from '../protocol.js';
import { hasLocalHistory, type HistoryQuery, type HistoryResult, type Principal, type StreamPosition } from '../types.js';
import { bearerToken, noBodyThen, parseJson, readBodyThen } from './http.js';

export interface CatchUp {
  /** `{"channels":{ch: {position, lost, publications}}, "errors":{ch: {code, message}}}` */
  readonly json: string;
  /** Something to tell the client now (publications, a lost stream, a first position or an error). */
  readonly news: boolean;
}

type Positions = PollRequest['channels'];

/** Collects the answer channel by channel. */
class CatchUpBuilder {
  private channels = '';
  private errors = '';
  news = false;

  add(channel: string, since: StreamPosition | null, result: HistoryResult): void {
    if (since === null || result.lost || result.publications.length > 0) this.news = true;
    this.channels += (this.channels === '' ? '' : ',') + JSON.stringify(channel) + ':' + encodeHistoryResult(result);
  }

  fail(channel: string, error: unknown): void {
    this.news = true;
    this.errors += (this.errors === '' ? '' : ',') + JSON.stringify(channel) + ':' + JSON.stringify(errorBody(error));
  }

  done(): CatchUp {
    return { json: '{"channels":{' + this.channels + '},"errors":{' + this.errors + '}}', news: this.news };
  }
}

function historyQuery(node: HubNode, since: StreamPosition | null): HistoryQuery {
  return since === null ? { limit: 0 } : { since, limit: node.options.limits.maxHistoryPublications };
}

/**
 * The answer at once when the backend has every channel's history at hand; null when one of
 * them needs another process (then use catchUp).
 */
export function catchUpNow(node: HubNode, principal: Principal, channels: Positions): CatchUp | null {
  const backend = node.backend;
  if (!hasLocalHistory(backend)) return null;
  const answer = new CatchUpBuilder();
  for (const channel in channels) {
    const since = channels[channel];
    let result: HistoryResult | null;
    try {
      checkAccess(node.namespaces.resolve(channel), 'subscribe', principal, channel);
      result = backend.historyNow(channel, historyQuery(node, since));
    } catch (error) {
      answer.fail(channel, error);
      continue;
    }
    if (result === null) return null;
    answer.add(channel, since, result);
  }
  return answer.done();
}

/** The answer, asking the backend for what it does not hold at hand. */
export async function catchUp(node: HubNode, principal: Principal, channels: Positions): Promise<CatchUp> {
  const answer = new CatchUpBuilder();
  await Promise.all(
    Object.keys(channels).map(async (channel) => {
      const since = channels[channel];
      try {
        checkAccess(node.namespaces.resolve(channel), 'subscribe', principal, channel);
        answer.add(channel, since, await node.backend.history(channel, historyQuery(node, since)));
      } catch (error) {
        answer.fail(channel, error);
      }
    }),
  );
  return answer.done();
}

/** A checked poll request and who sent it. */
export interface Poll {
  readonly request: PollRequest;
  readonly token: string | undefined;
}

/**
 * Reads and checks a long-poll or refresh request: POST with a JSON body, or GET with the
 * same fields in the query string (`channels` as URL-encoded JSON, `token`, `timeoutMs`).
 * Calls `then` once the turn's socket reads are done (readBodyThen), not from inside the
 * request handler: a POST's body is then there whole, and measured, the answers of a turn
 * written after its reads cost less per poll than each one written between them.
 */
export function readPoll(node: HubNode, req: IncomingMessage, then: (error: unknown, poll: Poll | null) => void): void {
  readPollText(node, req, (error, body) => {
    let poll: Poll | null = null;
    try {
      if (error === null) poll = pollOf(node, req, body);
    } catch (problem) {
      error = problem;
    }
    then(error, poll);
  });
}

/** readPoll's first half: the request's body ('' for GET), once the turn's socket reads are done. */
export function readPollText(node: HubNode, req: IncomingMessage, then: (error: unknown, body: string) => void): void {
  if (req.method === 'GET') noBodyThen(then);
  else if (req.method === 'POST') readBodyThen(req, node.options.limits.maxMessageBytes, then);
  else then(new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: 'use POST (a JSON body) or GET (the query string) for this endpoint' }), '');
}

/** readPoll's second half: the checked poll of a GET request or of a POST request's body. */
export function pollOf(node: HubNode, req: IncomingMessage, body: string): Poll {
  if (req.method !== 'GET') return checkedPoll(node, parseJson(body), bearerToken(req) ?? queryToken(req.url ?? ''));
  const query = new URLSearchParams(queryOf(req.url ?? ''));
  return checkedPoll(node, pollFromQuery(query), bearerToken(req) ?? query.get('token') ?? undefined);
}

/** `token` is the request's own (a header or the query string), used when the fields have none. */
function checkedPoll(node: HubNode, value: unknown, token: string | undefined): Poll {
  const request = parsePollRequest(value);
  const limit = node.options.limits.maxSubscriptionsPerConnection;
  let count = 0;
  for (const _ in request.channels) if (++count > limit) throw new KoboldError('KOBOLD_ERR_HUB_TOO_MANY_SUBSCRIPTIONS', { limit });
  return { request, token: request.token ?? token };
}

function queryOf(url: string): string {
  const start = url.indexOf('?');
  return start === -1 ? '' : url.slice(start + 1);
}

function queryToken(url: string): string | undefined {
  const query = queryOf(url);
  return query === '' ? undefined : (new URLSearchParams(query).get('token') ?? undefined);
}

/** A GET request's fields: `?channels=<JSON>&timeoutMs=…`; other parameters (cache busters) are ignored. */
function pollFromQuery(query: URLSearchParams): Record<string, unknown> {
  const channels = query.get('channels');
  const timeoutMs = query.get('timeoutMs');
  const fields: Record<string, unknown> = {};
  if (channels !== null) {
    try {
      fields.channels = JSON.parse(channels);
    } catch (error) {
      throw new KoboldError('KOBOLD_ERR_HUB_INVALID_JSON', { reason: `query parameter "channels": ${(error as Error).message}` });
    }
  }
  if (timeoutMs !== null) fields.timeoutMs = /^\d+$/.test(timeoutMs) ? Number(timeoutMs) : timeoutMs;
  return fields;
}

/** The principal of a poll's token: at once for anonymous polls (no token), else after checking it. */
export function principalOf(node: HubNode, token: string | undefined): Principal | Promise<Principal> {
  return token === undefined || token === '' ? ANONYMOUS : node.authenticate(token);
}
