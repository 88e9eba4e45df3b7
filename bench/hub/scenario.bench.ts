// The hub's scenario from issue 4 on a 2-core machine: clients in rooms over 2 web workers
// of a real Kobold daemon, publications at fixed rates. Four systems, one after another,
// each with the same number of clients (by default the issue's 5,000 WebSocket + 500 SSE +
// 500 long-poll; the systems other than `kobold mix` get them all on WebSocket):
//   kobold ws   Kobold, every client on WebSocket (like for like with the two below)
//   kobold mix  Kobold, the issue's mix of WebSocket, SSE and long-poll clients
//   socket.io   Socket.IO with its cluster adapter, 2 workers (WebSocket transport: its
//               polling needs sticky sessions)
//   bare ws     a `ws` room broadcast in one process, one send per client per message
// Each system is measured at two publication rates in turn (HUB_BENCH_RATES):
//   steady  every client gets one message per 100 ms: nothing is ever due to a client at
//           once, so every system pays one socket write per delivery and the kernel's cost
//           per write bounds them all alike
//   busy    10x that, more than this machine can write one by one: several messages are due
//           to a client at once, which Kobold writes together and the others one by one
// The clients run in separate emulator processes (never in this one), publications are
// sent from here after a warm-up, and every server process is measured on its own through
// /proc: CPU seconds per role (Kobold: supervisor, hub writer, web workers; Socket.IO:
// primary, workers) and RSS per idle connection (marginal, see run()). Prints deliveries/s,
// publish-to-delivery p50/p99, deliveries per server CPU-second and the ratios against the
// issue's targets. Loopback only; stops by itself. The emulators share the machine's cores
// with the server, so a saturated system's latency includes theirs.
//
//   node --import tsx bench/hub/scenario.bench.ts
//   env (defaults): HUB_BENCH_WS=5000 HUB_BENCH_SSE=500 HUB_BENCH_LONGPOLL=500
//     HUB_BENCH_RATES=200,2000 (publications/s: steady, busy) HUB_BENCH_SECONDS=5
//     HUB_BENCH_WARMUP_S=1 HUB_BENCH_ROOMS=20 HUB_BENCH_EMULATORS=2 HUB_BENCH_RUNS=1
//     HUB_BENCH_SYSTEMS=kobold-ws,kobold-mix,socketio,ws
//     HUB_BENCH_BACKEND=shm|socket (Kobold's hub backend; unset: the daemon's default)
//     HUB_BENCH_SCHED=rr|none (Kobold's clusterSchedulingPolicy; unset: its default)
//     HUB_BENCH_WRITE_DELAY_MS=N (Kobold's hub.limits.writeDelayMs; unset: its default, 0)
//     HUB_BENCH_SEMI_SPACE_MB=N (V8's --max-semi-space-size for every system's server
//     processes: Kobold's workerMaxSemiSpaceMb, the others' node flags; unset: each
//     system's default, which is 4 MiB in Kobold's workers and V8's 16 MiB in the others)
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import { WebSocket } from 'ws';
import type { Share } from './fixtures/clients.js';
import { COLLECT_GARBAGE } from './fixtures/gc.js';
import { childrenOf, cpuMeter, rssBytes, type ServerProcess } from './proc.js';

