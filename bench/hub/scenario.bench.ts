// The hub's scenario from issue 4, scaled to a 2-core machine: WebSocket + SSE + long-poll
// clients in rooms over 2 web workers of a real Kobold daemon, publications at a fixed
// rate; the same client count against Socket.IO with its cluster adapter (2 workers,
// WebSocket transport: its polling needs sticky sessions) and a bare `ws` broadcast in one
// process. Prints deliveries/s, p50/p99 publish-to-delivery latency, server CPU, RSS per
// idle connection, and the ratios against the targets. Loopback only; stops by itself.
//   node --import tsx bench/hub/scenario.bench.ts [websocket=2000] [sse=200] [longpoll=200] [publications/s=200] [seconds=5]
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import { WebSocket } from 'ws';

const [websocket, sse, longpoll, rate, seconds] = [2000, 200, 200, 200, 5].map((fallback, i) => Number(process.argv[2 + i] ?? fallback));
const ROOMS = 20;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const TICK = 1e9 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Result {
  name: string;
  connections: number;
  deliveries: number;
  expected: number;
  wallS: number;
  cpuS: number;
  rssPerConnection: number;
  p50: number;
  p99: number;
}

function cpuSeconds(pids: number[]): number {
  return pids.reduce((sum, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return sum + ((Number(fields[11]) + Number(fields[12])) * TICK) / 1e9;
  }, 0);
}

function rssBytes(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024, 0);
}

function childrenOf(pid: number): number[] {
  return spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function forkReady(file: string, args: string[]): Promise<ChildProcess> {
  const child = fork(file, args, { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.on('message', (m: { ready?: boolean }) => m.ready && resolve(child));
    child.on('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
  });
}

/** Runs the clients against `base`, publishes `rate`/s for `seconds` through `publish`, measures `pids`. */
async function run(name: string, system: string, base: string, pids: () => number[], publish: (room: string, data: string) => void, mix: [number, number, number]): Promise<Result> {
  const connections = mix[0] + mix[1] + mix[2];
  const rssBefore = rssBytes(pids());
  const clients = await forkReady(fixture('clients.ts'), [system, base, ...mix.map(String), String(ROOMS)]);
  await sleep(1000);
  const rssPerConnection = (rssBytes(pids()) - rssBefore) / connections;
  const cpuBefore = cpuSeconds(pids());
  const start = now();
  let sent = 0;
  const total = rate * seconds;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate));
    for (; sent < due; sent++) {
      const room = `bench:r${sent % ROOMS}`;
      publish(room, JSON.stringify({ t: now(), r: room }));
    }
    await sleep(5);
  }
  await sleep(1500);
  const wallS = (now() - start) / 1000 - 1.5;
  const cpuS = cpuSeconds(pids()) - cpuBefore;
  const report = await new Promise<{ received: number; p50: number; p99: number }>((resolve) => {
    clients.once('message', resolve);
    clients.send({ report: true });
  });
  const expected = total * (connections / ROOMS);
  return { name, connections, deliveries: report.received, expected, wallS, cpuS, rssPerConnection, p50: report.p50, p99: report.p99 };
}

async function kobold(): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-hub-bench-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'kobold.config.json'),
    JSON.stringify({
      logLevel: 'warn',
      services: { web: { port, workers: 2, maxWorkers: 2, scaling: { enabled: false }, http: { maxConnections: 100_000 } } },
      hub: { namespaces: [{ name: 'bench', subscribe: 'anyone', historySize: 100 }], limits: { maxSubscriptionsPerConnection: 4 } },
    }),
  );
  const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
  const started = cli(['start']);
  if (started.status !== 0) throw new Error(`kobold start failed: ${started.stderr}`);
  const pids = () => (JSON.parse(cli(['fullstatus', '--json']).stdout) as { workers: { pid: number }[] }).workers.map((w) => w.pid);
  const workerPids = pids();
  const socket: Socket = connect(join(dir, '.kobold/publish.sock'));
  socket.resume(); // replies are not needed
  try {
    return await run('kobold', 'kobold', `http://127.0.0.1:${port}`, () => workerPids, (room, data) => socket.write(`{"method":"publish","channel":"${room}","data":${data}}\n`), [websocket, sse, longpoll]);
  } finally {
    socket.destroy();
    cli(['stop', '--hard']);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function socketIo(): Promise<Result> {
  const port = await freePort();
  const primary = await forkReady(fixture('socketio-server.ts'), [String(port), '2']);
  const publisher = io(`http://127.0.0.1:${port}`, { transports: ['websocket'] });
  await new Promise((resolve) => publisher.on('connect', () => resolve(undefined)));
  try {
    const pids = [primary.pid!, ...childrenOf(primary.pid!)];
    return await run('socket.io', 'socketio', `http://127.0.0.1:${port}`, () => pids, (room, data) => publisher.emit('pub', room, JSON.parse(data)), [websocket + sse + longpoll, 0, 0]);
  } finally {
    publisher.close();
    for (const pid of childrenOf(primary.pid!)) process.kill(pid, 'SIGKILL');
    primary.kill('SIGKILL');
  }
}

async function bareWs(): Promise<Result> {
  const port = await freePort();
  const server = await forkReady(fixture('ws-server.ts'), [String(port)]);
  const publisher = new WebSocket(`ws://127.0.0.1:${port}/?room=publisher`);
  await new Promise((resolve) => publisher.once('open', resolve));
  try {
    return await run('bare ws', 'ws', `http://127.0.0.1:${port}`, () => [server.pid!], (_room, data) => publisher.send(data), [websocket + sse + longpoll, 0, 0]);
  } finally {
    publisher.terminate();
    server.kill('SIGKILL');
  }
}

console.log(`${websocket} WebSocket + ${sse} SSE + ${longpoll} long-poll clients (Kobold; the others: as many WebSocket clients) in ${ROOMS} rooms, ${rate} publications/s for ${seconds} s`);
const results: Result[] = [];
for (const system of [kobold, socketIo, bareWs]) {
  const result = await system();
  results.push(result);
  const perCpu = result.deliveries / result.cpuS;
  console.log(
    `${result.name.padEnd(10)} ${Math.round(result.deliveries / result.wallS)} deliveries/s (${result.deliveries}/${result.expected}), ` +
      `p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, server CPU ${result.cpuS.toFixed(2)} s ` +
      `(${Math.round(perCpu)} deliveries/CPU-s), RSS ${(result.rssPerConnection / 1024).toFixed(1)} KiB per idle connection`,
  );
}
const [k, s, w] = results;
const perCpu = (r: Result) => r.deliveries / r.cpuS;
const ratio = (value: number, target: number, better: 'higher' | 'lower') => `${value.toFixed(2)}x (target ${better === 'higher' ? '>=' : '<='} ${target}x: ${(better === 'higher' ? value >= target : value <= target) ? 'met' : 'NOT met'})`;
console.log(`deliveries per CPU-second, kobold / socket.io: ${ratio(perCpu(k) / perCpu(s), 3, 'higher')}`);
console.log(`deliveries per CPU-second, kobold / bare ws:   ${ratio(perCpu(k) / perCpu(w), 0.7, 'higher')}`);
console.log(`RSS per idle connection, kobold / socket.io:   ${ratio(k.rssPerConnection / s.rssPerConnection, 0.5, 'lower')}`);
process.exit(0);
