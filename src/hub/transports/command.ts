// Commands over HTTP POST for clients without a WebSocket (SSE, long-polling, refresh):
// publish, presence, history. Each request carries its token; any worker can answer.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KoboldError } from '../../errors.js';
import type { HubNode } from '../node.js';
import { encodeHistoryResult, encodePresenceResult, httpCommand } from '../protocol.js';
import { readJson, requestToken, requestUrl, requireMethod, sendError, sendJson } from './http.js';

export function createCommandHandler(node: HubNode): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    run(node, req)
      .then((result) => sendJson(res, 200, '{"result":' + result + '}'))
      .catch((error) => sendError(res, error));
  };
}

async function run(node: HubNode, req: IncomingMessage): Promise<string> {
  requireMethod(req, 'POST');
  const parsed = httpCommand.safeParse(await readJson(req, node.options.limits.maxMessageBytes));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.length > 0 ? `field "${issue.path.join('.')}": ` : '';
    throw new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: field + issue.message });
  }
  const command = parsed.data;
  const principal = await node.authenticate(command.token ?? requestToken(req, requestUrl(req)));
  switch (command.cmd) {
    case 'publish':
      return JSON.stringify(await node.publishAs(principal, `http.${node.id}`, command.channel, command.data));
    case 'presence': {
      const { users, counts } = await node.presenceAs(principal, command.channel);
      return encodePresenceResult(users, counts);
    }
    case 'history':
      return encodeHistoryResult(await node.historyAs(principal, command.channel, { limit: command.limit, since: command.since }));
  }
}
