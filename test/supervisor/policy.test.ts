// The supervisor's pure parts: restart backoff, limits, scaling arithmetic, pid file.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import { CrashTracker } from '../../src/supervisor/crash-tracker.js';
import { reachedLimit, requestLimitWithJitter } from '../../src/supervisor/limits.js';
import { acquirePidFile, readPid, releasePidFile } from '../../src/supervisor/pidfile.js';
import { clampWorkers, defaultScalingPolicy, EluWindow } from '../../src/supervisor/scaling.js';

const restart = { backoffInitialMs: 100, backoffMaxMs: 1_000, crashLimit: 3, crashWindowMs: 10_000 };

test('backoff doubles per crash up to the maximum, and a long-lived worker resets it', () => {
  const tracker = new CrashTracker({ ...restart, crashLimit: 100 });
  assert.deepEqual([1, 2, 3, 4, 5].map(() => tracker.recordCrash(50, 'x')), [100, 200, 400, 800, 1_000]);
  assert.equal(tracker.recordCrash(60_000, 'x'), 100);
});

test('crashLimit early crashes within the window mark the service failing; a survivor clears it', () => {
  const tracker = new CrashTracker(restart);
  tracker.recordCrash(10, 'a', 1_000);
  tracker.recordCrash(10, 'b', 2_000);
  assert.equal(tracker.failing, null);
  assert.equal(tracker.recordCrash(10, 'c', 3_000), restart.backoffMaxMs);
  assert.match(tracker.failing!, /3 workers crashed within 10000 ms of starting \(last: c\)/);
  tracker.recordSurvivor();
  assert.equal(tracker.failing, null);
});

test('crashes spread wider than the window do not mark failing', () => {
  const tracker = new CrashTracker(restart);
  for (const at of [0, 20_000, 40_000, 60_000]) tracker.recordCrash(10, 'x', at);
  assert.equal(tracker.failing, null);
});

test('each limit names itself; no limit when all are 0', () => {
  const limits = { maxRequests: 0, maxRequestsJitter: 0, maxMemoryMb: 100, maxIdleMs: 1_000, maxLifetimeMs: 5_000 };
  const metrics = { rss: 10 * 1048576, heapUsed: 0, elu: 0, requests: 5, inFlight: 0, connections: 0, lastActiveAt: 0 };
  assert.equal(reachedLimit(limits, { metrics: { ...metrics, lastActiveAt: 500 }, startedAt: 0, requestLimit: 10, now: 600 }), null);
  assert.match(reachedLimit(limits, { metrics: { ...metrics, requests: 10 }, startedAt: 0, requestLimit: 10, now: 1 })!, /^maxRequests/);
  assert.match(reachedLimit(limits, { metrics: { ...metrics, rss: 101 * 1048576 }, startedAt: 0, requestLimit: 0, now: 1 })!, /^maxMemoryMb/);
  assert.match(reachedLimit(limits, { metrics, startedAt: 0, requestLimit: 0, now: 1_000 })!, /^maxIdleMs/);
  assert.equal(reachedLimit(limits, { metrics: { ...metrics, inFlight: 1 }, startedAt: 0, requestLimit: 0, now: 1_000 }), null, 'not idle while serving');
  assert.match(reachedLimit(limits, { metrics: { ...metrics, lastActiveAt: 5_000 }, startedAt: 0, requestLimit: 0, now: 5_000 })!, /^maxLifetimeMs/);
  const none = { maxRequests: 0, maxRequestsJitter: 0, maxMemoryMb: 0, maxIdleMs: 0, maxLifetimeMs: 0 };
  assert.equal(reachedLimit(none, { metrics: { ...metrics, requests: 1e9 }, startedAt: 0, requestLimit: 0, now: 1e12 }), null);
});

test('request limit jitter stays within maxRequests..maxRequests+jitter', () => {
  const limits = { maxRequests: 100, maxRequestsJitter: 10, maxMemoryMb: 0, maxIdleMs: 0, maxLifetimeMs: 0 };
  assert.equal(requestLimitWithJitter(limits, () => 0), 100);
  assert.equal(requestLimitWithJitter(limits, () => 0.9999), 110);
  assert.equal(requestLimitWithJitter({ ...limits, maxRequests: 0 }), 0);
});

test('scaling: the window must fill before a decision; the policy result is clamped', () => {
  const window = new EluWindow();
  window.add(0.9, 0);
  assert.equal(window.mean(1_000, 100), null);
  window.add(0.7, 900);
  assert.equal(window.mean(1_000, 900), 0.8);
  const policy = defaultScalingPolicy({ enabled: true, windowMs: 1_000, highElu: 0.8, lowElu: 0.2, cooldownMs: 0 });
  const input = { service: 'web', workers: 2, minWorkers: 1, maxWorkers: 4, inFlight: 0 };
  assert.equal(policy({ ...input, elu: 0.95 }), 3);
  assert.equal(policy({ ...input, elu: 0.1 }), 1);
  assert.equal(policy({ ...input, elu: 0.5 }), 2);
  assert.equal(clampWorkers(10, 1, 4), 4);
  assert.equal(clampWorkers(-3, 1, 4), 1);
  assert.equal(clampWorkers(Number.NaN, 1, 4), 1);
});

test('pid file: exclusive create, a live holder is refused, a stale one replaced', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kobold-pid-'));
  try {
    const pidFile = join(dir, 'run/k.pid');
    assert.deepEqual(acquirePidFile(pidFile), { replacedStale: false });
    assert.equal(readPid(pidFile), process.pid);
    assert.throws(() => acquirePidFile(pidFile, 1), (error) => isKoboldError(error, 'KOBOLD_ERR_ALREADY_RUNNING'));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(pidFile, `${dead}\n`);
    assert.deepEqual(acquirePidFile(pidFile), { replacedStale: true });
    releasePidFile(pidFile);
    assert.equal(readPid(pidFile), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
