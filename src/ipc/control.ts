// The control socket's protocol: one JSON object per line each way. A request carries
// an `id`; its reply carries the same id.

import type { ConfigProblem } from '../config/load.js';

export type ControlRequest =
  | { cmd: 'ping' }
  | { cmd: 'status' }
  | { cmd: 'fullstatus' }
  | { cmd: 'reload'; configOnly?: boolean }
  | { cmd: 'restart-workers' }
  | { cmd: 'reopen-logs' }
  | { cmd: 'stop'; hard?: boolean }
  | { cmd: 'scale'; service: string; delta: number };

export type ControlCommand = ControlRequest['cmd'];
export const CONTROL_COMMANDS: readonly ControlCommand[] = ['ping', 'status', 'fullstatus', 'reload', 'restart-workers', 'reopen-logs', 'stop', 'scale'];

export type ControlReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string; problems?: ConfigProblem[] } };

/** A worker that a reload or rolling restart could not replace. */
export interface ReplacementFailure {
  worker: number;
  service: string;
  /** Why its replacement did not start. */
  reason: string;
  /** True: the old worker keeps serving; false: it had handed its work over and a fresh one was started in its place. */
  keptServing: boolean;
}

/** What a rolling restart did. */
export interface RolloutResult {
  replaced: number;
  failed: ReplacementFailure[];
}

/** The answer to `reload`. */
export interface ReloadResult extends RolloutResult {
  services: string[];
  /** Workers whose apps took the new config in place (`--config-only`). */
  reconfigured: number;
}

export type WorkerStateName = 'starting' | 'ready' | 'draining' | 'exited';

export interface WorkerStatus {
  id: number;
  pid: number;
  service: string;
  slot: number;
  state: WorkerStateName;
  busy: boolean;
  uptimeMs: number;
  rss: number;
  requests: number;
  connections: number;
  elu: number;
  restarts: number;
  /** The worker's debug console socket (`kobold console`), or null when consoles are off. */
  consoleSocket: string | null;
}

export interface ServiceStatus {
  name: string;
  role: string;
  workers: number;
  minWorkers: number;
  maxWorkers: number;
  target: number;
  failing: string | null;
  restarts: number;
}

export interface DaemonStatus {
  pid: number;
  uptimeMs: number;
  configFile: string | null;
  state: 'starting' | 'running' | 'stopping';
  services: ServiceStatus[];
}

export interface FullStatus extends DaemonStatus {
  workers: WorkerStatus[];
}
