// One client connection (WebSocket or SSE) on this process: its identity, its
// subscriptions, its command handling and its outbound queue. Replies and pushes are built
// as JSON text; the transport's format wraps them (for MessagePack, re-encodes them).
import { describeError, KoboldError } from '../errors.js';
import { ANONYMOUS } from './auth.js';
import { checkAccess } from './channels.js';
import { Disconnects, type DisconnectReason } from './disconnect.js';
import type { HubNode } from './node.js';
import { OutboundQueue, type QueueOwner, type Transport } from './outbound.js';
import {
  type Command,
  CommandError,
  encodeDisconnectPush,
  encodeError,
  encodeGapPush,
  encodeHistoryResult,
  encodePresenceResult,
  encodeReply,
  parseCommand,
  parseMessagePackCommand,
} from './protocol.js';
import type { Principal, Publication, StreamPosition } from './types.js';

/**
 * One channel a session follows. The node delivers to it directly (no lookup per
 * delivery); while it recovers history, live publications wait in `held`.
 */
export class Subscription {
  held: { publication: Publication; frame: Buffer }[] | null = [];

  /** Whether this connection is in the channel's presence (set once the writer took it). */
  presence = false;

  constructor(readonly session: Session) {}

  /** A publication on this channel; `frame` is already encoded for the session's format. */
  deliver(publication: Publication, frame: Buffer): void {
    if (this.held !== null) this.held.push({ publication, frame });
    else this.session.send(frame, publication);
  }
}

export class Session implements QueueOwner {
  readonly clientId: string;
  principal: Principal | null = null;
  readonly subscriptions = new Map<string, Subscription>();
  private readonly queue: OutboundQueue;
  /** Command rate limit (token bucket): tokens left, and when they were last topped up. */
  private tokens: number;
  private tokensAt = performance.now();
  private expiryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The last command still running (later ones chain on it); null when none is, so an idle connection holds no promise. */
  private pending: Promise<void> | null = null;

  constructor(
    private readonly node: HubNode,
    readonly transport: Transport,
    clientId: string,
  ) {
    this.clientId = clientId;
    const limits = node.options.limits;
    this.tokens = limits.commandBurst;
    this.queue = new OutboundQueue(transport, limits, this);
  }

  gapFrame(channel: string, last: StreamPosition): Buffer {
    return this.node.frame(this.transport.format, encodeGapPush(channel, last));
  }

  overflowed(): void {
    this.close(Disconnects.slowConsumer);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get userId(): string {
    return this.principal?.userId ?? '';
  }

  /** Queues a frame (already in this transport's format). */
  send(frame: Buffer, publication?: Publication): void {
    this.queue.push(frame, publication);
  }

  private sendJson(json: string): void {
    this.send(this.node.frame(this.transport.format, json));
  }

  /** One command from the client, as text (WebSocket messages; newline-separated commands allowed). */
  handleText(text: string): void {
    if (this.closed) return;
    for (const line of text.includes('\n') ? text.split('\n') : [text]) {
      if (line.trim() === '') continue;
      let command: Command;
      try {
        command = parseCommand(line, this.node.options.limits.maxMessageBytes);
      } catch (error) {
        this.refuse(error);
        continue;
      }
      this.accept(command);
    }
  }

  /** One command from the client as MessagePack (a binary message on a `kobold.msgpack` WebSocket). */
  handleMessagePack(bytes: Uint8Array): void {
    if (this.closed) return;
    let command: Command;
    try {
      command = parseMessagePackCommand(bytes, this.node.options.limits.maxMessageBytes);
    } catch (error) {
      this.refuse(error);
      return;
    }
    this.accept(command);
  }

  /** Answers a command that could not be read with an error frame. */
  private refuse(error: unknown): void {
    if (!(error instanceof CommandError)) throw error;
    this.sendJson(encodeError(error.id, error.error));
  }

  private accept(command: Command): void {
    if (!this.takeToken()) {
      this.sendJson(encodeError(command.id, new KoboldError('KOBOLD_ERR_HUB_FLOOD', { limit: this.node.options.limits.commandsPerSecond })));
      return;
    }
    // One connection's commands run in order: a subscribe sent right after connect sees it.
    const running = (this.pending ?? Promise.resolve()).then(() => this.run(command));
    this.pending = running;
    void running.then(() => {
      if (this.pending === running) this.pending = null;
    });
  }

  /** `commandsPerSecond` sustained, bursts up to `commandBurst`. */
  private takeToken(): boolean {
    const limits = this.node.options.limits;
    const now = performance.now();
    this.tokens = Math.min(limits.commandBurst, this.tokens + ((now - this.tokensAt) / 1000) * limits.commandsPerSecond);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private async run(command: Command): Promise<void> {
    try {
      const result = await this.execute(command);
      if (result !== null && !this.closed) this.sendJson(encodeReply(command.id, result));
    } catch (error) {
      if (this.closed) return;
      if (!(error instanceof KoboldError)) this.node.logger.error({ err: describeError(error) }, 'hub: command failed');
      this.sendJson(encodeError(command.id, error));
      if (command.cmd === 'connect' || command.cmd === 'refresh') this.closeForTokenError(error);
    }
  }

  /** The reply's result JSON, or null when the command sent its reply itself. */
  private async execute(command: Command): Promise<string | null> {
    if (command.cmd === 'connect') return this.connect(await this.node.authenticate(command.token));
    if (this.principal === null) throw new KoboldError('KOBOLD_ERR_HUB_NOT_CONNECTED');
    switch (command.cmd) {
      case 'subscribe':
        await this.subscribe(command.channel, command.since, command.history ?? 0, (result) => encodeReply(command.id, result));
        return null;
      case 'unsubscribe':
        await this.unsubscribe(command.channel);
        return '{}';
      case 'publish': {
        const position = await this.node.publishAs(this.principal, this.clientId, command.channel, command.data);
        return JSON.stringify(position);
      }
      case 'presence': {
        const { users, counts } = await this.node.presenceAs(this.principal, command.channel);
        return encodePresenceResult(users, counts);
      }
      case 'history':
        return encodeHistoryResult(await this.node.historyAs(this.principal, command.channel, { limit: command.limit, since: command.since }));
      case 'ping':
        return '{}';
      case 'refresh': {
        const principal = await this.node.authenticate(command.token);
        if (principal.userId !== this.principal.userId) throw new KoboldError('KOBOLD_ERR_HUB_TOKEN_INVALID', { reason: 'the new token is for another user' });
        this.principal = principal;
        this.armExpiry();
        return '{}';
      }
    }
  }

  /** Sets the identity (the WebSocket `connect` command, or SSE at open). */
  connect(principal: Principal): string {
    if (this.principal !== null && this.principal.userId !== principal.userId) {
      throw new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: 'already connected as another user' });
    }
    this.principal = principal;
    this.armExpiry();
    return JSON.stringify({ client: this.clientId, user: principal.userId, expiresAt: principal.expiresAt });
  }

