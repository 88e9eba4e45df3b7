// Refresh mode: plain polling. POST { channels: { ch: {offset, epoch} | null } } (or GET with
// the same fields in the query string) and get everything after those positions at once.
// Works through any proxy. Anonymous polls on a backend with the history at hand (the shm
// ring) are answered right after the socket read that brought them, with no promise on the way.
// Most polls are a client that is up to date asking again with the same text: on a backend
// that versions its channels' heads (shm), that answer is kept whole and sent again, with no
// parsing, checking or encoding, until one of its channels moves.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HubNode } from '../node.js';
import type { Principal } from '../types.js';
import { catchUp, catchUpNow, type Poll, pollOf, principalOf, readPollText } from './catch-up.js';
import { ReadyJson, sendError, sendJson } from './http.js';

/** A backend that tells when a channel's head may have moved (ShmBackend). */
export interface HeadVersions {
  /** Changes whenever the channel's head may have; reads what is already published first. */
  headVersion(channel: string): number;
}

function hasHeadVersions(value: object): value is HeadVersions {
  return typeof (value as Partial<HeadVersions>).headVersion === 'function';
}

/** Bounds of the kept answers: a request text longer than this is not kept. */
const MAX_KEY_LENGTH = 2048;
const MAX_ANSWERS = 1000;

interface KeptAnswer {
  readonly json: ReadyJson;
  readonly channels: readonly string[];
  readonly versions: readonly number[];
}

/**
 * Answers with no news to anonymous polls, by the poll's whole text (method, URL and body),
 * each valid while its channels' head versions stay as they were before it was built. At
 * most MAX_ANSWERS, the oldest going first.
 */
export class UpToDateAnswers {
  private readonly answers = new Map<string, KeptAnswer>();

  constructor(private readonly heads: HeadVersions) {}

  get size(): number {
    return this.answers.size;
  }

  /**
   * The request's text, or null when its answer must not be kept (a token header, too long).
   * A GET's is its URL as it came (no copy); a POST's adds a line break, which no URL holds, and its body.
   */
  keyOf(req: IncomingMessage, body: string): string | null {
    if (req.headers.authorization !== undefined) return null;
    const key = req.method === 'GET' ? req.url! : `${req.url}\n${body}`;
    return key.length > MAX_KEY_LENGTH ? null : key;
  }

  get(key: string): ReadyJson | null {
    const kept = this.answers.get(key);
    if (kept === undefined) return null;
    for (let i = 0; i < kept.channels.length; i++) {
      if (this.heads.headVersion(kept.channels[i]) !== kept.versions[i]) {
        this.answers.delete(key);
        return null;
      }
    }
    return kept.json;
  }

  /** The head versions of a poll's channels, taken before its answer is built. */
  versionsOf(channels: readonly string[]): number[] {
    return channels.map((channel) => this.heads.headVersion(channel));
  }

  set(key: string, channels: readonly string[], versions: readonly number[], json: string): ReadyJson {
    const ready = new ReadyJson(json);
    if (this.answers.size >= MAX_ANSWERS) this.answers.delete(this.answers.keys().next().value as string);
    this.answers.set(key, { json: ready, channels, versions });
    return ready;
  }
}

export function createRefreshHandler(node: HubNode): (req: IncomingMessage, res: ServerResponse) => void {
  const kept = hasHeadVersions(node.backend) ? new UpToDateAnswers(node.backend) : null;
  return (req, res) => {
    readPollText(node, req, (error, body) => {
      if (error !== null) return sendError(res, error);
      const key = kept?.keyOf(req, body) ?? null;
      const ready = key === null ? null : kept!.get(key);
      if (ready !== null) return sendJson(res, 200, ready);
      let poll: Poll;
      try {
        poll = pollOf(node, req, body);
      } catch (problem) {
        return sendError(res, problem);
      }
      refresh(node, res, poll, key === null ? null : { answers: kept!, key });
    });
  };
}

function refresh(node: HubNode, res: ServerResponse, poll: Poll, keep: { answers: UpToDateAnswers; key: string } | null): void {
  const principal = principalOf(node, poll.token);
  if (!(principal instanceof Promise)) {
    // Only anonymous answers are kept: the key holds no token, and the versions come first.
    const channels = keep === null ? [] : Object.keys(poll.request.channels);
    const versions = keep === null ? [] : keep.answers.versionsOf(channels);
    const now = catchUpNow(node, principal, poll.request.channels);
    if (now !== null) {
      if (keep === null || now.news) return sendJson(res, 200, now.json);
      return sendJson(res, 200, keep.answers.set(keep.key, channels, versions, now.json));
    }
  }
  answerLater(node, res, poll, principal).catch((error: unknown) => sendError(res, error));
}

async function answerLater(node: HubNode, res: ServerResponse, poll: Poll, principal: Principal | Promise<Principal>): Promise<void> {
  const who = await principal;
  const result = catchUpNow(node, who, poll.request.channels) ?? (await catchUp(node, who, poll.request.channels));
  sendJson(res, 200, result.json);
}
