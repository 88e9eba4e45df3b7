// SharedTable increments and SharedMutex acquire/release across 2 processes, side by side
// with what a user would otherwise do: ask an owner process over IPC (process.send) for
// each increment or lock grant. Run: node --import tsx bench/shm/table.bench.ts
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SharedMutex } from '../../src/shm/lock.js';
import { shmAvailable, unavailableReason } from '../../src/shm/native.js';
import { unlinkSegment } from '../../src/shm/segment.js';
import { SharedTable } from '../../src/shm/table.js';

const PEER = fileURLToPath(new URL('./fixtures/table-peer.ts', import.meta.url));
const PROCESSES = 2;

/** Runs `role` in 2 processes, `count` operations each; returns operations per second in total. */
async function measure(role: string, count: number, segment = ''): Promise<number> {
  const owner = { value: 0, locked: false, waiting: [] as ChildProcess[] };
  const grant = (child: ChildProcess): void => {
    owner.locked = true;
    child.send('reply');
  };
  const children = Array.from({ length: PROCESSES }, () => fork(PEER, [role, String(count), segment], { execArgv: ['--import', 'tsx'] }));
  const ready = children.map((child) => new Promise((resolve) => child.once('message', resolve)));
  await Promise.all(ready);
  const done = children.map((child) => new Promise<void>((resolve) => {
    child.on('message', (message) => {
      if (message === 'done') resolve();
      else if (message === 'incr') {
        owner.value++;
        child.send('reply');
      } else if (message === 'lock') {
        if (owner.locked) owner.waiting.push(child);
        else grant(child);
      } else if (message === 'unlock') {
        owner.locked = false;
        const next = owner.waiting.shift();
        if (next) grant(next);
      }
    });
  }));
  const started = performance.now();
  for (const child of children) child.send('go');
  await Promise.all(done);
  return (PROCESSES * count) / ((performance.now() - started) / 1000);
}

if (!shmAvailable()) {
  console.log(`shared memory unavailable (${unavailableReason()}); nothing to compare`);
  process.exit(0);
}
const tableName = `kobold-bench-table-${process.pid}`;
const mutexName = `kobold-bench-mutex-${process.pid}`;
const table = SharedTable.create(tableName, { capacity: 16, columns: { count: { type: 'int' } } });
const mutex = SharedMutex.open(mutexName);
try {
  const sharedIncrements = await measure('table-incr', 300_000, tableName);
  if (table.getValue('hot', 'count') !== PROCESSES * 300_000) throw new Error('SharedTable lost increments');
  const ipcIncrements = await measure('ipc-incr', 10_000);
  const sharedLocks = await measure('mutex', 30_000, mutexName);
  const ipcLocks = await measure('ipc-mutex', 5_000);

  let uncontended = 0;
  const started = performance.now();
  while (performance.now() - started < 300) {
    for (let i = 0; i < 10_000; i++) {
      mutex.tryAcquire();
      mutex.release();
    }
    uncontended += 10_000;
  }
  const uncontendedRate = uncontended / ((performance.now() - started) / 1000);

  const row = (label: string, shm: number, ipc: number | undefined): string =>
    `${label.padEnd(38)} ${Math.round(shm).toLocaleString('en').padStart(11)} ${ipc === undefined ? ''.padStart(11) : Math.round(ipc).toLocaleString('en').padStart(11)} ${ipc === undefined ? '' : `${(shm / ipc).toFixed(1)}x`.padStart(8)}`;
  console.log(`operations/s, ${PROCESSES} processes on one key / one lock`);
  console.log(`${'operation'.padEnd(38)} ${'shm'.padStart(11)} ${'IPC owner'.padStart(11)} ${'ratio'.padStart(8)}`);
  console.log(row('table increment (same key)', sharedIncrements, ipcIncrements));
  console.log(row('mutex acquire+release (contended)', sharedLocks, ipcLocks));
  console.log(row('mutex tryAcquire+release (1 process)', uncontendedRate, undefined));
} finally {
  SharedTable.unlink(tableName);
  unlinkSegment(mutexName);
}
