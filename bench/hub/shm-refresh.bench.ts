// Refresh-mode polls (POST <pathPrefix>/refresh with a JSON body, and GET with the positions
// in the query string; the client up to date on one channel)
// answered by the web workers from the shared-memory ring, vs a plain HTTP hello on the same
// 2 workers; then the same polls on the socket backend, where each one costs a request to
// the hub writer; then, for reference, a bare node:cluster http server (2 workers, no
// framework) that answers the same requests with the same bytes, reading a POST's body but
// not looking at it: the most this load generator sees with this wire format. Side by side
// in one run, keep-alive load from this process (autocannon). Each figure is printed as
// requests per second and as the server's CPU per request: the load generator shares the
// 2 cores, so the second tells the server's own cost with less of the generator's noise.
// Run: npm run build && node --import tsx bench/hub/shm-refresh.bench.ts [seconds per round] [rounds]
import { spawnSync } from 'node:child_process';
import cluster from 'node:cluster';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { shmAvailable, unavailableReason } from '../../src/shm/native.js';
import { cpuSeconds } from './proc.js';
import { CLI, freePort, ratio, run } from '../helpers.js';

// Many short interleaved rounds: this shared machine's speed drifts by 20% and more within a
// minute, and a drift that falls on one kind's long round would be read as that kind's cost.
const SECONDS = Number(process.argv[2] ?? 2);
const ROUNDS = Number(process.argv[3] ?? 8);
const CONNECTIONS = 50;
const HELLO_APP = fileURLToPath(new URL('../shm/fixtures/hello-app.mjs', import.meta.url));
const CHANNEL = 'room:poll';

type Kind = 'hello' | 'refresh' | 'refreshGet';
/** Requests answered per second, and the server's CPU per request (its processes' user + system time). */
type Measured = { perSecond: number; cpuUs: number };
type Rates = Record<Kind, Measured>;

async function rate(server: readonly number[], url: string, options: { method?: 'POST'; body?: string } = {}): Promise<Measured> {
  const cpuBefore = sum(server.map(cpuSeconds));
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, headers: { 'content-type': 'application/json' }, ...options });
  if (result.non2xx + result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { perSecond: result.requests.average, cpuUs: ((sum(server.map(cpuSeconds)) - cpuBefore) * 1e6) / result.requests.total };
}

/**
 * Hello, refresh POST and GET at `base` (served by the processes `server`): interleaved
 * rounds, medians of each figure (the machine's other load drifts during a run).
 */
