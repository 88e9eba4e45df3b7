// WebSocket transport: JSON commands in; frames out are whole WebSocket text frames built
// once per publication (protocol.ts), written as they are to the connection's socket. A
// connection that chose the `kobold.msgpack` subprotocol speaks MessagePack instead, in
// binary frames both ways. Frames due to one connection in one turn leave in one socket
// write (one message each). The app layer does the HTTP upgrade and hands the socket here.
import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { KoboldError } from '../../errors.js';
import type { DisconnectReason } from '../disconnect.js';
import type { HubNode } from '../node.js';
import type { FrameFormat, Transport } from '../outbound.js';
import { encodeError, encodeFrame, MESSAGEPACK_SUBPROTOCOL } from '../protocol.js';
import type { Session } from '../session.js';

/** Where the shared listeners below find a connection's transport on its ws socket. */
const TRANSPORT = Symbol('kobold.hubTransport');
type HubWebSocket = WebSocket & { [TRANSPORT]: WebSocketTransport };
const transportOf = (socket: WebSocket) => (socket as HubWebSocket)[TRANSPORT];

class WebSocketTransport implements Transport {
  readonly name = 'websocket';
  /** Heard from since the last keep-alive round. */
  alive = true;
  /** Set right after the node opened it for this transport. */
  session!: Session;

  constructor(
    readonly socket: WebSocket,
    /** The TCP or TLS socket under `socket`; ws writes its own frames (pings, close) to it too. */
    private readonly raw: Duplex,
    /** `websocket` (JSON text frames) or `msgpack` (binary frames), chosen at the handshake. */
    readonly format: FrameFormat,
    readonly keepAlive: KeepAlive,
  ) {}

  bufferedBytes(): number {
    return this.raw.writableLength;
  }

  onDrain(listener: () => void): void {
    this.raw.once('drain', listener);
  }

  writeMany(frames: readonly Buffer[]): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (frames.length === 1) {
      this.raw.write(frames[0]);
      return;
    }
    this.raw.cork();
    for (const frame of frames) this.raw.write(frame);
    this.raw.uncork();
  }

  close(disconnect: DisconnectReason): void {
    this.socket.close(disconnect.code, disconnect.reason);
  }
}

/**
 * Pings every WebSocket of a node once per `webSocketPingMs` from one timer (not a timer
 * per connection); one that was not heard from for a whole round is terminated.
 */
class KeepAlive {
  private readonly transports = new Set<WebSocketTransport>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly intervalMs: number) {}

  add(transport: WebSocketTransport): void {
    this.transports.add(transport);
    this.timer ??= setInterval(() => this.round(), this.intervalMs).unref();
  }

  delete(transport: WebSocketTransport): void {
    this.transports.delete(transport);
    if (this.transports.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private round(): void {
    for (const transport of this.transports) {
      if (!transport.alive) {
        transport.socket.terminate();
        continue;
      }
      transport.alive = false;
      transport.socket.ping();
    }
  }
}

const keepAlives = new WeakMap<HubNode, KeepAlive>();

/** Options for the `ws` WebSocketServer that upgrades hub connections. */
export function webSocketServerOptions(node: HubNode): {
  maxPayload: number;
  perMessageDeflate: false;
  clientTracking: false;
  handleProtocols: (protocols: Set<string>) => string | false;
} {
  // Commands up to maxMessageBytes are parsed; bigger ones get an error frame, and only
  // messages 4x over the limit are cut off by ws itself (close code 1009). No compression:
  // frames are built once for every subscriber and written as they are. The node tracks its
  // sessions, so ws keeps no set of clients (and no close listener per client) of its own.
  return { maxPayload: node.options.limits.maxMessageBytes * 4, perMessageDeflate: false, clientTracking: false, handleProtocols: chooseSubprotocol };
}

/**
 * MessagePack when the client offers `kobold.msgpack`; otherwise no subprotocol (JSON): a
 * client that offered only protocols the hub does not speak gets none confirmed.
 */
function chooseSubprotocol(protocols: Set<string>): string | false {
  return protocols.has(MESSAGEPACK_SUBPROTOCOL) ? MESSAGEPACK_SUBPROTOCOL : false;
}

/** The socket ws reads from and writes to; ws keeps it as `_socket` once the connection is open. */
function rawSocketOf(socket: WebSocket): Duplex {
  const raw = (socket as unknown as { _socket?: Duplex | null })._socket;
  if (raw === undefined || raw === null || typeof raw.write !== 'function') {
    throw new KoboldError('KOBOLD_ERR_HUB_INTERNAL'); // a ws release that no longer keeps it there
  }
  return raw;
}

/**
 * Serves the hub protocol on an upgraded WebSocket. The listeners are shared by every
 * connection (ws calls them with the socket as `this`), so a connection costs no closures.
 */
export function acceptWebSocket(node: HubNode, socket: WebSocket): Session {
  const messagePack = socket.protocol === MESSAGEPACK_SUBPROTOCOL;
  let keepAlive = keepAlives.get(node);
  if (keepAlive === undefined) keepAlives.set(node, (keepAlive = new KeepAlive(node.options.limits.webSocketPingMs)));
  const transport = new WebSocketTransport(socket, rawSocketOf(socket), messagePack ? 'msgpack' : 'websocket', keepAlive);
  transport.session = node.openSession(transport);
  (socket as HubWebSocket)[TRANSPORT] = transport;
  keepAlive.add(transport);
  socket.on('pong', onPong);
  socket.on('message', messagePack ? onMessagePackMessage : onJsonMessage);
  socket.on('error', onError);
  socket.on('close', onClose);
  return transport.session;
}

function onPong(this: WebSocket): void {
  transportOf(this).alive = true;
}

function onJsonMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const transport = transportOf(this);
  transport.alive = true;
  if (isBinary) {
    refuse(transport.session, 'websocket', `binary messages are read only on a connection that chose the ${MESSAGEPACK_SUBPROTOCOL} subprotocol; send JSON text`);
    return;
  }
  transport.session.handleText(Array.isArray(data) ? Buffer.concat(data).toString() : data.toString());
}

function onMessagePackMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const transport = transportOf(this);
  transport.alive = true;
  if (isBinary) transport.session.handleMessagePack(bytesOf(data));
  else refuse(transport.session, 'msgpack', `text messages are not read on a ${MESSAGEPACK_SUBPROTOCOL} connection; send each command as MessagePack in a binary message`);
}

function onError(this: WebSocket): void {
  this.terminate();
}

function onClose(this: WebSocket): void {
  const transport = transportOf(this);
  transport.keepAlive.delete(transport);
  transport.session.closedByPeer();
}

/** Answers a message of the wrong kind (text or binary) with an error frame; the connection stays. */
function refuse(session: Session, format: FrameFormat, reason: string): void {
  session.send(encodeFrame(format, encodeError(undefined, new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason }))));
}

function bytesOf(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
}
