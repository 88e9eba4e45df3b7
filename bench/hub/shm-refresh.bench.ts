// Refresh-mode polls (POST <pathPrefix>/refresh with a JSON body, and GET with the positions
// in the query string; the client up to date on one channel)
// answered by the web workers from the shared-memory ring, vs a plain HTTP hello on the same
// 2 workers; then the same polls on the socket backend, where each one costs a request to
// the hub writer; then, for reference, a bare node:cluster http server (2 workers, no
// framework) that answers the same requests with the same bytes without looking at them:
// the most this load generator sees with this wire format. Side by side in one run,
// keep-alive load from this process (autocannon).
// Run: npm run build && node --import tsx bench/hub/shm-refresh.bench.ts [seconds]
import cluster from 'node:cluster';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { shmAvailable, unavailableReason } from '../../src/shm/native.js';
import { CLI, freePort, ratio, run } from '../helpers.js';

const SECONDS = Number(process.argv[2] ?? 5);
const CONNECTIONS = 50;
const ROUNDS = 3;
const HELLO_APP = fileURLToPath(new URL('../shm/fixtures/hello-app.mjs', import.meta.url));
const CHANNEL = 'room:poll';

interface Rates {
  hello: number;
  refresh: number;
  refreshGet: number;
}

async function rate(url: string, options: { method?: 'POST'; body?: string } = {}): Promise<number> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, headers: { 'content-type': 'application/json' }, ...options });
  if (result.non2xx + result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return result.requests.average;
}

/** Hello, refresh POST and GET rates at `base`: interleaved rounds, medians (the machine's other load drifts during a run). */
async function rates(base: string, channels: string): Promise<Rates> {
  await rate(`${base}/hello`); // warm-up
  const rounds: Rates[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    rounds.push({
      hello: await rate(`${base}/hello`),
      refresh: await rate(`${base}/hub/refresh`, { method: 'POST', body: `{"channels":${channels}}` }),
      refreshGet: await rate(`${base}/hub/refresh?channels=${encodeURIComponent(channels)}`),
    });
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1];
  return { hello: median(rounds.map((r) => r.hello)), refresh: median(rounds.map((r) => r.refresh)), refreshGet: median(rounds.map((r) => r.refreshGet)) };
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
    return { ...(await rates(base, channels)), channels, answer: refreshAnswer };
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
    return await rates(`http://127.0.0.1:${port}`, channels);
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
  console.log('server                hello req/s   refresh POST polls/s   refresh GET polls/s');
  for (const [name, result] of [['kobold shm', shm], ['kobold socket', socket], ['bare node:http', plain]] as const) {
    const cells = [result.hello, result.refresh, result.refreshGet].map((n) => Math.round(n).toLocaleString('en'));
    console.log(`${name.padEnd(17)} ${cells[0].padStart(11)}   ${cells[1].padStart(20)}   ${cells[2].padStart(19)}`);
  }
  const verdict = (value: number) => (value >= 0.9 ? 'ok' : 'BELOW TARGET');
  console.log(`ratio  refresh POST from shared memory / hello, same workers: ${ratio(shm.refresh, shm.hello)} (target >= 0.9) ${verdict(shm.refresh / shm.hello)}`);
  console.log(`ratio  refresh GET from shared memory / hello, same workers: ${ratio(shm.refreshGet, shm.hello)} (target >= 0.9) ${verdict(shm.refreshGet / shm.hello)}`);
  console.log(`ratio  refresh POST polls/s, shm / socket backend: ${ratio(shm.refresh, socket.refresh)}`);
  console.log(`reference  bare node:http, same answer bytes: POST / hello ${ratio(plain.refresh, plain.hello)}, GET / hello ${ratio(plain.refreshGet, plain.hello)}`);
}

if (cluster.isPrimary) await main();
else servePlain(Buffer.from(process.env.PLAIN_ANSWER ?? ''));
