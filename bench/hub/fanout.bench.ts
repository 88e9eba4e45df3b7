// Fan-out benchmark: N WebSocket clients on one channel, M publications in bursts.
// Runs Kobold's hub (memory backend, one process) and a bare `ws` broadcast (one send per
// client per message) side by side, and prints deliveries per server CPU-second and ratios.
// The clients run in a child process so they do not share the server's event loop.
//   node --import tsx bench/hub/fanout.bench.ts [clients=1000] [messages=200] [burst=10]
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { MemoryBackend } from '../../src/hub/backends/memory.js';
import { hubRoutes, webSocketServerOptions } from '../../src/hub/index.js';
import { HubNode } from '../../src/hub/node.js';
import { resolveHubOptions } from '../../src/hub/options.js';

const isChild = process.argv[2] === 'clients';
// parent: [clients, messages, burst]; child: clients <url> <clients> <messages> <hub|ws>
const numbers = isChild ? process.argv.slice(4, 6) : process.argv.slice(2, 5);
const [clients, messages, burst] = [1000, 200, 10].map((fallback, i) => Number(numbers[i] ?? fallback));

if (isChild) runClients(process.argv[3]!, clients, process.argv[6] === 'hub');
else await main();

/** Child: opens the clients, counts publications received, reports when all are in. */
function runClients(url: string, count: number, hub: boolean): void {
  let received = 0;
  let opened = 0;
  const expected = count * messages;
  for (let i = 0; i < count; i++) {
    const socket = new WebSocket(url);
    socket.on('open', () => {
      if (hub) socket.send('{"id":1,"cmd":"connect"}\n{"id":2,"cmd":"subscribe","channel":"bench:all"}');
      else if (++opened === count) process.send!({ ready: true });
    });
    socket.on('message', (data) => {
      const text = data.toString();
      if (hub && text.includes('"id":2')) {
        if (++opened === count) process.send!({ ready: true });
        return;
      }
      received += hub ? text.split('\n').length : 1;
      if (received === expected) process.send!({ done: true });
    });
  }
}

async function measure(name: string, url: string, hub: boolean, publish: (i: number) => void): Promise<number> {
  const child = fork(new URL(import.meta.url).pathname, ['clients', url, String(clients), String(messages), hub ? 'hub' : 'ws'], {
    execArgv: ['--import', 'tsx'],
  });
  await new Promise<void>((resolve) => child.on('message', (m: { ready?: boolean }) => m.ready && resolve()));
  const done = new Promise<void>((resolve) => child.on('message', (m: { done?: boolean }) => m.done && resolve()));
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let sent = 0; sent < messages; ) {
    for (let j = 0; j < burst && sent < messages; j++) publish(sent++);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await done;
  const wallS = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const cpuS = (used.user + used.system) / 1e6;
  const deliveries = clients * messages;
  child.kill();
  const perCpu = deliveries / cpuS;
  console.log(`${name.padEnd(10)} ${deliveries} deliveries in ${wallS.toFixed(2)} s, server CPU ${cpuS.toFixed(2)} s: ${(perCpu / 1e6).toFixed(2)}M deliveries/CPU-s`);
  return perCpu;
}

async function main(): Promise<void> {
  console.log(`${clients} clients, ${messages} messages in bursts of ${burst}`);
  // bare ws broadcast
  const bare = createServer();
  const wss = new WebSocketServer({ server: bare });
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  const payload = JSON.stringify({ text: 'x'.repeat(64) });
  const wsRate = await measure('bare ws', `ws://127.0.0.1:${(bare.address() as AddressInfo).port}`, false, () => {
    for (const client of wss.clients) client.send(payload);
  });
  for (const client of wss.clients) client.terminate();
  bare.close();

  const hub = resolveHubOptions({ namespaces: [{ name: 'bench', subscribe: 'anyone', historySize: 0 }], limits: { maxSubscriptionsPerConnection: 10 } });
  const node = new HubNode({ backend: new MemoryBackend({ namespaces: hub.namespaces }), hub });
  const mounted = hubRoutes(node);
  const server = createServer();
  // The hub does not track its sockets; the bench does, to end its clients.
  const hubWss = new WebSocketServer({ server, ...webSocketServerOptions(node), clientTracking: true });
  hubWss.on('connection', (socket) => mounted.acceptWebSocket(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const data = { text: 'x'.repeat(64) };
  const hubRate = await measure('kobold', `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, true, () => void node.publish('bench:all', data));
  await node.close();
  for (const client of hubWss.clients) client.terminate();
  server.close();
  console.log(`kobold / bare ws = ${(hubRate / wsRate).toFixed(2)}x deliveries per server CPU-second`);
}
