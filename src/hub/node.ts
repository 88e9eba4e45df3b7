// The hub in one process: this process's client sessions and what they follow, delivery
// of each publication from the backend's log to local subscribers (encoded once per
// format), and the server-side API apps use (`ctx.hub`).
import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { describeError, KoboldError } from '../errors.js';
import { ANONYMOUS, createTokenVerifier, type TokenOptions, type TokenVerifier } from './auth.js';
import { checkAccess, CONTROL_CHANNEL, NamespaceTable } from './channels.js';
import { Disconnects, type DisconnectReason } from './disconnect.js';
import type { FrameFormat, Transport } from './outbound.js';
import { type HubOptions, type HubOptionsInput, resolveHubOptions } from './options.js';
import { encodeFrame, encodeMessagePackPublication, encodePresencePush, encodePublicationPush } from './protocol.js';
import { Session, type Subscription } from './session.js';
import {
  type HistoryQuery,
  type Hub,
  type HistoryResult,
  type HubBackend,
  hasLocalPublisher,
  isCloser,
  isReconnectNotifier,
  type PresenceCounts,
  type PresenceEvent,
  type PresenceUser,
  type Principal,
  type Publication,
  type StreamPosition,
  type Unsubscribe,
} from './types.js';

export interface HubNodeOptions {
  backend: HubBackend;
  /** Namespaces and limits; validated here (KOBOLD_ERR_HUB_OPTIONS names a bad one). */
  hub?: HubOptionsInput | HubOptions;
  /** Without it, only anonymous connections are possible. */
  auth?: TokenOptions;
  logger?: Logger;
}

/** What subscribers of one channel on this process are. */
interface ChannelFollowers {
  /** Each local session's subscription to the channel; delivery calls them directly. */
  readonly subscriptions: Set<Subscription>;
  readonly listeners: Set<(publication: Publication) => void>;
  /** Where this process last saw the stream, to re-check after a backend reconnect. */
  last?: StreamPosition;
}

interface ControlMessage {
  type: 'disconnect';
  userId: string;
  reconnect: boolean;
}

export class HubNode implements Hub {
  /** Prefix of this process's client ids, unique across processes. */
  readonly id = randomBytes(6).toString('base64url');
  readonly options: HubOptions;
  readonly namespaces: NamespaceTable;
  readonly logger: Logger;
  private readonly channels = new Map<string, ChannelFollowers>();
  private readonly sessions = new Set<Session>();
  private readonly verifyToken: TokenVerifier | null;
  private readonly stopListening: Unsubscribe[] = [];
  private clientCounter = 0;
  private markClosing!: () => void;
  /** Resolves when close() starts; waiting long-polls answer then, so a draining worker is not held up. */
  readonly closing = new Promise<void>((resolve) => (this.markClosing = resolve));

  constructor(readonly backendOptions: HubNodeOptions) {
    this.options = isResolved(backendOptions.hub) ? backendOptions.hub : resolveHubOptions(backendOptions.hub);
    this.namespaces = new NamespaceTable(this.options.namespaces);
    this.logger = backendOptions.logger ?? pino({ level: 'silent' });
    this.verifyToken = backendOptions.auth === undefined ? null : createTokenVerifier(backendOptions.auth);
    const backend = backendOptions.backend;
    this.stopListening.push(
      backend.onPublication((publication) => this.dispatch(publication)),
      backend.onPresence((event) => this.dispatchPresence(event)),
    );
    if (isReconnectNotifier(backend)) this.stopListening.push(backend.onReconnect(() => void this.recheckAll()));
  }

  get backend(): HubBackend {
    return this.backendOptions.backend;
  }

  // --- server-side API (apps): no access rules, the server may do anything

  /** Publishes `data` (serialized to JSON once). Resolves with the assigned position. */
  publish(channel: string, data: unknown): Promise<StreamPosition> {
    this.namespaces.resolve(channel);
    return this.backend.publish(channel, toJson(data));
  }

  /**
   * Publishes at once when the backend assigns positions in this process (the writer's
   * own state), with the checks of publish(); null when it lives elsewhere (then publish()).
   */
  publishNow(channel: string, data: unknown): StreamPosition | null {
    const backend = this.backend;
    if (!hasLocalPublisher(backend)) return null;
    this.namespaces.resolve(channel);
    return backend.publishNow(channel, toJson(data));
  }

