// The chat app in-process: N "workers" (a HubNode + the app's real AppInstance + an HTTP
// server each) over one MemoryBackend and one SQLite file (and, with `shm`, one set of
// shared-memory segments as a daemon's workers share them), on 127.0.0.1:0. The hub's
// transports are mounted at /hub/*, the browser bundle (built once) at /hub/client.js.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { WebSocketServer, WebSocket } from 'ws';
import { NOT_HANDLED } from '../../../src/app/http-routes.js';
import { AppInstance } from '../../../src/app/instance.js';
import chatApp, { chatHubNamespaces, type ChatConfigInput } from '../../../src/apps/chat/app.js';
import { buildClientBundle } from '../../../src/client/build.js';
import { HubClient, type ClientPublication, type HubClientOptions } from '../../../src/client/index.js';
import type { WebSocketConstructor } from '../../../src/client/transports/websocket.js';
import { httpDefaults } from '../../../src/config/defaults.js';
import { appSchema } from '../../../src/config/schema.js';
import { MemoryBackend } from '../../../src/hub/backends/memory.js';
import { hubRoutes, webSocketServerOptions } from '../../../src/hub/index.js';
import { HubNode } from '../../../src/hub/node.js';
import { resolveHubOptions } from '../../../src/hub/options.js';
import { createShmApi, removeDaemonSegments } from '../../../src/shm/app-api.js';
import { SupervisorLink } from '../../../src/worker/supervisor-link.js';

export const HUB_SECRET = 'chat-test-hub-secret-chat-test-hub-secret';
export const SITE_SECRET = 'chat-test-site-secret-chat-test-site-secret';
export const API_KEY = 'chat-test-api-key-0123456789';

export interface ChatWorker {
  node: HubNode;
  app: AppInstance;
  server: Server;
  url: string;
  /** Cuts every WebSocket connection, as a dying worker would. */
  dropWebSockets(): void;
}

export interface ChatCluster {
  workers: ChatWorker[];
  backend: MemoryBackend;
  dataDir: string;
  url: string;
  /** Stops the workers (flushing their stores); keeps the data dir unless `removeData`. */
  close(options?: { removeData?: boolean }): Promise<void>;
}

let bundle: Buffer | undefined;

async function clientBundle(): Promise<Buffer> {
  if (bundle !== undefined) return bundle;
  const dir = mkdtempSync(join(tmpdir(), 'kobold-chat-bundle-'));
  const { outFile } = await buildClientBundle({ outFile: join(dir, 'client.js') });
  bundle = readFileSync(outFile);
  rmSync(dir, { recursive: true, force: true });
  return bundle;
}

