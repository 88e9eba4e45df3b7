// WebSocket client transport: commands and pushes as JSON (several frames may share one
// message, separated by newlines), or, with a MessagePack codec, one MessagePack message per
// binary WebSocket message (subprotocol kobold.msgpack).
import { type ClientTransport, HubClientError, type TransportContext } from '../types.js';

/** The part of the WebSocket API the client uses (browsers' WebSocket and the `ws` package both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server chose ('' for none). */
  readonly protocol: string;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: any }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: any) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** MessagePack encoding for the WebSocket transport; `messagePack` in src/client/msgpack.ts is msgpackr's. */
export interface MessagePackCodec {
  pack(value: unknown): Uint8Array;
  unpack(bytes: Uint8Array): any;
}

/** The subprotocol that makes the hub speak MessagePack (docs/protocol.md). */
const MESSAGEPACK_SUBPROTOCOL = 'kobold.msgpack';

export class WebSocketClientTransport implements ClientTransport {
  readonly name = 'websocket';
  private socket: WebSocketLike | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>();
  private subscribed = new Set<string>();

  constructor(
    private readonly context: TransportContext,
    private readonly WebSocketImpl: WebSocketConstructor,
    /** Speak MessagePack instead of JSON. */
    private readonly messagePack?: MessagePackCodec,
  ) {}

  async open(): Promise<void> {
    const url = this.context.baseUrl.replace(/^http/, 'ws') + '/ws';
    const messagePack = this.messagePack;
    const socket = messagePack === undefined ? new this.WebSocketImpl(url) : new this.WebSocketImpl(url, MESSAGEPACK_SUBPROTOCOL);
    if (messagePack !== undefined) socket.binaryType = 'arraybuffer';
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new HubClientError('TIMEOUT', 'WebSocket did not open')), this.context.openTimeoutMs);
      socket.onopen = () => {
        clearTimeout(timer);
        // A server that did not choose the subprotocol would answer in JSON: fall back instead.
        if (messagePack !== undefined && socket.protocol !== MESSAGEPACK_SUBPROTOCOL) {
          reject(new HubClientError('UNAVAILABLE', `the server did not accept the ${MESSAGEPACK_SUBPROTOCOL} subprotocol`));
        } else resolve();
      };
      socket.onerror = () => {
        clearTimeout(timer);
        reject(new HubClientError('UNREACHABLE', 'WebSocket failed to open'));
      };
      socket.onclose = (event) => {
        clearTimeout(timer);
        reject(new HubClientError('CLOSED', `WebSocket closed (${event.code})`));
      };
    });
    socket.onmessage =
      messagePack === undefined
        ? (event) => this.receiveText(String(event.data))
        : (event) => this.handle(messagePack.unpack(new Uint8Array(event.data)));
    socket.onerror = () => {};
    socket.onclose = (event) => {
      for (const { reject } of this.pending.values()) reject(new HubClientError('CLOSED', 'connection closed'));
      this.pending.clear();
      if (this.socket === socket) this.context.events.closed(event.code, event.reason);
    };
    await this.command('connect', { token: await this.context.token() });
    this.subscribed = new Set();
    // Open once the channels known now are subscribed: what is published after connect() resolves reaches them.
    await Promise.all(this.resync());
  }

  /** Subscribes what is new (or `channel` again) and unsubscribes what is gone; resolves per subscribe, failed or not. */
  resync(channel?: string): Promise<void>[] {
    const positions = this.context.positions();
    const subscribing: Promise<void>[] = [];
    for (const [name, since] of positions) {
      if (this.subscribed.has(name) && name !== channel) continue;
      this.subscribed.add(name);
      subscribing.push(
        this.command('subscribe', since === undefined ? { channel: name } : { channel: name, since })
          .then((answer) => this.context.events.caughtUp(name, answer))
          .catch((error: HubClientError) => {
            this.subscribed.delete(name);
            if (error.code !== 'CLOSED') this.context.events.channelError(name, error);
          }),
      );
    }
    for (const name of [...this.subscribed]) {
      if (positions.has(name)) continue;
      this.subscribed.delete(name);
      this.command('unsubscribe', { channel: name }).catch(() => {});
    }
    return subscribing;
  }

  command(cmd: string, fields: Record<string, unknown>): Promise<any> {
    const socket = this.socket;
    if (socket === null || socket.readyState !== 1) return Promise.reject(new HubClientError('CLOSED', 'not connected'));
    const id = this.nextId++;
    const clean = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
    const message = { id, cmd, ...clean };
    socket.send(this.messagePack === undefined ? JSON.stringify(message) : this.messagePack.pack(message));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  close(): void {
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000);
  }

  private receiveText(text: string): void {
    for (const line of text.split('\n')) this.handle(JSON.parse(line));
  }

  private handle(frame: any): void {
    const events = this.context.events;
    if (frame.push === 'pub') events.publication(frame);
    else if (frame.push === 'join' || frame.push === 'leave') events.presence(frame.push, frame.channel, frame.user);
    else if (frame.push === 'gap') events.gap(frame.channel, { offset: frame.offset, epoch: frame.epoch });
    else if (frame.id !== undefined && this.pending.has(frame.id)) {
      const { resolve, reject } = this.pending.get(frame.id)!;
      this.pending.delete(frame.id);
      if (frame.error !== undefined) reject(new HubClientError(frame.error.code, frame.error.message));
      else resolve(frame.result);
    }
  }
}
