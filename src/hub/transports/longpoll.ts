// Long-polling: like refresh, but when nothing is new the request waits until a
// publication arrives on one of its channels or the timeout passes. A poll with news in
// the backend's history at hand is answered at once, like a refresh, before anything is
// set up to wait.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HubNode } from '../node.js';
import type { Principal, Unsubscribe } from '../types.js';
import { type CatchUp, catchUp, catchUpNow, type Poll, principalOf, readPoll } from './catch-up.js';
import { sendError, sendJson } from './http.js';

export function createLongPollHandler(node: HubNode): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    readPoll(node, req, (error, poll) => {
      if (poll === null) sendError(res, error);
      else answerPoll(node, res, poll);
    });
  };
}

function answerPoll(node: HubNode, res: ServerResponse, poll: Poll): void {
  const principal = principalOf(node, poll.token);
  if (!(principal instanceof Promise)) {
    const now = catchUpNow(node, principal, poll.request.channels);
    if (now?.news === true) return sendJson(res, 200, now.json);
    // Nothing new: waiting starts in this same turn, so no publication can slip in between.
    if (now !== null) return void wait(node, res, poll, principal, now).catch((error: unknown) => sendError(res, error));
  }
  void principalThenWait(node, res, poll, principal).catch((error: unknown) => sendError(res, error));
}

async function principalThenWait(node: HubNode, res: ServerResponse, poll: Poll, principal: Principal | Promise<Principal>): Promise<void> {
  await wait(node, res, poll, await principal, null);
}

/**
 * Waits for news: listens on the channels, then (unless `upToDate` was read in this same
 * turn) reads history, and reads it again after a publication, the timeout, the client
 * leaving or the node closing.
 */
async function wait(node: HubNode, res: ServerResponse, poll: Poll, principal: Principal, upToDate: CatchUp | null): Promise<void> {
  const channels = poll.request.channels;
  const limit = node.options.limits.longPollTimeoutMs;
  const timeoutMs = Math.min(poll.request.timeoutMs ?? limit, limit);
  let wake: () => void = () => {};
  let published = false;
  const woken = new Promise<void>((resolve) => (wake = resolve));
  // Listen before reading history, so a publication in between is not missed.
  const listening: Unsubscribe[] = [];
  for (const channel in channels) {
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
  const stopWaiting = onClosing(node, wake);
  try {
    let result = upToDate ?? (await read(node, principal, channels));
    if (!result.news && !published) {
      await woken;
      if (res.destroyed) return;
      result = await read(node, principal, channels);
    } else if (!result.news) {
      result = await read(node, principal, channels);
    }
    sendJson(res, 200, result.json);
  } finally {
    clearTimeout(timer);
    stopWaiting();
    for (const stop of listening) stop();
  }
}

function read(node: HubNode, principal: Principal, channels: Poll['request']['channels']): CatchUp | Promise<CatchUp> {
  return catchUpNow(node, principal, channels) ?? catchUp(node, principal, channels);
}

/** Waiting polls per node, answered when it starts closing (one reaction on node.closing, not one per poll). */
const waitingPolls = new WeakMap<HubNode, Set<() => void>>();

function onClosing(node: HubNode, wake: () => void): Unsubscribe {
  let waiting = waitingPolls.get(node);
  if (waiting === undefined) {
    const polls = (waiting = new Set());
    waitingPolls.set(node, polls);
    void node.closing.then(() => {
      for (const wakeOne of polls) wakeOne();
    });
  }
  waiting.add(wake);
  return () => waiting.delete(wake);
}
