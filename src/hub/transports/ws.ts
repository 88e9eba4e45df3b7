// WebSocket transport: JSON commands in; frames due in one turn leave as ONE WebSocket
// message, newline-separated (JSON text never holds a raw newline). The app layer does
// the HTTP upgrade and hands the socket here.
import type { WebSocket } from 'ws';
import type { DisconnectReason } from '../disconnect.js';
import type { HubNode } from '../node.js';
import type { Transport } from '../outbound.js';
import { encodeError } from '../protocol.js';
import type { Session } from '../session.js';
import { KoboldError } from '../../errors.js';

const NEWLINE = Buffer.from('\n');

class WebSocketTransport implements Transport {
  readonly name = 'websocket';
  readonly format = 'json';
  private sending = 0;
  private drainListeners: (() => void)[] = [];

  constructor(private readonly socket: WebSocket) {}

  bufferedBytes(): number {
    return this.sending + this.socket.bufferedAmount;
  }

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  writeMany(frames: readonly Buffer[]): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    const message = frames.length === 1 ? frames[0] : Buffer.concat(frames.flatMap((frame, i) => (i === 0 ? [frame] : [NEWLINE, frame])));
    this.sending += message.length;
    this.socket.send(message, { binary: false }, () => {
      this.sending -= message.length;
      if (this.sending === 0 && this.drainListeners.length > 0) {
        const listeners = this.drainListeners;
        this.drainListeners = [];
        for (const listener of listeners) listener();
      }
    });
  }

  close(disconnect: DisconnectReason): void {
    this.socket.close(disconnect.code, disconnect.reason);
  }
}

/** Options for the `ws` WebSocketServer that upgrades hub connections. */
export function webSocketServerOptions(node: HubNode): { maxPayload: number } {
  // Commands up to maxMessageBytes are parsed; bigger ones get an error frame, and only
  // messages 4x over the limit are cut off by ws itself (close code 1009).
  return { maxPayload: node.options.limits.maxMessageBytes * 4 };
}

/** Serves the hub protocol on an upgraded WebSocket. */
export function acceptWebSocket(node: HubNode, socket: WebSocket): Session {
  const transport = new WebSocketTransport(socket);
  const session = node.openSession(transport);
  let alive = true;
  const ping = setInterval(() => {
    if (!alive) return socket.terminate();
    alive = false;
    socket.ping();
  }, node.options.limits.webSocketPingMs);
  socket.on('pong', () => (alive = true));
  socket.on('message', (data, isBinary) => {
    alive = true;
    if (isBinary) {
      const error = new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: 'binary messages are not supported; send JSON text' });
      session.send(Buffer.from(encodeError(undefined, error)));
      return;
    }
    session.handleText(Array.isArray(data) ? Buffer.concat(data).toString() : data.toString());
  });
  socket.on('error', () => socket.terminate());
  socket.on('close', () => {
    clearInterval(ping);
    session.closedByPeer();
  });
  return session;
}