const setting = (name: string, fallback: number) => Number(process.env[`HUB_BENCH_${name}`] ?? fallback);
const MIX = { websocket: setting('WS', 5000), sse: setting('SSE', 500), longpoll: setting('LONGPOLL', 500) };
const CLIENTS = MIX.websocket + MIX.sse + MIX.longpoll;
const RATES = (process.env.HUB_BENCH_RATES ?? '200,2000').split(',').map(Number);
const SECONDS = setting('SECONDS', 5);
const WARMUP_S = setting('WARMUP_S', 1);
const ROOMS = setting('ROOMS', 20);
const EMULATORS = Math.max(1, setting('EMULATORS', 2));
const RUNS = Math.max(1, setting('RUNS', 1));
/** Kobold's hub backend (`shm` or `socket`); unset: the daemon's default. */
const BACKEND = process.env.HUB_BENCH_BACKEND;
/** Kobold's cluster scheduling policy (`rr` or `none`); unset: the daemon's default. */
const SCHED = process.env.HUB_BENCH_SCHED;
/** Kobold's write delay (hub.limits.writeDelayMs); unset: its default. */
const WRITE_DELAY_MS = process.env.HUB_BENCH_WRITE_DELAY_MS === undefined ? undefined : Number(process.env.HUB_BENCH_WRITE_DELAY_MS);
/** V8's young-generation cap (MiB) in every system's server processes, so all get the same treatment. */
const SEMI_SPACE_MB = process.env.HUB_BENCH_SEMI_SPACE_MB === undefined ? undefined : Number(process.env.HUB_BENCH_SEMI_SPACE_MB);
const SYSTEMS = (process.env.HUB_BENCH_SYSTEMS ?? 'kobold-ws,kobold-mix,socketio,ws').split(',');

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Mix = typeof MIX;

interface Result {
  name: string;
  rssPerConnection: number;
  /** The same per role (after the further collection), e.g. web workers and hub writer apart. */
  rssPerConnectionByRole: Map<string, number>;
  /** The same after another full collection in every server process. */
  rssPerConnectionGc: number;
  /** One per rate in RATES. */
  phases: Phase[];
}

/** What one publication rate gave. */
interface Phase {
  rate: number;
  /** Every delivery while the CPU was metered, late ones of earlier publications included. */
  delivered: number;
  /** Deliveries of the publications sent while metered (their latencies), of `expected`. */
  measured: number;
  expected: number;
  wallS: number;
  cpuByRole: Map<string, number>;
  cpuS: number;
  p50: number;
  p99: number;
}

/** A system under test: where clients connect, its processes, how to publish, how to stop it. */
interface System {
  system: 'kobold' | 'socketio' | 'ws';
  base: string;
  processes: ServerProcess[];
  publish(room: string, data: string): void;
  /** A full garbage collection in every server process. */
  collectGarbage(): Promise<void>;
  stop(): Promise<void>;
}

/** Asks a forked fixture (gc.ts's answerGcRequests) for a collection. */
function collectIn(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    const done = (m: { gcDone?: boolean }) => m.gcDone && (child.off('message', done), resolve());
    child.on('message', done);
    child.send({ gc: true });
  });
}

/** Runs one line in a Kobold worker's debug console and waits for it to finish. */
function consoleRun(path: string, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let output = '';
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      output += chunk.toString();
      if (output.includes("'line done'")) {
        socket.destroy();
        resolve();
      }
    });
    socket.write(`{"terminal":false}\n${line}; 'line done'\n`);
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function forkReady(file: string, args: string[]): Promise<ChildProcess> {
  // Socket.IO's cluster workers inherit these flags from its primary.
  const v8Flags = SEMI_SPACE_MB === undefined ? [] : [`--max-semi-space-size=${SEMI_SPACE_MB}`];
  const child = fork(file, args, { execArgv: ['--import', 'tsx', ...v8Flags], stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.on('message', (m: { ready?: boolean }) => m.ready && resolve(child));
    child.on('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
  });
}

/** Splits each transport's clients evenly over the emulators (contiguous index ranges). */
function shares(mix: Mix): Share[] {
  const part = (count: number, i: number): [number, number] => {
    const first = Math.floor((count * i) / EMULATORS);
    return [first, Math.floor((count * (i + 1)) / EMULATORS) - first];
  };
  return Array.from({ length: EMULATORS }, (_, i) => ({ websocket: part(mix.websocket, i), sse: part(mix.sse, i), longpoll: part(mix.longpoll, i), rooms: ROOMS }));
}

/** Clients per room: each transport assigns client i to room i % ROOMS. */
function roomSizes(mix: Mix): number[] {
  return Array.from({ length: ROOMS }, (_, room) =>
    [mix.websocket, mix.sse, mix.longpoll].reduce((sum, count) => sum + Math.floor(count / ROOMS) + (room < count % ROOMS ? 1 : 0), 0),
  );
}

/** Publishes `rate`/s for `seconds` round-robin over the rooms; returns the deliveries due. */
async function publishFor(rate: number, seconds: number, target: System, measured: boolean, sizes: number[]): Promise<number> {
  const start = now();
  const total = Math.round(rate * seconds);
  let due = 0;
  for (let sent = 0; sent < total; ) {
    const until = Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1);
    for (; sent < until; sent++) {
      const room = sent % ROOMS;
      target.publish(`bench:r${room}`, measured ? `{"t":${now()},"m":1}` : `{"t":${now()}}`);
      due += sizes[room];
    }
    await sleep(2);
  }
  return due;
}

