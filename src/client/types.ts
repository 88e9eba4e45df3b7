// Shapes the client library shares with its transports. Browser-safe: no Node imports.
import type { StreamPosition } from '../hub/types.js';

export type { StreamPosition };

export type ClientTransportName = 'websocket' | 'sse' | 'longpoll' | 'refresh';

/** A publication as clients receive it (data already parsed). */
export interface ClientPublication {
  readonly channel: string;
  readonly offset: number;
  readonly epoch: string;
  readonly time: number;
  readonly data: unknown;
  readonly info?: { userId: string; clientId: string; info?: Record<string, unknown> };
}

export interface HistoryAnswer {
  readonly position: StreamPosition;
  readonly lost: boolean;
  readonly publications: readonly Omit<ClientPublication, 'channel'>[];
}

export interface ServerError {
  readonly code: string;
  readonly message: string;
}

/** What a transport reports to the client. */
export interface TransportEvents {
  /** A live publication. */
  publication(publication: ClientPublication): void;
  /** The answer to a (re)subscription or a poll: history after the client's position. */
  caughtUp(channel: string, answer: HistoryAnswer): void;
  /** Publications after `last` were dropped for this connection (slow reader). */
  gap(channel: string, last: StreamPosition): void;
  presence(type: 'join' | 'leave', channel: string, user: { userId: string; info?: Record<string, unknown> }): void;
  channelError(channel: string, error: ServerError): void;
  /** The transport is gone; `code` decides whether to reconnect. */
  closed(code: number, reason: string): void;
}

/** Where the client stands per channel (undefined: nothing yet). */
export type Positions = ReadonlyMap<string, StreamPosition | undefined>;

export interface ClientTransport {
  readonly name: ClientTransportName;
  /** Resolves once usable; rejects when this transport cannot work here (the client falls back). */
  open(): Promise<void>;
  /** The set of channels changed, or `channel` must recover from its position. */
  resync(channel?: string): void;
  /** A request/response command: publish, presence, history. */
  command(cmd: string, fields: Record<string, unknown>): Promise<any>;
  close(): void;
}

export interface TransportContext {
  /** e.g. https://example.com/hub */
  readonly baseUrl: string;
  readonly token: () => Promise<string | undefined>;
  readonly fetch: typeof fetch;
  readonly events: TransportEvents;
  /** The client's channels and positions now. */
  readonly positions: () => Positions;
  readonly openTimeoutMs: number;
}

export class HubClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HubClientError';
  }
}

/** POSTs JSON to the hub and returns the parsed answer; non-2xx answers throw HubClientError. */
export async function postJson(context: TransportContext, path: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<any> {
  const token = await context.token();
  const response = await context.fetch(context.baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(token === undefined ? body : { ...body, token }),
    signal,
  });
  return answerOf(response);
}

/** Longest poll URL sent as a GET; longer polls (many channels) are POSTed. Proxies commonly accept 4–8 KB. */
const MAX_POLL_URL = 2000;

/**
 * A long-poll or refresh request. A GET (positions in the query string, the token in the
 * Authorization header, not the URL) unless its URL would be long: a GET costs the server
 * no body to read, and without a token it is a CORS "simple request" (no preflight).
 */
export async function pollJson(context: TransportContext, path: string, channels: Record<string, StreamPosition | null>, signal: AbortSignal): Promise<any> {
  const url = `${context.baseUrl}${path}?channels=${encodeURIComponent(JSON.stringify(channels))}`;
  if (url.length > MAX_POLL_URL) return postJson(context, path, { channels }, signal);
  const token = await context.token();
  const response = await context.fetch(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, signal });
  return answerOf(response);
}

async function answerOf(response: Response): Promise<any> {
  const answer = (await response.json()) as { error?: ServerError };
  if (!response.ok || answer.error !== undefined) {
    throw new HubClientError(answer.error?.code ?? `HTTP_${response.status}`, answer.error?.message ?? `HTTP ${response.status}`);
  }
  return answer;
}

/** `{channel: since|null}` for the HTTP transports. */
export function positionsObject(positions: Positions): Record<string, StreamPosition | null> {
  const out: Record<string, StreamPosition | null> = {};
  for (const [channel, position] of positions) out[channel] = position ?? null;
  return out;
}
