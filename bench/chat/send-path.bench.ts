// The cost of one chat line on the server, without fan-out: Kobold's chat takes it as
// POST /chat/api/send (keep-alive; token check, flood bucket, room and sanction checks,
// filter, hub publish, store queue), Socket.IO as an event with an ack on the open socket
// (bucket, length check, a broadcast to the sender's own room). CONNECTIONS senders each
// send the next line when the previous one is answered, for SECONDS; prints sends/s and
// server CPU per send (every server process), and the ratios.
// After `npm run build`: node --import tsx bench/chat/send-path.bench.ts
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { chatHubNamespaces } from '../../src/apps/chat/app.js';
import { freePort, KoboldDaemon, ratio, waitForPort } from '../helpers.js';

const CONNECTIONS = Number(process.env.CONNECTIONS ?? 20);
const SECONDS = Number(process.env.SECONDS ?? 8);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const TEXT = 'gg, see you in the next round';

interface Round {
  sendsPerSecond: number;
  cpuMicrosPerSend: number;
}

function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited: nothing more to count
    }
  }
  return ticks / 100;
}

function withChildren(pid: number): number[] {
  return [pid, ...spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number)];
}

async function measure(pids: number[], run: (seconds: number) => Promise<number>): Promise<Round[]> {
  await run(2); // warm-up
  const rounds: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const before = cpuSeconds(pids);
    const sends = await run(SECONDS);
    rounds.push({ sendsPerSecond: sends / SECONDS, cpuMicrosPerSend: ((cpuSeconds(pids) - before) / Math.max(sends, 1)) * 1e6 });
  }
  return rounds;
}

async function benchKobold(): Promise<Round[]> {
  const port = await freePort();
  const daemon = new KoboldDaemon(port, 'kobold:chat', 2);
  const configFile = join(daemon.dir, 'kobold.config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8'));
  config.apps = [{ name: 'chat', module: 'kobold:chat', config: { dataDir: 'chat-data', flood: { ratePerSecond: 1e6, burst: 1e6 } } }];
  config.hub = { namespaces: chatHubNamespaces(), tokenSecret: 'send-path-bench-secret-send-path-bench' };
  writeFileSync(configFile, JSON.stringify(config));
  daemon.start();
  try {
    await waitForPort(port, '/chat/api/rooms');
    const base = `http://127.0.0.1:${port}`;
    const session = await fetch(base + '/chat/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nick: 'sender' }) });
    const { token } = ((await session.json()) as { result: { token: string } }).result;
    const pids = withChildren(Number(readFileSync(join(daemon.dir, '.kobold/kobold.pid'), 'utf8').trim()));
    return await measure(pids, async (seconds) => {
      const result = await autocannon({
        url: base + '/chat/api/send',
        method: 'POST',
        connections: CONNECTIONS,
        duration: seconds,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ room: 'lobby', text: TEXT }),
      });
      if (result.non2xx > 0) throw new Error(`${result.non2xx} sends were refused`);
      return result.requests.total;
    });
  } finally {
    daemon.stop();
    daemon.remove();
  }
}

async function benchSocketIo(): Promise<Round[]> {
  const { io } = await import('socket.io-client');
  const port = await freePort();
  const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/socketio-chat.mjs', import.meta.url))], {
    env: { ...process.env, PORT: String(port), WORKERS: '2', FLOOD_RATE: '1000000', FLOOD_BURST: '1000000' },
    stdio: 'inherit',
  });
  try {
    await waitForPort(port);
    const sockets = await Promise.all(
      Array.from({ length: CONNECTIONS }, (_, i) => {
        const socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], query: { room: `room${i}`, nick: `p${i}` }, reconnection: false });
        return new Promise<typeof socket>((resolve, reject) => {
          socket.once('connect', () => resolve(socket));
          socket.once('connect_error', reject);
        });
      }),
    );
    const pids = withChildren(child.pid!);
    const result = await measure(pids, async (seconds) => {
      const deadline = performance.now() + seconds * 1000;
      let sends = 0;
      await Promise.all(
        sockets.map(async (socket) => {
          while (performance.now() < deadline) {
            const answer = (await socket.timeout(10_000).emitWithAck('send', TEXT)) as { ok?: boolean };
            if (answer.ok !== true) throw new Error('a send was refused');
            sends++;
          }
        }),
      );
      return sends;
    });
    for (const socket of sockets) socket.disconnect();
    return result;
  } finally {
    child.kill('SIGTERM');
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

function print(name: string, rounds: Round[]): void {
  console.log(`${name}: ${rounds.map((r) => `${r.sendsPerSecond.toFixed(0)} sends/s at ${r.cpuMicrosPerSend.toFixed(0)} µs server CPU per send`).join('; ')}`);
}

const kobold = await benchKobold();
print(`Kobold chat, POST /chat/api/send (2 web workers + hub writer, ${CONNECTIONS} keep-alive connections)`, kobold);
const socketIo = await benchSocketIo();
print(`Socket.IO 4, 'send' events with ack (node:cluster, 2 workers, cluster adapter, ${CONNECTIONS} sockets)`, socketIo);
const k = { rate: median(kobold.map((r) => r.sendsPerSecond)), cpu: median(kobold.map((r) => r.cpuMicrosPerSend)) };
const o = { rate: median(socketIo.map((r) => r.sendsPerSecond)), cpu: median(socketIo.map((r) => r.cpuMicrosPerSend)) };
console.log(`\nKobold / Socket.IO (medians of ${ROUNDS}): sends/s ${ratio(k.rate, o.rate)}, server CPU per send ${ratio(k.cpu, o.cpu)} (below 1 is better)`);