/** Publishes at `rate` (warm-up, then measured) and collects the measured deliveries' latencies from the emulators. */
async function measurePhase(rate: number, target: System, emulators: ChildProcess[], sizes: number[]): Promise<Phase> {
  await publishFor(rate, WARMUP_S, target, false, sizes);
  await sleep(500);
  const meter = cpuMeter(target.processes);
  for (const emulator of emulators) emulator.send({ mark: true });
  const begin = now();
  const expected = await publishFor(rate, SECONDS, target, true, sizes);
  await sleep(1500);
  const wallS = (now() - begin) / 1000 - 1.5;
  const cpuByRole = meter.stop();
  // Each emulator hands over what it recorded and starts afresh. Deliveries per CPU-second
  // count every delivery of the metered time: a system that is behind spends it on earlier
  // (warm-up) publications, and counting only the measured ones would undercount it.
  const reports = await Promise.all(
    emulators.map(
      (emulator) =>
        new Promise<{ latencies: number[]; received: number }>((resolve) => {
          emulator.once('message', resolve);
          emulator.send({ report: true });
        }),
    ),
  );
  const latencies = reports.flatMap((report) => report.latencies);
  const delivered = reports.reduce((sum, report) => sum + report.received, 0);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  const cpuS = [...cpuByRole.values()].reduce((a, b) => a + b, 0);
  return { rate, delivered, measured: latencies.length, expected, wallS, cpuByRole, cpuS, p50: at(0.5), p99: at(0.99) };
}

async function run(name: string, mix: Mix, start: () => Promise<System>): Promise<Result> {
  const target = await start();
  const emulators: ChildProcess[] = [];
  try {
    // RSS per idle connection: what all the clients added to the idle server's RSS (every
    // server process, each after a full collection), divided by their number; once as it
    // is and once after another full collection. It includes what connecting grew once
    // (V8's young generation, code warming up), as a user's server would see it.
    const rssByRole = () => {
      const byRole = new Map<string, number>();
      for (const p of target.processes) byRole.set(p.role, (byRole.get(p.role) ?? 0) + rssBytes(p.pid));
      return byRole;
    };
    const total = (byRole: Map<string, number>) => [...byRole.values()].reduce((a, b) => a + b, 0);
    await target.collectGarbage();
    const rssBefore = rssByRole();
    const grown = () => total(rssByRole()) - total(rssBefore);
    for (const share of shares(mix)) {
      emulators.push(await forkReady(fixture('clients.ts'), [target.system, target.base, JSON.stringify(share)]));
    }
    await sleep(1000);
    const rssPerConnection = grown() / CLIENTS;
    await target.collectGarbage();
    const rssPerConnectionGc = grown() / CLIENTS;
    const rssPerConnectionByRole = new Map([...rssByRole()].map(([role, bytes]) => [role, (bytes - rssBefore.get(role)!) / CLIENTS]));
    const sizes = roomSizes(mix);
    const phases: Phase[] = [];
    for (const rate of RATES) phases.push(await measurePhase(rate, target, emulators, sizes));
    return { name, rssPerConnection, rssPerConnectionGc, rssPerConnectionByRole, phases };
  } finally {
    for (const emulator of emulators) emulator.kill('SIGKILL');
    await target.stop();
  }
}

