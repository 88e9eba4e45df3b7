// Long-polling: like refresh, but when nothing is new the request waits until a
// publication arrives on one of its channels or the timeout passes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HubNode } from '../node.js';
import type { Unsubscribe } from '../types.js';
import { catchUp, readPollRequest } from './catch-up.js';
import { sendError, sendJson } from './http.js';

export function createLongPollHandler(node: HubNode): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    poll(node, req, res).catch((error) => sendError(res, error));
  };
}

async function poll(node: HubNode, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { request, principal } = await readPollRequest(node, req);
  const timeoutMs = Math.min(request.timeoutMs ?? node.options.limits.longPollTimeoutMs, node.options.limits.longPollTimeoutMs);
  let wake: () => void = () => {};
  let published = false;
  const woken = new Promise<void>((resolve) => (wake = resolve));
  // Listen before reading history, so a publication in between is not missed.
  const listening: Unsubscribe[] = [];
  for (const channel of Object.keys(request.channels)) {
    try {
      listening.push(
        node.subscribe(channel, () => {
          published = true;
          setImmediate(wake); // let a burst of publications land in one answer
        }),
      );
    } catch {
      // a bad channel: catchUp reports it
    }
  }
  const timer = setTimeout(wake, timeoutMs);
  res.on('close', wake);
  void node.closing.then(wake);
  try {
    let result = await catchUp(node, principal, request.channels);
    if (!result.news && !published) {
      await woken;
      if (res.destroyed) return;
      result = await catchUp(node, principal, request.channels);
    } else if (!result.news) {
      result = await catchUp(node, principal, request.channels);
    }
    sendJson(res, 200, result.json);
  } finally {
    clearTimeout(timer);
    for (const stop of listening) stop();
  }
}
