// Refresh mode: plain polling. POST { channels: { ch: {offset, epoch} | null } } and get
// everything after those positions at once. Works through any proxy.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HubNode } from '../node.js';
import { catchUp, readPollRequest } from './catch-up.js';
import { sendError, sendJson } from './http.js';

export function createRefreshHandler(node: HubNode): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    readPollRequest(node, req)
      .then(({ request, principal }) => catchUp(node, principal, request.channels))
      .then((result) => sendJson(res, 200, result.json))
      .catch((error) => sendError(res, error));
  };
}
