// SharedRing vs a UNIX socket with batched writes: one writer process, 1 / 2 / 4 reader
// processes, the same 64-byte records (ring: 8-byte slot header + 56 bytes; socket:
// 64-byte frames written 256 per write). Prints records/s delivered to each reader, the
// writer's CPU per record (what a hub pays), and the ratios.
// Run: node --import tsx bench/shm/ring.bench.ts [records]
import { fork, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shmAvailable, unavailableReason } from '../../src/shm/native.js';
import { SharedRing } from '../../src/shm/ring.js';
import { SharedTable } from '../../src/shm/table.js';

const COUNT = Number(process.argv[2] ?? 2_000_000);
const PEER = fileURLToPath(new URL('./fixtures/ring-peer.ts', import.meta.url));

interface Peer {
  child: ChildProcess;
  message(kind: string): Promise<Record<string, number>>;
}

function startPeer(args: string[]): Peer {
  const child = fork(PEER, args, { execArgv: ['--import', 'tsx'] });
  const inbox: Record<string, number>[] = [];
  const waiting: ((message: Record<string, number>) => void)[] = [];
  child.on('message', (message: Record<string, number>) => {
    const next = waiting.shift();
    if (next) next(message);
    else inbox.push(message);
  });
  return {
    child,
    message: (kind) =>
      new Promise((resolve, reject) => {
        const queued = inbox.shift();
        if (queued) return resolve(queued);
        const timer = setTimeout(() => reject(new Error(`no ${kind} from ${args.join(' ')}`)), 30_000);
        waiting.push((message) => {
          clearTimeout(timer);
          resolve(message);
        });
      }),
  };
}

interface RunResult {
  /** Records per second delivered to each reader. */
  rate: number;
  /** Writer CPU (user + system) per record, in nanoseconds. */
  writerNs: number;
}

/** Starts readers then the writer, says go, and measures until every reader has every record. */
async function run(writerArgs: string[], readerArgs: string[][]): Promise<RunResult> {
  const readers = readerArgs.map(startPeer);
  await Promise.all(readers.map((reader) => reader.message('ready')));
  const writer = startPeer(writerArgs);
  await writer.message('ready');
  const started = performance.now();
  for (const peer of [...readers, writer]) peer.child.send('go');
  const results = await Promise.all(readers.map((reader) => reader.message('done')));
  const seconds = (performance.now() - started) / 1000;
  writer.child.send('cpu');
  const { micros } = await writer.message('cpu');
  writer.child.kill();
  const expected = (COUNT * (COUNT - 1)) / 2;
  for (const result of results) if (result.sum !== expected) throw new Error(`checksum mismatch: ${result.sum} != ${expected}`);
  return { rate: COUNT / seconds, writerNs: (micros * 1000) / COUNT };
}

async function ringRun(readers: number): Promise<RunResult> {
  const ringName = `kobold-bench-ring-${process.pid}`;
  const progressName = `kobold-bench-progress-${process.pid}`;
  const doorbell = join(tmpdir(), `kobold-bench-${process.pid}.sock`);
  SharedRing.create(ringName, { recordSize: 56, capacity: 1 << 17 });
  SharedTable.create(progressName, { capacity: 8, columns: { position: { type: 'int' } } });
  try {
    const ids = Array.from({ length: readers }, (_, i) => `r${i}`);
    return await run(
      ['writer', 'ring', ringName, doorbell, String(COUNT), progressName],
      ids.map((id) => ['reader', 'ring', ringName, doorbell, String(COUNT), progressName, id]),
    );
  } finally {
    SharedRing.unlink(ringName);
    SharedTable.unlink(progressName);
    rmSync(doorbell, { force: true });
  }
}

async function socketRun(readers: number): Promise<RunResult> {
  const path = join(tmpdir(), `kobold-bench-socket-${process.pid}.sock`);
  try {
    return await run(
      ['writer', 'socket', path, String(COUNT), String(readers)],
      Array.from({ length: readers }, () => ['reader', 'socket', path, String(COUNT)]),
    );
  } finally {
    rmSync(path, { force: true });
  }
}

if (!shmAvailable()) {
  console.log(`shared memory unavailable (${unavailableReason()}); nothing to compare`);
  process.exit(0);
}
const rate = (perSecond: number): string => `${(perSecond / 1e6).toFixed(2)}M/s`.padStart(9);
const ns = (value: number): string => `${value.toFixed(0)}ns`.padStart(7);
const ratio = (value: number): string => `${value.toFixed(2)}x`.padStart(7);
console.log(`${COUNT} records of 64 bytes; records/s delivered to each reader, and the writer's CPU per record`);
console.log('readers |      ring    socket ring/sock | writer CPU: ring socket sock/ring');
for (const readers of [1, 2, 4]) {
  const ring = await ringRun(readers);
  const socket = await socketRun(readers);
  console.log(
    `${String(readers).padStart(7)} | ${rate(ring.rate)} ${rate(socket.rate)} ${ratio(ring.rate / socket.rate)}   |` +
      `      ${ns(ring.writerNs)} ${ns(socket.writerNs)} ${ratio(socket.writerNs / ring.writerNs)}`,
  );
}
