import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import { SharedMutex, SharedSemaphore } from '../../src/shm/lock.js';
import { unlinkSegment } from '../../src/shm/segment.js';
import { SharedTable } from '../../src/shm/table.js';
import { killFixtures, startFixture, uniqueName } from './helpers.js';

after(killFixtures);

function named(label: string): string {
  const name = uniqueName(label);
  after(() => unlinkSegment(name));
  return name;
}

test('a mutex excludes: tryAcquire fails while held, acquire waits for the release', async () => {
  const mutex = SharedMutex.open(named('mutex'));
  assert.equal(mutex.tryAcquire(), true);
  assert.equal(mutex.holder, process.pid);
  assert.equal(mutex.tryAcquire(), false, 'not re-entrant');
  let acquired = false;
  const waiting = mutex.acquire({ timeoutMs: 5000 }).then(() => (acquired = true));
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(acquired, false);
  mutex.release();
  await waiting;
  assert.equal(acquired, true);
  assert.equal(mutex.recovered, false);
  mutex.release();
  assert.equal(mutex.holder, 0);
  assert.throws(() => mutex.release(), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_LOCK_NOT_HELD'));
});

test('acquire times out with a clear error while another live process holds the mutex', async () => {
  const name = named('mutex');
  const holder = startFixture('lock-holder', ['mutex', name]);
  await holder.next('held');
  const mutex = SharedMutex.open(name);
  assert.equal(mutex.holder, holder.child.pid);
  await assert.rejects(mutex.acquire({ timeoutMs: 120 }), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_LOCK_TIMEOUT'));
  assert.equal(mutex.tryAcquire(), false);
  holder.kill();
});

test('a mutex whose holder is SIGKILLed is recovered by a waiter', async () => {
  const name = named('mutex');
  const holder = startFixture('lock-holder', ['mutex', name]);
  await holder.next('held');
  const mutex = SharedMutex.open(name);
  const waiting = mutex.acquire({ timeoutMs: 5000 });
  holder.kill('SIGKILL');
  await holder.exited();
  await waiting;
  assert.equal(mutex.holder, process.pid);
  assert.equal(mutex.recovered, true);
  assert.equal(mutex.recoveries, 1);
  mutex.release();
});

test('the mutex keeps read-modify-write from three processes exact', async () => {
  const tableName = named('table');
  const mutexName = named('mutex');
  const table = SharedTable.create(tableName, { capacity: 4, columns: { count: { type: 'int' } } });
  const rounds = 2000;
  const workers = [0, 1, 2].map(() => startFixture('table-worker', [tableName, String(rounds), 'locked-add', mutexName]));
  await Promise.all(workers.map((worker) => worker.next('ready')));
  for (const worker of workers) worker.child.send('go');
  await Promise.all(workers.map((worker) => worker.next('done')));
  assert.equal(table.getValue('total', 'count'), 3 * rounds);
});

test('a semaphore hands out its permits, and reclaims those of a killed process', async () => {
  const name = named('semaphore');
  const semaphore = SharedSemaphore.open(name, { permits: 2 });
  assert.equal(semaphore.permits, 2);
  const holder = startFixture('lock-holder', ['semaphore', name, '2']);
  await holder.next('held');
  assert.equal(semaphore.tryAcquire(), true);
  assert.equal(semaphore.available, 0);
  assert.equal(semaphore.tryAcquire(), false);
  await assert.rejects(semaphore.acquire({ timeoutMs: 60 }), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_LOCK_TIMEOUT'));
  const waiting = semaphore.acquire({ timeoutMs: 5000 });
  holder.kill('SIGKILL');
  await holder.exited();
  await waiting;
  assert.equal(semaphore.available, 0);
  semaphore.release();
  semaphore.release();
  assert.equal(semaphore.available, 2);
  assert.throws(() => semaphore.release(), (error) => isKoboldError(error, 'KOBOLD_ERR_SHM_LOCK_NOT_HELD'));
});

test('a semaphore wakes a waiter as soon as a permit is released', async () => {
  const semaphore = SharedSemaphore.open(named('semaphore'), { permits: 1 });
  await semaphore.acquire();
  const order: string[] = [];
  const waiting = semaphore.withPermit(() => order.push('waiter ran'), { timeoutMs: 5000 });
  await new Promise((resolve) => setTimeout(resolve, 20));
  order.push('released');
  semaphore.release();
  await waiting;
  assert.deepEqual(order, ['released', 'waiter ran']);
  assert.equal(semaphore.available, 1);
});
