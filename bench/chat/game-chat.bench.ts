// The game-chat scenario: a player emulator against the chat app in a real Kobold daemon
// (2 web workers + the hub writer) on loopback. Players sit in rooms on mixed transports
// (80% WebSocket, 10% SSE, 10% refresh polling every 3 s) and send through the chat API at
// a "normal" then a "busy" rate. Prints messages accepted/s, deliveries/s, p50/p99
// send-to-receive latency (streaming transports), server CPU and memory.
// Sizes scale with env: PLAYERS (2000), ROOMS (40), PHASE_SECONDS (15).
// The Socket.IO side runs only when socket.io is installed (it is not a dependency yet).
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { chatHubNamespaces } from '../../src/apps/chat/app.js';
import { freePort, KoboldDaemon, ratio, waitForPort } from '../helpers.js';

const PLAYERS = Number(process.env.PLAYERS ?? 2000);
const ROOMS = Number(process.env.ROOMS ?? 40);
const PHASE_SECONDS = Number(process.env.PHASE_SECONDS ?? 15);
const REFRESH_MS = 3000;
const SECRET = 'bench-chat-secret-bench-chat-secret-0123';
const PHASES = [
  { name: 'normal', sendEverySeconds: 15 },
  { name: 'busy', sendEverySeconds: 3 },
];

type Transport = 'websocket' | 'sse' | 'refresh';

interface Player {
  nick: string;
  token: string;
  room: string;
  transport: Transport;
  /** Sends one chat line; true when the server accepted it. */
  send(text: string): Promise<boolean>;
  close(): void;
}

type PlayerSpec = Omit<Player, 'close' | 'send'>;

const now = () => performance.timeOrigin + performance.now();

const stats = { deliveries: 0, latencies: [] as number[], refreshLatencies: [] as number[], sent: 0, refused: 0 };

function received(event: { text?: string }, transport: Transport): void {
  stats.deliveries++;
  const sentAt = Number(event.text?.split(' ')[0]);
  if (!Number.isFinite(sentAt)) return;
  (transport === 'refresh' ? stats.refreshLatencies : stats.latencies).push(now() - sentAt);
}

async function post(base: string, path: string, body: unknown, token?: string): Promise<any> {
  const response = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

function connectWebSocket(base: string, player: PlayerSpec): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(base.replace('http', 'ws') + '/hub/ws');
    socket.on('open', () => {
      socket.send(JSON.stringify({ id: 1, cmd: 'connect', token: player.token }) + '\n' + JSON.stringify({ id: 2, cmd: 'subscribe', channel: `chat:${player.room}` }));
    });
    socket.on('message', (data) => {
      for (const line of data.toString().split('\n')) {
        const frame = JSON.parse(line);
        if (frame.id === 2) resolve(() => socket.terminate());
        else if (frame.push === 'pub') received(frame.data, 'websocket');
      }
    });
    socket.on('error', reject);
  });
}

