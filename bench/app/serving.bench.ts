// App serving, side by side in one run, 2 workers each:
//   HTTP hello through a Kobold app route vs a plain node:http server in node:cluster (target >= 0.9)
//   WebSocket echo round trips/s through a Kobold ws route vs a plain `ws` server (target >= 0.9)

import { join } from 'node:path';
import { WebSocket } from 'ws';
import { freePort, KoboldDaemon, load, PlainCluster, ratio, ROOT } from '../helpers.js';

const FIXTURES = join(ROOT, 'bench/app/fixtures');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WORKERS = 2;
const HTTP_CONNECTIONS = 100;
const WS_CONNECTIONS = 50;

/** Each connection sends a message and waits for its echo, again and again, for `seconds`. */
async function echoRoundTrips(port: number, seconds: number): Promise<number> {
  const sockets = await Promise.all(
    Array.from({ length: WS_CONNECTIONS }, () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`, { perMessageDeflate: false });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    })),
  );
  const deadline = Date.now() + seconds * 1000;
  let trips = 0;
  const payload = 'x'.repeat(64);
  await Promise.all(
    sockets.map((ws) => new Promise<void>((resolve) => {
      ws.on('message', () => {
        trips += 1;
        if (Date.now() < deadline) ws.send(payload);
        else resolve();
      });
      ws.send(payload);
    })),
  );
  for (const ws of sockets) ws.terminate();
  return trips / seconds;
}

async function main(): Promise<void> {
  const kobold = new KoboldDaemon(await freePort(), join(FIXTURES, 'serving-app.mjs'), WORKERS);
  const plain = new PlainCluster(await freePort(), join(FIXTURES, 'cluster-serving.mjs'), WORKERS);
  try {
    kobold.start();
    await plain.start();
    const url = (port: number) => `http://127.0.0.1:${port}/hello/kobold`;
    await load(url(kobold.port), HTTP_CONNECTIONS, 2);
    await load(url(plain.port), HTTP_CONNECTIONS, 2);
    let koboldHttp = 0;
    let plainHttp = 0;
    let koboldWs = 0;
    let plainWs = 0;
    // Two interleaved rounds, best of each: the machine is shared.
    for (let round = 0; round < 2; round += 1) {
      koboldHttp = Math.max(koboldHttp, (await load(url(kobold.port), HTTP_CONNECTIONS, SECONDS)).requestsPerSecond);
      plainHttp = Math.max(plainHttp, (await load(url(plain.port), HTTP_CONNECTIONS, SECONDS)).requestsPerSecond);
      koboldWs = Math.max(koboldWs, await echoRoundTrips(kobold.port, SECONDS));
      plainWs = Math.max(plainWs, await echoRoundTrips(plain.port, SECONDS));
    }
    console.log(`${WORKERS} workers each; HTTP: ${HTTP_CONNECTIONS} keep-alive connections; WebSocket: ${WS_CONNECTIONS} connections echoing 64 bytes; best of 2 rounds of ${SECONDS} s`);
    console.table({
      'HTTP req/s': { kobold: Math.round(koboldHttp), plain: Math.round(plainHttp), ratio: ratio(koboldHttp, plainHttp), target: '>= 0.9' },
      'WS round trips/s': { kobold: Math.round(koboldWs), plain: Math.round(plainWs), ratio: ratio(koboldWs, plainWs), target: '>= 0.9' },
    });
  } finally {
    kobold.stop();
    kobold.remove();
    plain.stop();
  }
}

await main();
