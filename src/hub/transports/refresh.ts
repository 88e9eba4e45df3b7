// Refresh mode: plain polling. POST { channels: { ch: {offset, epoch} | null } } (or GET with
// the same fields in the query string) and get everything after those positions at once.
// Works through any proxy. Anonymous polls on a backend with the history at hand (the shm
// ring) are answered right after the socket read that brought them, with no promise on the way.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HubNode } from '../node.js';
import type { Principal } from '../types.js';
import { catchUp, catchUpNow, type Poll, principalOf, readPoll } from './catch-up.js';
import { sendError, sendJson } from './http.js';

export function createRefreshHandler(node: HubNode): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    readPoll(node, req, (error, poll) => {
      if (poll === null) sendError(res, error);
      else refresh(node, res, poll);
    });
  };
}

function refresh(node: HubNode, res: ServerResponse, poll: Poll): void {
  const principal = principalOf(node, poll.token);
  if (!(principal instanceof Promise)) {
    const now = catchUpNow(node, principal, poll.request.channels);
    if (now !== null) return sendJson(res, 200, now.json);
  }
  answerLater(node, res, poll, principal).catch((error: unknown) => sendError(res, error));
}

async function answerLater(node: HubNode, res: ServerResponse, poll: Poll, principal: Principal | Promise<Principal>): Promise<void> {
  const who = await principal;
  const result = catchUpNow(node, who, poll.request.channels) ?? (await catchUp(node, who, poll.request.channels));
  sendJson(res, 200, result.json);
}
