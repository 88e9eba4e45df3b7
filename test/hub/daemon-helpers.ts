// Shared by the hub's real-daemon tests: a project with the hub on, clients, and publishers.
import { connect } from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { HubClient, type ClientPublication, type ClientTransportName } from '../../src/client/index.js';
import { signHubToken } from '../../src/hub/auth.js';
import { ROOT, TestProject, waitFor } from '../helpers/daemon.js';

export const SECRET = 'daemon-test-secret-daemon-test-secret';
export const API_KEY = 'daemon-test-api-key-0123';

export function hubProjectConfig(port: number, hub: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    logLevel: 'debug',
    gracefulTimeoutMs: 10_000,
    heartbeatIntervalMs: 200,
    heartbeatTimeoutMs: 3_000,
    services: { web: { port, workers: 2, maxWorkers: 2, scaling: { enabled: false }, restart: { backoffInitialMs: 50 } } },
    apps: [{ name: 'app-publisher', module: join(ROOT, 'test/fixtures/hub/app-publisher.mjs') }],
    hub: {
      namespaces: [
        { name: 'room', presence: true, joinLeave: true, subscribe: 'anyone', publish: 'anyone', seePresence: 'anyone', seeHistory: 'anyone', historySize: 1000 },
        { name: 'secure', subscribe: 'user', publish: 'user' },
      ],
      tokenSecret: SECRET,
      apiKey: API_KEY,
      limits: { sseHeartbeatMs: 1000, longPollTimeoutMs: 2000, webSocketPingMs: 2000 },
      ...hub,
    },
  };
}

export function token(userId: string, expiresInSeconds = 600): Promise<string> {
  return signHubToken(SECRET, { sub: userId, name: `user ${userId}` }, expiresInSeconds);
}

export async function apiCall(base: string, method: string, body: unknown, key: string | null = API_KEY): Promise<{ status: number; body: any }> {
  const response = await fetch(`${base}/api/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { 'x-api-key': key }) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** Publishes through the API, retrying answers a reloading daemon may give (503: the writer is changing hands). */
export async function publishReliably(base: string, channel: string, data: unknown): Promise<{ offset: number; epoch: string }> {
  for (let attempt = 0; ; attempt++) {
    const answer = await apiCall(base, 'publish', { channel, data }).catch(() => ({ status: 0, body: null }));
    if (answer.status === 200) return answer.body.result;
    if (attempt > 50) throw new Error(`publish kept failing: ${JSON.stringify(answer)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One request/reply exchange on the UNIX publish socket. */
export function publishSocketCall(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.end(line + '\n');
  });
}

/** A client library instance on one transport, collecting what it receives per channel. */
export class TestClient {
  readonly client: HubClient;
  readonly received = new Map<string, ClientPublication[]>();
  readonly resyncs: string[] = [];
  /** Channels the server refused (the client dropped them). */
  readonly errors: string[] = [];

  constructor(base: string, transport: ClientTransportName, options: { token?: string } = {}) {
    this.client = new HubClient({
      url: `${base}/hub`,
      transports: [transport],
      WebSocket: WebSocket as never,
      token: options.token,
      backoffMs: { min: 50, max: 300 },
      refreshIntervalMs: 100,
    });
    this.client.on('resync', (channel) => this.resyncs.push(channel));
    this.client.on('error', (channel, error) => this.errors.push(`${channel}: ${error.code}`));
  }

  subscribe(channel: string): void {
    this.received.set(channel, []);
    this.client.subscribe(channel, (publication) => this.received.get(channel)!.push(publication));
  }

  /** Connects and waits until the server applied every subscription (a subscription without `since` starts there). */
  async connected(): Promise<void> {
    await this.client.connect();
    await waitFor(() => [...this.received.keys()].every((channel) => this.client.position(channel) !== undefined), 'the subscriptions to be applied');
  }

  offsets(channel: string): number[] {
    return (this.received.get(channel) ?? []).map((publication) => publication.offset);
  }

  async waitForOffsets(channel: string, count: number, what: string): Promise<void> {
    await waitFor(() => this.offsets(channel).length >= count, `${what} (got ${JSON.stringify(this.offsets(channel))})`, 20_000);
  }

  close(): void {
    this.client.close();
  }
}

export async function startHubProject(hub: Record<string, unknown> = {}): Promise<TestProject> {
  const project = await TestProject.create((port) => hubProjectConfig(port, hub));
  project.start();
  return project;
}
