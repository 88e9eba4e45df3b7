// The hub's fan-out to 2 web workers over the shared-memory ring (the `shm` backend) vs
// over the socket path, side by side in one run: deliveries/s, and the hub writer's CPU per
// message, read from /proc/<pid>/stat. Publications come from inside the writer, so its
// CPU is what it pays to assign offsets, keep history and hand each one to the workers.
// The ring has the daemon's default geometry (hub.ring), and each run is made of bursts
// smaller than the ring, so a reader is never lapped.
// Run: node --import tsx bench/hub/shm-fanout.bench.ts [bursts per run]
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hubConfigDefaults } from '../../src/hub/config.js';
import { shmAvailable, unavailableReason } from '../../src/shm/native.js';
import { SharedRing } from '../../src/shm/ring.js';
import { cpuSeconds } from './proc.js';

const BURSTS = Number(process.argv[2] ?? 8);
const RING = hubConfigDefaults.ring;
const BURST = RING.records - 1024;
const RUNS = 3;
const READERS = 2;
const BYTES = 100;
const PER_TURN = 500;
const fixture = (name: string) => fileURLToPath(new URL(`../shm/fixtures/${name}`, import.meta.url));

interface Child {
  readonly process: ChildProcess;
  next(): Promise<Record<string, unknown>>;
}

function start(file: string, args: string[]): Child {
  const child = fork(fixture(file), args, { execArgv: ['--import', 'tsx'] });
  const inbox: Record<string, unknown>[] = [];
  const waiting: ((message: Record<string, unknown>) => void)[] = [];
  child.on('message', (message: Record<string, unknown>) => (waiting.shift() ?? ((m) => inbox.push(m)))(message));
  return {
    process: child,
    next: () =>
      new Promise((resolve, reject) => {
        const queued = inbox.shift();
        if (queued !== undefined) return resolve(queued);
        const timer = setTimeout(() => reject(new Error(`${file} did not answer`)), 60_000);
        waiting.push((message) => {
          clearTimeout(timer);
          resolve(message);
        });
      }),
  };
}

interface Sample {
  deliveriesPerS: number;
  writerUsPerMessage: number;
}

async function measure(mode: 'socket' | 'shm', dir: string): Promise<Sample[]> {
  const socketPath = join(dir, `${mode}.sock`);
  const ring = { segment: `kobold-bench.${process.pid}.hub.ring`, doorbellPath: join(dir, 'ring.sock'), recordBytes: RING.recordBytes, records: RING.records };
  const writer = start('hub-writer.ts', [socketPath, mode === 'shm' ? JSON.stringify(ring) : 'none']);
  const readers: Child[] = [];
  try {
    const pid = Number((await writer.next()).ready);
    for (let i = 0; i < READERS; i++) readers.push(start('hub-reader.ts', [socketPath]));
    const kinds = await Promise.all(readers.map(async (reader) => (await reader.next()).ready));
    const expectedKind = mode === 'shm' ? 'ShmBackend' : 'SocketBackend';
    if (kinds.some((kind) => kind !== expectedKind)) throw new Error(`${mode}: readers are ${kinds.join(', ')}`);
    /** Publishes `bursts` x BURST; counts wall time only while a burst is under way (the writer idles in between). */
    const run = async (bursts: number): Promise<Sample> => {
      let seconds = 0;
      const cpuBefore = cpuSeconds(pid);
      for (let i = 0; i < bursts; i++) {
        for (const reader of readers) reader.process.send({ expect: BURST });
        await Promise.all(readers.map((reader) => reader.next()));
        const started = performance.now();
        writer.process.send({ burst: { count: BURST, perTurn: PER_TURN, bytes: BYTES } });
        await Promise.all([writer.next(), ...readers.map((reader) => reader.next())]);
        seconds += (performance.now() - started) / 1000;
      }
      const count = bursts * BURST;
      return { deliveriesPerS: (count * READERS) / seconds, writerUsPerMessage: ((cpuSeconds(pid) - cpuBefore) / count) * 1e6 };
    };
    await run(2); // warm-up: the ring's pages are touched once, the code is optimised
    const samples: Sample[] = [];
    for (let i = 0; i < RUNS; i++) samples.push(await run(BURSTS));
    return samples;
  } finally {
    for (const child of [...readers, writer]) child.process.kill('SIGKILL');
    if (mode === 'shm') SharedRing.unlink(ring.segment);
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

if (!shmAvailable()) {
  console.log(`shared memory is unavailable (${unavailableReason()}); nothing to compare`);
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), 'kobold-shm-fanout-'));
try {
  const results = new Map<string, Sample>();
  for (const mode of ['socket', 'shm'] as const) {
    const samples = await measure(mode, dir);
    results.set(mode, { deliveriesPerS: median(samples.map((s) => s.deliveriesPerS)), writerUsPerMessage: median(samples.map((s) => s.writerUsPerMessage)) });
  }
  console.log(
    `hub fan-out: ${BURSTS} x ${BURST} publications of ~${BYTES} bytes per run, ${READERS} reader processes, ` +
      `ring ${RING.records} x ${RING.recordBytes} bytes, median of ${RUNS} runs`,
  );
  console.log('backend  deliveries/s   hub writer CPU per message');
  for (const [mode, sample] of results) {
    console.log(`${mode.padEnd(8)} ${Math.round(sample.deliveriesPerS).toLocaleString('en').padStart(12)}   ${sample.writerUsPerMessage.toFixed(2).padStart(6)} µs`);
  }
  const socket = results.get('socket')!;
  const shm = results.get('shm')!;
  const cpuRatio = socket.writerUsPerMessage / shm.writerUsPerMessage;
  console.log(`ratio  hub writer CPU per message, socket / shm: ${cpuRatio.toFixed(2)}x (target >= 2) ${cpuRatio >= 2 ? 'ok' : 'BELOW TARGET'}`);
  console.log(`ratio  deliveries/s, shm / socket: ${(shm.deliveriesPerS / socket.deliveriesPerS).toFixed(2)}x`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