async function rates(server: readonly number[], base: string, channels: string): Promise<Rates> {
  await rate(server, `${base}/hello`); // warm-up
  const rounds: Rates[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    rounds.push({
      hello: await rate(server, `${base}/hello`),
      refresh: await rate(server, `${base}/hub/refresh`, { method: 'POST', body: `{"channels":${channels}}` }),
      refreshGet: await rate(server, `${base}/hub/refresh?channels=${encodeURIComponent(channels)}`),
    });
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1];
  const medians = (kind: Kind): Measured => ({ perSecond: median(rounds.map((r) => r[kind].perSecond)), cpuUs: median(rounds.map((r) => r[kind].cpuUs)) });
  return { hello: medians('hello'), refresh: medians('refresh'), refreshGet: medians('refreshGet') };
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

/** A daemon with the hub on `backend`; returns its rates, and the poll's positions and answer. */
async function measure(backend: 'shm' | 'socket'): Promise<Rates & { channels: string; answer: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-shm-refresh-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'kobold.config.json'),
    JSON.stringify({
      logLevel: 'warn',
      services: { web: { port, workers: 2, minWorkers: 2, maxWorkers: 2, scaling: { enabled: false } } },
      apps: [{ name: 'hello', module: HELLO_APP }],
      hub: { backend, apiKey: 'bench-api-key-0123456789', namespaces: [{ name: 'room', subscribe: 'anyone', historySize: 100 }] },
    }),
  );
  run(process.execPath, [CLI, 'start'], { cwd: dir });
  try {
    const base = `http://127.0.0.1:${port}`;
    let position = { offset: 0, epoch: '' };
    for (let i = 0; i < 10; i++) {
      const answer = await fetch(`${base}/api/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'bench-api-key-0123456789' },
        body: JSON.stringify({ channel: CHANNEL, data: { i } }),
      });
      position = ((await answer.json()) as { result: typeof position }).result;
    }
    const channels = JSON.stringify({ [CHANNEL]: position });
    const refreshAnswer = await (await fetch(`${base}/hub/refresh`, { method: 'POST', body: `{"channels":${channels}}` })).text();
    // Every worker of the daemon: the web workers, and the hub writer the socket backend asks.
    const status = JSON.parse(spawnSync(process.execPath, [CLI, 'fullstatus', '--json'], { cwd: dir, encoding: 'utf8' }).stdout) as { workers: { pid: number }[] };
    return { ...(await rates(status.workers.map((worker) => worker.pid), base, channels)), channels, answer: refreshAnswer };
  } finally {
    run(process.execPath, [CLI, 'stop', '--hard'], { cwd: dir });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The reference: every request answered with `answer` (hello with 'hello'), a POST's body read first. */
function servePlain(answer: Buffer): void {
  createServer((req, res) => {
    if (req.url === '/hello') return void res.end('hello');
    setImmediate(() => {
      req.read();
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-cache, no-store', 'Content-Length': answer.length });
      res.end(answer);
    });
  }).listen(Number(process.env.PLAIN_PORT), '127.0.0.1');
}

/** The same polls (`channels`) against servePlain. */
async function measurePlain(channels: string, answer: string): Promise<Rates> {
  const port = await freePort();
  const workers = Array.from({ length: 2 }, () => cluster.fork({ PLAIN_PORT: String(port), PLAIN_ANSWER: answer }));
  try {
    await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('listening', resolve))));
    return await rates(workers.map((worker) => worker.process.pid!), `http://127.0.0.1:${port}`, channels);
  } finally {
    for (const worker of workers) worker.kill();
  }
}

async function main(): Promise<void> {
  if (!shmAvailable()) {
    console.log(`shared memory is unavailable (${unavailableReason()}); nothing to compare`);
    return;
  }
  const shm = await measure('shm');
  const socket = await measure('socket');
  const plain = await measurePlain(shm.channels, shm.answer);
  console.log(`refresh polls vs plain hello: 2 web workers, ${CONNECTIONS} keep-alive connections, median of ${ROUNDS} interleaved rounds of ${SECONDS} s`);
  console.log('(server CPU per request: user + system time of the server\'s processes, from /proc; the load generator shares the machine\'s 2 cores)');
  console.log('server                hello req/s (CPU)      refresh POST polls/s (CPU)   refresh GET polls/s (CPU)');
  for (const [name, result] of [['kobold shm', shm], ['kobold socket', socket], ['bare node:http', plain]] as const) {
    const cells = [result.hello, result.refresh, result.refreshGet].map(({ perSecond, cpuUs }) => `${Math.round(perSecond).toLocaleString('en')} (${cpuUs.toFixed(1)} µs)`);
    console.log(`${name.padEnd(17)} ${cells[0].padStart(21)}   ${cells[1].padStart(26)}   ${cells[2].padStart(25)}`);
  }
  const verdict = (value: number) => (value >= 0.9 ? 'ok' : 'BELOW TARGET');
  for (const [label, kind] of [['POST', 'refresh'], ['GET', 'refreshGet']] as const) {
    const polls = shm[kind].perSecond / shm.hello.perSecond;
    const perCpu = shm.hello.cpuUs / shm[kind].cpuUs;
    console.log(`ratio  refresh ${label} from shared memory / hello, same workers: ${polls.toFixed(2)}x polls/s (target >= 0.9) ${verdict(polls)}; ${perCpu.toFixed(2)}x per server CPU-second`);
  }
  console.log(`ratio  refresh POST polls/s, shm / socket backend: ${ratio(shm.refresh.perSecond, socket.refresh.perSecond)}; per server CPU-second ${ratio(socket.refresh.cpuUs, shm.refresh.cpuUs)}`);
  console.log(
    `reference  bare node:http, same answer bytes: POST / hello ${ratio(plain.refresh.perSecond, plain.hello.perSecond)} polls/s, ${ratio(plain.hello.cpuUs, plain.refresh.cpuUs)} per CPU-second; GET / hello ${ratio(plain.refreshGet.perSecond, plain.hello.perSecond)}, ${ratio(plain.hello.cpuUs, plain.refreshGet.cpuUs)}`,
  );
}

if (cluster.isPrimary) await main();
else servePlain(Buffer.from(process.env.PLAIN_ANSWER ?? ''));
