// Server-Sent Events: GET opens a stream for a fixed set of channels (in the URL);
// commands (publish, presence, history) go over HTTP POST (command.ts), so any worker can
// take them. To change channels the client reopens the stream with its positions.
//
//   GET /hub/sse?subscribe=<JSON {channel: {offset, epoch} | null}>&token=…
//   Last-Event-ID: offset:epoch:channel   (sent by EventSource on reconnect; resumes that channel)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { KoboldError } from '../../errors.js';
import type { DisconnectReason } from '../disconnect.js';
import { type HubNode, parseSseEventId } from '../node.js';
import type { Transport } from '../outbound.js';
import { encodeError, position } from '../protocol.js';
import type { StreamPosition } from '../types.js';
import { requestToken, requestUrl, requireMethod, sendError } from './http.js';

const subscribeParam = z.record(z.string().min(1).max(255), position.nullable());
const HEARTBEAT = Buffer.from(':\n\n');

class SseTransport implements Transport {
  readonly name = 'sse';
  readonly format = 'sse';

  constructor(private readonly res: ServerResponse) {}

  bufferedBytes(): number {
    return this.res.writableLength;
  }

  onDrain(listener: () => void): void {
    this.res.once('drain', listener);
  }

  writeMany(frames: readonly Buffer[]): void {
    if (this.res.destroyed) return;
    this.res.write(frames.length === 1 ? frames[0] : Buffer.concat(frames));
  }

  close(_disconnect: DisconnectReason): void {
    // the disconnect push was queued before this by the session
    this.res.end();
  }
}

/** Where the client stands per channel: the URL's `subscribe`, then Last-Event-ID for its channel. */
function readSubscriptions(req: IncomingMessage, url: URL): Map<string, StreamPosition | undefined> {
  let requested: Record<string, StreamPosition | null> = {};
  const raw = url.searchParams.get('subscribe');
  if (raw !== null) {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw new KoboldError('KOBOLD_ERR_HUB_INVALID_JSON', { reason: `query parameter "subscribe": ${(error as Error).message}` });
    }
    const parsed = subscribeParam.safeParse(value);
    if (!parsed.success) throw new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: `query parameter "subscribe": ${parsed.error.issues[0].message}` });
    requested = parsed.data;
  }
  const channels = new Map<string, StreamPosition | undefined>(Object.entries(requested).map(([c, p]) => [c, p ?? undefined]));
  const lastEventId = req.headers['last-event-id'] ?? url.searchParams.get('lastEventId') ?? undefined;
  const resumed = typeof lastEventId === 'string' ? parseSseEventId(lastEventId) : null;
  if (resumed !== null && channels.has(resumed.channel)) {
    const known = channels.get(resumed.channel);
    if (known === undefined || known.epoch !== resumed.position.epoch || known.offset < resumed.position.offset) {
      channels.set(resumed.channel, resumed.position);
    }
  }
  return channels;
}

export function createSseHandler(node: HubNode): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    open(node, req, res).catch((error) => sendError(res, error));
  };
}

async function open(node: HubNode, req: IncomingMessage, res: ServerResponse): Promise<void> {
  requireMethod(req, 'GET');
  const url = requestUrl(req);
  const subscriptions = readSubscriptions(req, url);
  const limit = node.options.limits.maxSubscriptionsPerConnection;
  if (subscriptions.size > limit) throw new KoboldError('KOBOLD_ERR_HUB_TOO_MANY_SUBSCRIPTIONS', { limit });
  const principal = await node.authenticate(requestToken(req, url));
  if (res.destroyed) return;

  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write('retry: 2000\n\n');
  const session = node.openSession(new SseTransport(res));
  const heartbeat = setInterval(() => session.send(HEARTBEAT), node.options.limits.sseHeartbeatMs);
  res.on('close', () => {
    clearInterval(heartbeat);
    session.closedByPeer();
  });
  const connected = session.connect(principal);
  session.send(node.frame('sse', '{"push":"connected",' + connected.slice(1)));
  for (const [channel, since] of subscriptions) {
    try {
      await session.subscribe(channel, since, 0, (result) => '{"push":"subscribed",' + result.slice(1));
    } catch (error) {
      session.send(node.frame('sse', encodeError(undefined, error).slice(0, -1) + ',"channel":' + JSON.stringify(channel) + '}'));
    }
  }
}