async function kobold(): Promise<System> {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-hub-bench-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'kobold.config.json'),
    JSON.stringify({
      logLevel: 'warn',
      ...(SCHED === undefined ? {} : { clusterSchedulingPolicy: SCHED }),
      ...(SEMI_SPACE_MB === undefined ? {} : { workerMaxSemiSpaceMb: SEMI_SPACE_MB }),
      apps: [], // the hub alone, not the chat demo a config without apps gets
      services: { web: { port, workers: 2, maxWorkers: 2, scaling: { enabled: false }, http: { maxConnections: 100_000 } } },
      hub: {
        namespaces: [{ name: 'bench', subscribe: 'anyone', historySize: 100 }],
        limits: { maxSubscriptionsPerConnection: 4, ...(WRITE_DELAY_MS === undefined ? {} : { writeDelayMs: WRITE_DELAY_MS }) },
        ...(BACKEND === undefined ? {} : { backend: BACKEND }),
      },
    }),
  );
  const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
  const started = cli(['start']);
  if (started.status !== 0) throw new Error(`kobold start failed: ${started.stderr}`);
  const status = JSON.parse(cli(['fullstatus', '--json']).stdout) as { pid: number; workers: { pid: number; service: string; consoleSocket: string }[] };
  const processes = [
    { pid: status.pid, role: 'supervisor' },
    ...status.workers.map((w) => ({ pid: w.pid, role: w.service === 'hub' ? 'hub writer' : `${w.service} workers` })),
  ];
  const socket: Socket = connect(join(dir, '.kobold/publish.sock'));
  socket.resume(); // replies are not needed
  await new Promise((resolve) => socket.once('connect', resolve));
  return {
    system: 'kobold',
    base: `http://127.0.0.1:${port}`,
    processes,
    publish: (room, data) => socket.write(`{"method":"publish","channel":"${room}","data":${data}}\n`),
    async collectGarbage() {
      await Promise.all(status.workers.map((w) => consoleRun(w.consoleSocket, COLLECT_GARBAGE)));
    },
    async stop() {
      socket.destroy();
      // a graceful stop lets workers exit normally (so NODE_OPTIONS=--cpu-prof profiles get written)
      if (cli(['stop']).status !== 0) cli(['stop', '--hard']);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function socketIo(): Promise<System> {
  const port = await freePort();
  const primary = await forkReady(fixture('socketio-server.ts'), [String(port), '2']);
  const publisher = io(`http://127.0.0.1:${port}`, { transports: ['websocket'] });
  await new Promise((resolve) => publisher.on('connect', () => resolve(undefined)));
  const workers = childrenOf(primary.pid!);
  return {
    system: 'socketio',
    base: `http://127.0.0.1:${port}`,
    processes: [{ pid: primary.pid!, role: 'primary' }, ...workers.map((pid) => ({ pid, role: 'workers' }))],
    publish: (room, data) => publisher.emit('pub', room, JSON.parse(data)),
    collectGarbage: () => collectIn(primary),
    async stop() {
      publisher.close();
      for (const pid of workers) process.kill(pid, 'SIGKILL');
      primary.kill('SIGKILL');
    },
  };
}

async function bareWs(): Promise<System> {
  const port = await freePort();
  const server = await forkReady(fixture('ws-server.ts'), [String(port)]);
  const publisher = new WebSocket(`ws://127.0.0.1:${port}/?room=publisher`);
  await new Promise((resolve) => publisher.once('open', resolve));
  return {
    system: 'ws',
    base: `http://127.0.0.1:${port}`,
    processes: [{ pid: server.pid!, role: 'server' }],
    // the room travels in front of the payload, so the server forwards the payload untouched
    publish: (room, data) => publisher.send(room + ' ' + data),
    collectGarbage: () => collectIn(server),
    async stop() {
      publisher.terminate();
      server.kill('SIGKILL');
    },
  };
}

const wsOnly: Mix = { websocket: CLIENTS, sse: 0, longpoll: 0 };
const RUNNERS: Record<string, () => Promise<Result>> = {
  'kobold-ws': () => run('kobold ws', wsOnly, kobold),
  'kobold-mix': () => run('kobold mix', MIX, kobold),
  socketio: () => run('socket.io', wsOnly, socketIo),
  ws: () => run('bare ws', wsOnly, bareWs),
};

function print(result: Result): void {
  console.log(
    `${result.name}: RSS per idle connection ${(result.rssPerConnection / 1024).toFixed(1)} KiB ` +
      `(${(result.rssPerConnectionGc / 1024).toFixed(1)} KiB after a full GC: ` +
      `${[...result.rssPerConnectionByRole].map(([role, bytes]) => `${role} ${(bytes / 1024).toFixed(1)}`).join(', ')})`,
  );
  for (const phase of result.phases) {
    const roles = [...phase.cpuByRole].map(([role, s]) => `${role} ${s.toFixed(2)}`).join(', ');
    console.log(
      `  ${`${phase.rate} pub/s`.padEnd(11)} ${Math.round(phase.measured / phase.wallS)} deliveries/s (${phase.measured}/${phase.expected}), ` +
        `p50 ${phase.p50.toFixed(1)} ms, p99 ${phase.p99.toFixed(1)} ms, ` +
        `${Math.round(phase.delivered / phase.cpuS)} deliveries/CPU-s (${phase.delivered} while metered; CPU s: ${roles})`,
    );
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

console.log(
  `${CLIENTS} clients per system (kobold mix: ${MIX.websocket} WebSocket + ${MIX.sse} SSE + ${MIX.longpoll} long-poll; the others all WebSocket) ` +
    `in ${ROOMS} rooms, ${RATES.join(' then ')} publications/s for ${SECONDS} s each after ${WARMUP_S} s warm-up, ${EMULATORS} emulator processes, ${RUNS} run(s); ` +
    `Kobold hub backend: ${BACKEND ?? 'default'}, cluster scheduling: ${SCHED ?? 'default'}, write delay: ${WRITE_DELAY_MS ?? 'default'}; V8 max semi-space: ${SEMI_SPACE_MB === undefined ? 'default' : `${SEMI_SPACE_MB} MiB`}`,
);
const results = new Map<string, Result[]>();
for (let i = 0; i < RUNS; i++) {
  for (const system of SYSTEMS) {
    const result = await RUNNERS[system]();
    print(result);
    results.set(result.name, [...(results.get(result.name) ?? []), result]);
  }
}
const medianOf = (name: string, measure: (r: Result) => number) => {
  const runs = results.get(name);
  return runs === undefined ? NaN : median(runs.map(measure));
};
const perCpuAt = (rate: number) => (r: Result) => {
  const phase = r.phases.find((p) => p.rate === rate)!;
  return phase.delivered / phase.cpuS;
};
const ratio = (label: string, value: number, target: number, better: 'higher' | 'lower') => {
  if (Number.isNaN(value)) return;
  const met = better === 'higher' ? value >= target : value <= target;
  console.log(`${label.padEnd(64)} ${value.toFixed(2)}x (target ${better === 'higher' ? '>=' : '<='} ${target}x: ${met ? 'met' : 'NOT met'})`);
};
console.log(RUNS > 1 ? `medians over ${RUNS} runs:` : 'ratios:');
for (const kobold of ['kobold ws', 'kobold mix']) {
  for (const rate of RATES) {
    const perCpu = perCpuAt(rate);
    ratio(`deliveries per CPU-second at ${rate} pub/s, ${kobold} / socket.io`, medianOf(kobold, perCpu) / medianOf('socket.io', perCpu), 3, 'higher');
    ratio(`deliveries per CPU-second at ${rate} pub/s, ${kobold} / bare ws`, medianOf(kobold, perCpu) / medianOf('bare ws', perCpu), 0.7, 'higher');
  }
  ratio(`RSS per idle connection, ${kobold} / socket.io`, medianOf(kobold, (r) => r.rssPerConnection) / medianOf('socket.io', (r) => r.rssPerConnection), 0.5, 'lower');
  ratio(`  the same after a full GC in every server process`, medianOf(kobold, (r) => r.rssPerConnectionGc) / medianOf('socket.io', (r) => r.rssPerConnectionGc), 0.5, 'lower');
}
process.exit(0);
