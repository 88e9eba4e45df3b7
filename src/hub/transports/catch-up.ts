// Stateless catch-up for the HTTP transports (long-polling and refresh): the client says
// where it stands per channel; the answer is everything after that, from history. Any web
// worker can answer, since the state is in the client's request and the shared log.
import type { IncomingMessage } from 'node:http';
import { KoboldError } from '../../errors.js';
import { checkAccess } from '../channels.js';
import type { HubNode } from '../node.js';
import { encodeHistoryResult, errorBody, type PollRequest, pollRequest } from '../protocol.js';
import type { Principal, StreamPosition } from '../types.js';
import { readJson, requestToken, requestUrl, requireMethod } from './http.js';

export interface CatchUp {
  /** `{"channels":{ch: {position, lost, publications}}, "errors":{ch: {code, message}}}` */
  readonly json: string;
  /** Something to tell the client now (publications, a lost stream, a first position or an error). */
  readonly news: boolean;
}

export async function catchUp(node: HubNode, principal: Principal, channels: Record<string, StreamPosition | null>): Promise<CatchUp> {
  const max = node.options.limits.maxHistoryPublications;
  let news = false;
  const results: string[] = [];
  const errors: Record<string, unknown> = {};
  await Promise.all(
    Object.entries(channels).map(async ([channel, since]) => {
      try {
        checkAccess(node.namespaces.resolve(channel), 'subscribe', principal, channel);
        const result = await node.backend.history(channel, since === null ? { limit: 0 } : { since, limit: max });
        if (since === null || result.lost || result.publications.length > 0) news = true;
        results.push(JSON.stringify(channel) + ':' + encodeHistoryResult(result));
      } catch (error) {
        news = true;
        errors[channel] = errorBody(error);
      }
    }),
  );
  return { json: '{"channels":{' + results.join(',') + '},"errors":' + JSON.stringify(errors) + '}', news };
}

/** Reads and checks a long-poll or refresh request (POST, JSON body). */
export async function readPollRequest(node: HubNode, req: IncomingMessage): Promise<{ request: PollRequest; principal: Principal }> {
  requireMethod(req, 'POST');
  const parsed = pollRequest.safeParse(await readJson(req, node.options.limits.maxMessageBytes));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: `field "${issue.path.join('.')}": ${issue.message}` });
  }
  const limit = node.options.limits.maxSubscriptionsPerConnection;
  if (Object.keys(parsed.data.channels).length > limit) throw new KoboldError('KOBOLD_ERR_HUB_TOO_MANY_SUBSCRIPTIONS', { limit });
  const principal = await node.authenticate(parsed.data.token ?? requestToken(req, requestUrl(req)));
  return { request: parsed.data, principal };
}
