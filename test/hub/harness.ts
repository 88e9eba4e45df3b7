// An in-process HTTP + WebSocket server with the hub mounted, on 127.0.0.1:0, for tests.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { pack, unpack } from 'msgpackr';
import { WebSocket, WebSocketServer } from 'ws';
import { MemoryBackend } from '../../src/hub/backends/memory.js';
import { hubRoutes, webSocketServerOptions } from '../../src/hub/index.js';
import { HubNode } from '../../src/hub/node.js';
import { type HubOptionsInput, resolveHubOptions } from '../../src/hub/options.js';
import type { HubBackend } from '../../src/hub/types.js';

export const SECRET = 'test-secret-test-secret-test-secret!';

export const TEST_HUB: HubOptionsInput = {
  namespaces: [
    { name: 'room', presence: true, joinLeave: true, subscribe: 'anyone', publish: 'user', seePresence: 'anyone', seeHistory: 'anyone' },
    { name: 'news', subscribe: 'anyone', publish: 'nobody', seeHistory: 'anyone', historySize: 5 },
    { name: 'vip', subscribe: { roles: ['vip'] } },
    { name: 'user', subscribe: 'owner' },
  ],
  limits: { maxSubscriptionsPerConnection: 3, maxMessageBytes: 1024, commandsPerSecond: 20, commandBurst: 40, longPollTimeoutMs: 3000 },
};

export interface TestServer {
  node: HubNode;
  server: Server;
  http: string;
  ws: string;
  /** Cuts every WebSocket connection, as a dying worker would. */
  dropWebSockets(): void;
  /** The server's end of a client's connection (matched by TCP port). */
  serverSocketOf(client: WebSocket): WebSocket;
  close(): Promise<void>;
}

export async function startTestServer(options: { hub?: HubOptionsInput; backend?: HubBackend; webSocket?: boolean } = {}): Promise<TestServer> {
  const hub = resolveHubOptions(options.hub ?? TEST_HUB);
  const backend = options.backend ?? new MemoryBackend({ namespaces: hub.namespaces });
  const node = new HubNode({ backend, hub, auth: { secret: SECRET } });
  const mounted = hubRoutes(node);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const route = mounted.routes.find((r) => r.path === path);
    if (route === undefined) {
      res.writeHead(404).end();
      return;
    }
    route.handler(req, res);
  });
  // The tests reach server-side sockets through wss.clients, which the hub itself does not need.
  const wss = new WebSocketServer({ noServer: true, ...webSocketServerOptions(node), clientTracking: true });
  server.on('upgrade', (req, socket, head) => {
    if (options.webSocket === false || new URL(req.url ?? '/', 'http://x').pathname !== mounted.webSocketPath) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => mounted.acceptWebSocket(ws));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    node,
    server,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}/hub/ws`,
    dropWebSockets: () => {
      for (const client of wss.clients) client.terminate();
    },
    serverSocketOf: (client) => {
      const port = (client as unknown as { _socket: { localPort: number } })._socket.localPort;
      const found = [...wss.clients].find((socket) => (socket as unknown as { _socket: { remotePort: number } })._socket.remotePort === port);
      if (found === undefined) throw new Error(`no server socket for client port ${port}`);
      return found;
    },
    close: async () => {
      await node.close();
      for (const client of wss.clients) client.terminate();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A raw protocol client over `ws`: sends commands, collects every frame. JSON by default;
 * opened with the `kobold.msgpack` subprotocol it speaks MessagePack (binary messages).
 */
export class RawClient {
  readonly frames: Record<string, any>[] = [];
  /** Text messages as they came (JSON). */
  readonly messages: string[] = [];
  /** Whether each message that arrived was binary. */
  readonly binary: boolean[] = [];
  closeCode: number | null = null;
  private nextId = 10_000; // above the ids tests write by hand
  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      this.binary.push(isBinary);
      if (isBinary) {
        this.frames.push(unpack(data as Buffer));
        return;
      }
      const text = data.toString();
      this.messages.push(text);
      for (const line of text.split('\n')) this.frames.push(JSON.parse(line));
    });
    socket.on('close', (code) => (this.closeCode = code));
  }

  static async open(url: string, subprotocol?: string): Promise<RawClient> {
    const socket = subprotocol === undefined ? new WebSocket(url) : new WebSocket(url, subprotocol);
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  sendRaw(text: string): void {
    this.socket.send(text);
  }

  /** Sends a message in the connection's format (MessagePack when the subprotocol was chosen). */
  send(value: unknown): void {
    this.socket.send(this.socket.protocol === 'kobold.msgpack' ? pack(value) : JSON.stringify(value));
  }

  /** Sends a command and resolves with its reply frame. */
  async call(cmd: string, fields: Record<string, unknown> = {}): Promise<Record<string, any>> {
    const id = this.nextId++;
    this.send({ id, cmd, ...fields });
    return this.waitFor((frame) => frame.id === id);
  }

  async waitFor(predicate: (frame: Record<string, any>) => boolean, timeoutMs = 5000): Promise<Record<string, any>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(predicate);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no matching frame; got ${JSON.stringify(this.frames)}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  async waitForClose(timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    if (this.closeCode === null) throw new Error('not closed');
    return this.closeCode;
  }

  pubs(channel: string): Record<string, any>[] {
    return this.frames.filter((frame) => frame.push === 'pub' && frame.channel === channel);
  }

  close(): void {
    this.socket.terminate();
  }
}

/** A test file's clients, all closed by closeAll(); `connected` opens one that has sent `connect`. */
export class ClientList {
  private readonly clients: { close(): void }[] = [];

  add<T extends { close(): void }>(client: T): T {
    this.clients.push(client);
    return client;
  }

  async connected(url: string, options: { subprotocol?: string; token?: string } = {}): Promise<RawClient> {
    const client = this.add(await RawClient.open(url, options.subprotocol));
    const reply = await client.call('connect', options.token === undefined ? {} : { token: options.token });
    if (!reply.result) throw new Error(`connect failed: ${JSON.stringify(reply)}`);
    return client;
  }

  closeAll(): void {
    for (const client of this.clients) client.close();
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts the writes that reach the server socket's TCP stream from now on (a writev of many frames is one). */
export function countWrites(socket: WebSocket): () => number {
  const raw = (socket as unknown as { _socket: Duplex & { _write: Function; _writev: Function } })._socket;
  let writes = 0;
  for (const method of ['_write', '_writev'] as const) {
    const original = raw[method];
    raw[method] = function (this: unknown, ...args: unknown[]) {
      writes++;
      return original.apply(this, args);
    };
  }
  return () => writes;
}