export async function startChat(
  options: { config?: ChatConfigInput; workers?: number; dataDir?: string; backend?: MemoryBackend; webSocket?: boolean; bundle?: boolean; shm?: boolean } = {},
): Promise<ChatCluster> {
  const hub = resolveHubOptions({ namespaces: chatHubNamespaces(), limits: { longPollTimeoutMs: 2000 } });
  const backend = options.backend ?? new MemoryBackend({ namespaces: hub.namespaces });
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'kobold-chat-'));
  const config: ChatConfigInput = { dataDir, hubSecret: HUB_SECRET, siteSecret: SITE_SECRET, apiKey: API_KEY, persistIntervalMs: 10, ...options.config };
  const js = options.bundle === true ? await clientBundle() : undefined;
  const workers: ChatWorker[] = [];
  for (let i = 0; i < (options.workers ?? 1); i++) {
    const node = new HubNode({ backend, hub, auth: { secret: HUB_SECRET } });
    const appConfig = appSchema.parse({ name: 'chat', module: 'kobold:chat', config });
    const app = new AppInstance(appConfig, chatApp as never, pino({ level: 'silent' }), i + 1, 'web', httpDefaults as never, {
      supervisor: new SupervisorLink(() => {}),
      runDir: dataDir,
      hub: node,
      ...(options.shm === true ? { shm: createShmApi(dataDir) } : {}),
    });
    await app.setup();
    const mounted = hubRoutes(node);
    const server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/hub/client.js' && js !== undefined) {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
        return;
      }
      const route = mounted.routes.find((r) => r.path === path);
      if (route !== undefined) return route.handler(req, res);
      if (app.http.dispatch(req, res) === NOT_HANDLED) res.writeHead(404).end();
    });
    const wss = new WebSocketServer({ noServer: true, ...webSocketServerOptions(node) });
    // The hub's options turn ws's client tracking off; the harness keeps its own list to drop them.
    const sockets = new Set<WebSocket>();
    server.on('upgrade', (req, socket, head) => {
      if (options.webSocket === false || new URL(req.url ?? '/', 'http://x').pathname !== mounted.webSocketPath) return socket.destroy();
      wss.handleUpgrade(req, socket, head, (ws) => {
        sockets.add(ws);
        ws.once('close', () => sockets.delete(ws));
        mounted.acceptWebSocket(ws);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    workers.push({
      node,
      app,
      server,
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      dropWebSockets: () => {
        for (const client of sockets) client.terminate();
      },
    });
  }
  return {
    workers,
    backend,
    dataDir,
    url: workers[0].url,
    async close({ removeData = true } = {}) {
      for (const worker of workers) {
        await worker.app.drain();
        await worker.app.close();
        await worker.node.close({ closeBackend: false });
        worker.server.closeAllConnections();
        await new Promise((resolve) => worker.server.close(resolve));
      }
      if (options.backend === undefined) await backend.close();
      if (options.shm === true) removeDaemonSegments(dataDir);
      if (removeData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The chat's HTTP API as a user calls it. */
export class ChatUser {
  token = '';
  user: { id: string; name: string; moderator: boolean } = { id: '', name: '', moderator: false };
  readonly received = new Map<string, any[]>();
  hub: HubClient | null = null;

  constructor(public baseUrl: string) {}

  static async guest(baseUrl: string, nick: string): Promise<ChatUser> {
    const user = new ChatUser(baseUrl);
    user.useSession(await user.ok('session', { nick }));
    return user;
  }

  static async site(baseUrl: string, siteToken: string): Promise<ChatUser> {
    const user = new ChatUser(baseUrl);
    user.useSession(await user.ok('session', { siteToken }));
    return user;
  }

  useSession(session: { token: string; user: ChatUser['user'] }): void {
    this.token = session.token;
    this.user = session.user;
  }

  /** POSTs to /chat/api/<path>: the HTTP status and the parsed answer. */
  async call(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const response = await fetch(`${this.baseUrl}/chat/api/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(this.token === '' ? {} : { authorization: `Bearer ${this.token}` }), ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  }

  /** A call that must succeed: its result. */
  async ok(path: string, body: unknown): Promise<any> {
    const { status, body: answer } = await this.call(path, body);
    if (status !== 200) throw new Error(`${path} answered ${status}: ${JSON.stringify(answer)}`);
    return answer.result;
  }

  send(room: string | undefined, text: string): Promise<{ status: number; body: any }> {
    return this.call('send', { room, text });
  }

  /** Connects to the hub with this user's token and follows `channels` (its inbox always). */
  async connect(channels: { channel: string; since?: { offset: number; epoch: string } }[], options: Partial<HubClientOptions> = {}): Promise<HubClient> {
    this.hub?.close();
    const client = new HubClient({
      url: `${this.baseUrl}/hub`,
      token: () => this.token,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      backoffMs: { min: 20, max: 200 },
      refreshIntervalMs: 50,
      ...options,
    });
    this.hub = client;
    for (const { channel, since } of [{ channel: `chatuser:${this.user.id}` }, ...channels]) this.follow(channel, since);
    await client.connect();
    return client;
  }

  follow(channel: string, since?: { offset: number; epoch: string }): void {
    if (!this.received.has(channel)) this.received.set(channel, []);
    this.hub!.subscribe(channel, (p: ClientPublication) => this.received.get(channel)!.push(p.data), since === undefined ? {} : { since });
  }

  events(channel: string): any[] {
    return this.received.get(channel) ?? [];
  }

  close(): void {
    this.hub?.close();
  }
}

export async function until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