  /**
   * Subscribes, recovering from `since` when given (or sending the newest `history`
   * publications). Live publications that arrive meanwhile are held and sent after the
   * reply (built by `reply` around the history result), so the client sees each offset
   * once, in order.
   */
  async subscribe(channel: string, since: StreamPosition | undefined, history: number, reply: (result: string) => string): Promise<void> {
    const principal = this.principal ?? ANONYMOUS;
    const namespace = this.node.namespaces.resolve(channel);
    checkAccess(namespace, 'subscribe', principal, channel);
    let subscription = this.subscriptions.get(channel);
    if (subscription === undefined) {
      if (this.subscriptions.size >= this.node.options.limits.maxSubscriptionsPerConnection) {
        throw new KoboldError('KOBOLD_ERR_HUB_TOO_MANY_SUBSCRIPTIONS', { limit: this.node.options.limits.maxSubscriptionsPerConnection });
      }
      subscription = new Subscription(this);
      this.subscriptions.set(channel, subscription);
      this.node.follow(channel, subscription);
    } else {
      subscription.held ??= [];
    }
    const max = this.node.options.limits.maxHistoryPublications;
    let result;
    try {
      if (namespace.presence && !subscription.presence) {
        await this.node.backend.addPresence(channel, { clientId: this.clientId, userId: principal.userId, info: principal.info });
        subscription.presence = true;
      }
      result = await this.node.backend.history(channel, { since, limit: since === undefined ? Math.min(history, max) : max });
    } catch (error) {
      // Refused: no half subscription stays. Removing presence fails too while the writer is
      // away, and the writer drops a lost worker's presence itself.
      await this.unsubscribe(channel).catch(() => {});
      throw error;
    }
    const held = subscription.held ?? [];
    subscription.held = null;
    if (this.closed || this.subscriptions.get(channel) !== subscription) return;
    this.sendJson(reply(encodeHistoryResult(result, channel)));
    for (const { publication, frame } of held) {
      if (publication.epoch !== result.position.epoch || publication.offset > result.position.offset) this.send(frame, publication);
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    const subscription = this.subscriptions.get(channel);
    if (subscription === undefined) return;
    this.subscriptions.delete(channel);
    this.node.unfollow(channel, subscription);
    if (subscription.presence) await this.node.backend.removePresence(channel, this.clientId);
  }

  /** Closes the connection; `disconnect` tells the client whether to reconnect. */
  close(disconnect: DisconnectReason): void {
    if (this.closed) return;
    if (this.transport.format === 'sse') this.sendJson(encodeDisconnectPush(disconnect));
    this.queue.close();
    this.closed = true;
    this.transport.close(disconnect);
    this.cleanup();
  }

  /** The transport went away by itself. */
  closedByPeer(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.close();
    this.cleanup();
  }

  private cleanup(): void {
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    for (const channel of [...this.subscriptions.keys()]) {
      this.unsubscribe(channel).catch((error) => this.node.logger.warn({ err: describeError(error), channel }, 'hub: presence removal failed'));
    }
    this.node.forget(this);
  }

  private armExpiry(): void {
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    const expiresAt = this.principal?.expiresAt;
    if (expiresAt === undefined) return;
    // Timers cap at ~24.8 days; a longer token is re-armed when this one fires.
    const delay = Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1);
    this.expiryTimer = setTimeout(() => {
      if (Date.now() >= expiresAt) this.close(Disconnects.tokenExpired);
      else this.armExpiry();
    }, delay);
    this.expiryTimer.unref();
  }

  private closeForTokenError(error: unknown): void {
    if (!(error instanceof KoboldError)) return;
    if (error.code === 'KOBOLD_ERR_HUB_TOKEN_EXPIRED') this.close(Disconnects.tokenExpired);
    else if (error.code === 'KOBOLD_ERR_HUB_TOKEN_INVALID') this.close(Disconnects.invalidToken);
  }
}