  /** Calls `listener` for every publication on `channel` seen by this process. */
  subscribe(channel: string, listener: (publication: Publication) => void): Unsubscribe {
    this.namespaces.resolve(channel);
    this.followers(channel).listeners.add(listener);
    return () => {
      const followers = this.channels.get(channel);
      followers?.listeners.delete(listener);
      this.dropIfUnfollowed(channel);
    };
  }

  history(channel: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    this.namespaces.resolve(channel);
    return this.backend.history(channel, query);
  }

  presence(channel: string): Promise<PresenceUser[]> {
    this.checkPresenceEnabled(channel);
    return this.backend.presence(channel);
  }

  presenceCounts(channel: string): Promise<PresenceCounts> {
    this.checkPresenceEnabled(channel);
    return this.backend.presenceCounts(channel);
  }

  /** Disconnects every connection of the user, on every process. */
  async disconnect(userId: string, options: { reconnect?: boolean } = {}): Promise<void> {
    const message: ControlMessage = { type: 'disconnect', userId, reconnect: options.reconnect ?? false };
    await this.backend.publish(CONTROL_CHANNEL, JSON.stringify(message));
  }

  /** Connections on this process. */
  stats(): { connections: number; channels: number } {
    return { connections: this.sessions.size, channels: this.channels.size };
  }

  /** Closes every connection (code 3000: reconnect) and stops listening; closes the backend if it owns resources. */
  async close(options: { closeBackend?: boolean } = {}): Promise<void> {
    this.markClosing();
    for (const session of [...this.sessions]) session.close(Disconnects.shutdown);
    for (const stop of this.stopListening) stop();
    if (options.closeBackend !== false && isCloser(this.backend)) await this.backend.close();
  }

  // --- for transports and sessions

  /** A new connection on this process; the transport calls session.handleText (or handleMessagePack) / closedByPeer. */
  openSession(transport: Transport): Session {
    const session = new Session(this, transport, `${this.id}.${(++this.clientCounter).toString(36)}`);
    this.sessions.add(session);
    return session;
  }

  /** The principal a token stands for; no token: anonymous. */
  async authenticate(token: string | undefined): Promise<Principal> {
    if (token === undefined || token === '') return ANONYMOUS;
    if (this.verifyToken === null) throw new KoboldError('KOBOLD_ERR_HUB_TOKEN_INVALID', { reason: 'this server accepts no tokens (auth is not configured)' });
    return this.verifyToken(token);
  }

  async publishAs(principal: Principal, clientId: string, channel: string, data: unknown): Promise<StreamPosition> {
    checkAccess(this.namespaces.resolve(channel), 'publish', principal, channel);
    const info = { userId: principal.userId, clientId, ...(principal.info === undefined ? {} : { info: principal.info }) };
    return this.backend.publish(channel, toJson(data), { info });
  }

  async historyAs(principal: Principal, channel: string, query: HistoryQuery): Promise<HistoryResult> {
    checkAccess(this.namespaces.resolve(channel), 'seeHistory', principal, channel);
    const max = this.options.limits.maxHistoryPublications;
    return this.backend.history(channel, { ...query, limit: Math.min(query.limit ?? max, max) });
  }

  async presenceAs(principal: Principal, channel: string): Promise<{ users: PresenceUser[]; counts: PresenceCounts }> {
    checkAccess(this.checkPresenceEnabled(channel), 'seePresence', principal, channel);
    const [users, counts] = await Promise.all([this.backend.presence(channel), this.backend.presenceCounts(channel)]);
    return { users, counts };
  }

  follow(channel: string, subscription: Subscription): void {
    this.followers(channel).subscriptions.add(subscription);
  }

  unfollow(channel: string, subscription: Subscription): void {
    this.channels.get(channel)?.subscriptions.delete(subscription);
    this.dropIfUnfollowed(channel);
  }

  forget(session: Session): void {
    this.sessions.delete(session);
  }

  /** A JSON text wrapped for a transport format (for MessagePack, the message it holds). */
  frame(format: FrameFormat, json: string): Buffer {
    return encodeFrame(format, json);
  }

  // --- delivery