function connectSse(base: string, player: PlayerSpec): Promise<() => void> {
  const subscribe = encodeURIComponent(JSON.stringify({ [`chat:${player.room}`]: null }));
  return new Promise((resolve, reject) => {
    const req = request(`${base}/hub/sse?subscribe=${subscribe}&token=${player.token}`, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((line) => line.startsWith('data: '));
          if (data === undefined) continue;
          const frame = JSON.parse(data.slice(6));
          if (frame.push === 'subscribed') resolve(() => req.destroy());
          else if (frame.push === 'pub') received(frame.data, 'sse');
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function connectRefresh(base: string, player: PlayerSpec): Promise<() => void> {
  const channel = `chat:${player.room}`;
  let position: unknown = null;
  let stopped = false;
  const poll = async () => {
    const answer = await post(base, '/hub/refresh', { token: player.token, channels: { [channel]: position } });
    const result = answer.body.channels?.[channel];
    if (result === undefined) return;
    if (position !== null) for (const publication of result.publications) received(publication.data, 'refresh');
    position = result.position;
  };
  await poll();
  // Polls spread over the period, as players arrive at different times.
  void (async () => {
    await sleep(Math.random() * REFRESH_MS);
    while (!stopped) {
      await poll().catch(() => {});
      await sleep(REFRESH_MS);
    }
  })();
  return () => {
    stopped = true;
  };
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

function playerSpecs(): Omit<PlayerSpec, 'token'>[] {
  return Array.from({ length: PLAYERS }, (_, i) => ({
    nick: `p${i}`,
    room: `room${i % ROOMS}`,
    transport: (i % 10 === 8 ? 'sse' : i % 10 === 9 ? 'refresh' : 'websocket') as Transport,
  }));
}

async function joinPlayers(base: string): Promise<Player[]> {
  const players: Player[] = [];
  const specs = playerSpecs();
  // Rooms come from the config; sessions are guest sign-ins like the page's.
  await inBatches(specs, 50, async (spec) => {
    const session = await post(base, '/chat/api/session', { nick: spec.nick });
    if (session.status !== 200) throw new Error(`session for ${spec.nick}: ${JSON.stringify(session.body)}`);
    const player = { ...spec, token: session.body.result.token as string };
    const connect = spec.transport === 'websocket' ? connectWebSocket : spec.transport === 'sse' ? connectSse : connectRefresh;
    const send = async (text: string) => (await post(base, '/chat/api/send', { room: player.room, text }, player.token).catch(() => ({ status: 0 }))).status === 200;
    players.push({ ...player, send, close: await connect(base, player) });
  });
  return players;
}

/** CPU seconds and RSS of a set of processes, from /proc. */
function sample(pids: number[]): { cpuSeconds: number; rssBytes: number } {
  let ticks = 0;
  let rss = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      rss += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
    } catch {
      // a process that exited has nothing more to count
    }
  }
  return { cpuSeconds: ticks / 100, rssBytes: rss };
}

function daemonPids(dir: string): number[] {
  return withChildren(Number(readFileSync(join(dir, '.kobold/kobold.pid'), 'utf8').trim()));
}

function withChildren(master: number): number[] {
  const children = spawnSync('pgrep', ['-P', String(master)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
  return [master, ...children];
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface PhaseResult {
  phase: string;
  sentPerSecond: number;
  deliveriesPerSecond: number;
  p50: number;
  p99: number;
  refreshP50: number;
  cpuPercent: number;
  /** Deliveries per second of server CPU (all server processes). */
  deliveriesPerCpuSecond: number;
  rssMiB: number;
  refused: number;
}

async function runPhase(players: Player[], pids: () => number[], phase: (typeof PHASES)[number]): Promise<PhaseResult> {
  Object.assign(stats, { deliveries: 0, latencies: [], refreshLatencies: [], sent: 0, refused: 0 });
  const before = sample(pids());
  const started = performance.now();
  const deadline = started + PHASE_SECONDS * 1000;
  const senders = players.map(async (player) => {
    await sleep(Math.random() * phase.sendEverySeconds * 1000);
    while (performance.now() < deadline) {
      if (await player.send(`${now()} gg from ${player.nick}`)) stats.sent++;
      else stats.refused++;
      await sleep(phase.sendEverySeconds * 1000 * (0.5 + Math.random()));
    }
  });
  await Promise.all(senders);
  await sleep(REFRESH_MS + 500); // let the last polls and deliveries arrive
  const seconds = (performance.now() - started) / 1000;
  const after = sample(pids());
  return {
    phase: phase.name,
    sentPerSecond: stats.sent / PHASE_SECONDS,
    deliveriesPerSecond: stats.deliveries / PHASE_SECONDS,
    p50: percentile(stats.latencies, 50),
    p99: percentile(stats.latencies, 99),
    refreshP50: percentile(stats.refreshLatencies, 50),
    cpuPercent: ((after.cpuSeconds - before.cpuSeconds) / seconds) * 100,
    deliveriesPerCpuSecond: stats.deliveries / Math.max(after.cpuSeconds - before.cpuSeconds, 0.01),
    rssMiB: after.rssBytes / 2 ** 20,
    refused: stats.refused,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function benchKobold(): Promise<PhaseResult[]> {
  const port = await freePort();
  const daemon = new KoboldDaemon(port, 'kobold:chat', 2);
  const rooms = Array.from({ length: ROOMS }, (_, i) => ({ name: `room${i}` }));
  const configFile = join(daemon.dir, 'kobold.config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8'));
  config.apps = [{ name: 'chat', module: 'kobold:chat', config: { dataDir: 'chat-data', rooms, flood: { ratePerSecond: 5, burst: 10 }, nickReserveMs: 1000 } }];
  config.hub = { namespaces: chatHubNamespaces(), tokenSecret: SECRET };
  writeFileSync(configFile, JSON.stringify(config));
  daemon.start();
  try {
    await waitForPort(port, '/chat/api/rooms');
    const base = `http://127.0.0.1:${port}`;
    const joinStarted = performance.now();
    const players = await joinPlayers(base);
    console.log(`kobold: ${players.length} players in ${ROOMS} rooms joined in ${((performance.now() - joinStarted) / 1000).toFixed(1)} s`);
    const pids = daemonPids(daemon.dir);
    const idle = sample(pids);
    console.log(`kobold: server RSS with every player connected: ${(idle.rssBytes / 2 ** 20).toFixed(0)} MiB over ${pids.length} processes`);
    const results = [];
    for (const phase of PHASES) results.push(await runPhase(players, () => pids, phase));
    for (const player of players) player.close();
    return results;
  } finally {
    stopDaemon(daemon);
  }
}

async function benchSocketIo(): Promise<PhaseResult[]> {
  const { io } = await import('socket.io-client');
  const port = await freePort();
  const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/socketio-chat.mjs', import.meta.url))], {
    env: { ...process.env, PORT: String(port), WORKERS: '2' },
    stdio: 'inherit',
  });
  try {
    await waitForPort(port);
    const base = `http://127.0.0.1:${port}`;
    const players: Player[] = [];
    const joinStarted = performance.now();
    await inBatches(playerSpecs(), 50, async (spec) => {
      const socket = io(base, { transports: ['websocket'], query: { room: spec.room, nick: spec.nick }, reconnection: false });
      socket.on('message', (event: { text: string }) => received(event, 'websocket'));
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      const send = async (text: string) => ((await socket.timeout(10_000).emitWithAck('send', text).catch(() => ({}))) as { ok?: boolean }).ok === true;
      players.push({ ...spec, transport: 'websocket', token: '', send, close: () => socket.disconnect() });
    });
    console.log(`socket.io: ${players.length} players joined in ${((performance.now() - joinStarted) / 1000).toFixed(1)} s`);
    const pids = withChildren(child.pid!);
    console.log(`socket.io: server RSS with every player connected: ${(sample(pids).rssBytes / 2 ** 20).toFixed(0)} MiB over ${pids.length} processes`);
    const results = [];
    for (const phase of PHASES) results.push(await runPhase(players, () => pids, phase));
    for (const player of players) player.close();
    return results;
  } finally {
    child.kill('SIGTERM');
  }
}

/** `kobold stop --hard`; if the CLI cannot run (dist rebuilt mid-run), SIGKILL the daemon's processes by pid. */
function stopDaemon(daemon: KoboldDaemon): void {
  const pids = daemonPids(daemon.dir);
  try {
    daemon.stop();
  } catch (error) {
    console.error(`kobold stop failed (${(error as Error).message.split('\n')[0]}); killing pids ${pids.join(' ')}`);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  daemon.remove();
}

function socketIoAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('socket.io');
    return true;
  } catch {
    return false;
  }
}

function table(name: string, results: PhaseResult[]): void {
  console.log(`\n${name}`);
  console.log('phase   sent/s  deliveries/s  p50 ms  p99 ms  refresh p50 ms  server CPU %  server RSS MiB  refused');
  for (const r of results) {
    console.log(
      [
        r.phase.padEnd(6),
        r.sentPerSecond.toFixed(0).padStart(7),
        r.deliveriesPerSecond.toFixed(0).padStart(13),
        r.p50.toFixed(1).padStart(7),
        r.p99.toFixed(1).padStart(7),
        r.refreshP50.toFixed(0).padStart(15),
        r.cpuPercent.toFixed(0).padStart(13),
        r.rssMiB.toFixed(0).padStart(15),
        String(r.refused).padStart(8),
      ].join(' '),
    );
  }
}

const kobold = await benchKobold();
table(`Kobold chat (2 web workers + hub writer): ${PLAYERS} players, ${ROOMS} rooms, 80% WebSocket / 10% SSE / 10% refresh every ${REFRESH_MS / 1000} s`, kobold);
for (const r of kobold) console.log(`${r.phase}: deliveries per server CPU-second ${r.deliveriesPerCpuSecond.toFixed(0)}`);
if (!socketIoAvailable()) {
  console.log('\nSocket.IO side skipped: socket.io is not installed (npm i -D socket.io socket.io-client @socket.io/cluster-adapter to compare).');
} else {
  const socketIo = await benchSocketIo();
  table(`Socket.IO 4 (node:cluster, 2 workers, cluster adapter): same players, all on WebSocket (no SSE; polling needs sticky sessions), sends as socket events`, socketIo);
  console.log('\nKobold / Socket.IO');
  for (let i = 0; i < PHASES.length; i++) {
    const [k, o] = [kobold[i], socketIo[i]];
    console.log(
      `${k.phase}: deliveries/s ${ratio(k.deliveriesPerSecond, o.deliveriesPerSecond)}, per server CPU-second ${ratio(k.deliveriesPerCpuSecond, o.deliveriesPerCpuSecond)}, ` +
        `p50 latency ${ratio(k.p50, o.p50)}, p99 ${ratio(k.p99, o.p99)}, server RSS ${ratio(k.rssMiB, o.rssMiB)} (below 1 is better for latency and RSS)`,
    );
  }
}
