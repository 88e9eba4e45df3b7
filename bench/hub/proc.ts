// Per-process CPU time and RSS from /proc (Linux), for the hub benchmarks: each server
// process is read by pid, so a system's cost is the sum over its own processes only.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const NS_PER_TICK = 1e9 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100);

/** A server process and what it does (e.g. `web worker`, `hub writer`, `primary`). */
export interface ServerProcess {
  pid: number;
  role: string;
}

/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number {
  // The command name in field 2 may hold spaces; the fields after it are fixed.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * NS_PER_TICK) / 1e9;
}

export function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

export function childrenOf(pid: number): number[] {
  return spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
}

/** CPU seconds per process since `start()`; `stop()` returns them keyed by role (summed per role). */
export function cpuMeter(processes: readonly ServerProcess[]): { stop(): Map<string, number> } {
  const before = processes.map((p) => cpuSeconds(p.pid));
  return {
    stop() {
      const byRole = new Map<string, number>();
      processes.forEach((p, i) => byRole.set(p.role, (byRole.get(p.role) ?? 0) + cpuSeconds(p.pid) - before[i]));
      return byRole;
    },
  };
}