  private dispatch(publication: Publication): void {
    if (publication.channel === CONTROL_CHANNEL) return this.control(publication.data);
    const followers = this.channels.get(publication.channel);
    if (followers === undefined) return;
    followers.last = publication;
    // Encoded once per format, on first need; every subscriber gets the same bytes.
    let webSocket: Buffer | undefined;
    let sse: Buffer | undefined;
    let messagePack: Buffer | undefined;
    for (const subscription of followers.subscriptions) {
      const format = subscription.session.transport.format;
      const frame =
        format === 'websocket'
          ? (webSocket ??= encodeFrame('websocket', encodePublicationPush(publication)))
          : format === 'sse'
            ? (sse ??= encodeSseEvent(publication))
            : (messagePack ??= encodeMessagePackPublication(publication));
      subscription.deliver(publication, frame);
    }
    for (const listener of followers.listeners) {
      try {
        listener(publication);
      } catch (error) {
        this.logger.error({ err: describeError(error), channel: publication.channel }, 'hub: a subscribe listener threw');
      }
    }
  }

  private dispatchPresence(event: PresenceEvent): void {
    const followers = this.channels.get(event.channel);
    if (followers === undefined || followers.subscriptions.size === 0 || !this.namespaces.find(event.channel)?.joinLeave) return;
    const json = encodePresencePush(event);
    const frames: Partial<Record<FrameFormat, Buffer>> = {};
    for (const { session } of followers.subscriptions) {
      const format = session.transport.format;
      session.send((frames[format] ??= this.frame(format, json)));
    }
  }

  private control(data: string): void {
    const message = JSON.parse(data) as ControlMessage;
    if (message.type !== 'disconnect') return;
    const reason: DisconnectReason = message.reconnect ? Disconnects.forceReconnect : Disconnects.forceNoReconnect;
    for (const session of [...this.sessions]) if (session.userId === message.userId) session.close(reason);
  }

  /** After the backend reconnected: deliver what this process missed, in order, per followed channel. */
  private async recheckAll(): Promise<void> {
    for (const [channel, followers] of this.channels) {
      const last = followers.last;
      if (last === undefined) continue;
      try {
        const missed = await this.backend.history(channel, { since: { offset: last.offset, epoch: last.epoch } });
        // A lost stream (new epoch) reaches clients with its next publication: they resync then.
        if (!missed.lost) for (const publication of missed.publications) this.dispatchIfNewer(publication);
      } catch (error) {
        this.logger.warn({ err: describeError(error), channel }, 'hub: could not re-check a channel after reconnecting');
      }
    }
  }

  private dispatchIfNewer(publication: Publication): void {
    const last = this.channels.get(publication.channel)?.last;
    if (last !== undefined && last.epoch === publication.epoch && publication.offset <= last.offset) return;
    this.dispatch(publication);
  }

  private followers(channel: string): ChannelFollowers {
    let followers = this.channels.get(channel);
    if (followers === undefined) this.channels.set(channel, (followers = { subscriptions: new Set(), listeners: new Set() }));
    return followers;
  }

  private dropIfUnfollowed(channel: string): void {
    const followers = this.channels.get(channel);
    if (followers !== undefined && followers.subscriptions.size === 0 && followers.listeners.size === 0) this.channels.delete(channel);
  }

  private checkPresenceEnabled(channel: string) {
    const namespace = this.namespaces.resolve(channel);
    if (!namespace.presence) throw new KoboldError('KOBOLD_ERR_HUB_PRESENCE_DISABLED', { namespace: namespace.name });
    return namespace;
  }
}

/** An SSE event for a publication; its id lets a native EventSource resume that channel. */
export function encodeSseEvent(publication: Publication): Buffer {
  return Buffer.from('id: ' + sseEventId(publication) + '\ndata: ' + encodePublicationPush(publication) + '\n\n');
}

/** `offset:epoch:channel` — parsed back by parseSseEventId(). */
export function sseEventId(position: { offset: number; epoch: string; channel: string }): string {
  return position.offset + ':' + position.epoch + ':' + position.channel;
}

export function parseSseEventId(id: string): { channel: string; position: StreamPosition } | null {
  const match = /^(\d+):([^:]*):(.+)$/.exec(id);
  if (match === null) return null;
  return { channel: match[3], position: { offset: Number(match[1]), epoch: match[2] } };
}

function toJson(data: unknown): string {
  const json = JSON.stringify(data);
  if (json === undefined) throw new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: 'data is not JSON-serializable' });
  return json;
}

function isResolved(hub: HubOptionsInput | HubOptions | undefined): hub is HubOptions {
  return hub !== undefined && Object.isFrozen(hub) && Array.isArray(hub.namespaces) && hub.limits !== undefined;
}
