// The dispatcher's side of the task-worker connections: the UNIX socket server, one slot
// per connected worker, the processes forked for `isolation: 'fresh'` runs, and killing a
// worker. It knows nothing about runs' states; it reports workers that became ready, their
// messages, and workers that went away (with their exit code or signal when known).

import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { KoboldError } from '../errors.js';
import { taskWorkerEnvKey, type TaskWorkerOptions } from './task-worker.js';
import { listenUnix } from '../ipc/unix-socket.js';
import { WireConnection, type FromWorker, type ToWorker } from './wire.js';

export interface WorkerExit {
  code: number | null;
  signal: string | null;
}

export interface WorkerSlot {
  readonly pid: number;
  /** Runs this worker takes at once. */
  readonly capacity: number;
  readonly tasks: ReadonlySet<string>;
  /** Ids of the runs it holds now. */
  readonly running: Set<number>;
  /** It asked for no more runs. */
  draining: boolean;
  /** Set for a process forked for one `isolation: 'fresh'` run. */
  readonly freshRunId: number | undefined;
  send(message: ToWorker): void;
}

export interface WorkerEvents {
  ready(worker: WorkerSlot): void;
  message(worker: WorkerSlot, message: FromWorker): void;
  /** The connection closed. `exit` is undefined when the process's exit status is unknown. */
  lost(worker: WorkerSlot, exit: WorkerExit | undefined, error?: KoboldError): void;
  /** A fresh process died before it was ready, so its run never started. */
  freshFailed(runId: number, reason: string): void;
}

export interface WorkersOptions {
  socketPath: string;
  maxMessageBytes: number;
  workerExitWaitMs: number;
  /** How pool workers (which the supervisor owns) are signalled; process.kill by default. */
  killWorker?: (pid: number, signal: NodeJS.Signals) => void;
  /** What fresh processes load and how they are bounded. */
  fresh: Pick<TaskWorkerOptions, 'taskModules' | 'baseDir' | 'maxResultBytes' | 'maxMessageBytes'>;
}

interface FreshProcess {
  child: ChildProcess;
  runId: number;
  stderrTail: string;
  exit?: WorkerExit;
  readyReported?: boolean;
}

const entryUrl = new URL(`./task-worker-main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
/** Exit statuses reported before the matching socket closed, kept briefly. */
const recentExitsKept = 256;

export class Workers {
  private readonly slots = new Set<WorkerSlot>();
  private readonly fresh = new Map<number, FreshProcess>();
  private readonly recentExits = new Map<number, WorkerExit>();
  private readonly awaitingExit = new Map<number, { worker: WorkerSlot; timer: NodeJS.Timeout; error?: KoboldError }>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;

  constructor(
    private readonly options: WorkersOptions,
    private readonly events: WorkerEvents,
  ) {}

  async listen(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    await listenUnix(server, this.options.socketPath);
    this.server = server;
  }

  all(): Iterable<WorkerSlot> {
    return this.slots;
  }

  get freshCount(): number {
    return this.fresh.size;
  }

  /** Forks a process that will connect and run `runId` alone, then exit. */
  forkFresh(runId: number): void {
    const options: TaskWorkerOptions = { socketPath: this.options.socketPath, ...this.options.fresh, maxRuns: 1 };
    const child = fork(fileURLToPath(entryUrl), [], {
      env: { ...process.env, [taskWorkerEnvKey]: JSON.stringify(options) },
      execArgv: entryUrl.pathname.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    const entry: FreshProcess = { child, runId, stderrTail: '' };
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => (entry.stderrTail = (entry.stderrTail + text).slice(-2000)));
    child.on('exit', (code, signal) => {
      entry.exit = { code, signal };
      this.fresh.delete(child.pid!);
      const connected = [...this.slots].some((slot) => slot.pid === child.pid);
      if (!connected && !entry.readyReported) {
        this.events.freshFailed(runId, `fresh task process exited before it was ready (${describeExit(entry.exit)})${entry.stderrTail ? `: ${entry.stderrTail.trim()}` : ''}`);
      }
      this.workerExited(child.pid!, code, signal);
    });
    this.fresh.set(child.pid!, entry);
  }

  /** The fresh process holding a run that has not started yet, if any: for cancellation. */
  freshPidOf(runId: number): number | undefined {
    for (const [pid, entry] of this.fresh) if (entry.runId === runId) return pid;
    return undefined;
  }

  kill(pid: number, signal: NodeJS.Signals): void {
    try {
      const fresh = this.fresh.get(pid);
      if (fresh) fresh.child.kill(signal);
      else (this.options.killWorker ?? process.kill)(pid, signal);
    } catch {
      // Already gone: its socket's close reports it.
    }
  }

  /** The supervisor reports a worker process's exit here; it completes a lost worker's record. */
  workerExited(pid: number, code: number | null, signal: string | null): void {
    const exit = { code, signal };
    const waiting = this.awaitingExit.get(pid);
    if (waiting) {
      clearTimeout(waiting.timer);
      this.awaitingExit.delete(pid);
      this.events.lost(waiting.worker, exit, waiting.error);
      return;
    }
    this.recentExits.set(pid, exit);
    if (this.recentExits.size > recentExitsKept) this.recentExits.delete(this.recentExits.keys().next().value!);
  }

  async close(): Promise<void> {
    for (const { child } of this.fresh.values()) child.kill('SIGKILL');
    for (const { timer } of this.awaitingExit.values()) clearTimeout(timer);
    this.awaitingExit.clear();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    let slot: WorkerSlot | undefined;
    const wire: WireConnection<FromWorker, ToWorker> = new WireConnection(socket, { maxMessageBytes: this.options.maxMessageBytes }, {
      message: (message) => {
        if (message.kind === 'hello') {
          if (slot) return wire.socket.destroy();
          slot = this.register(message, wire);
          if (slot) this.events.ready(slot);
        } else if (slot) {
          this.events.message(slot, message);
        }
      },
      close: (error) => {
        if (slot) this.disconnected(slot, error);
      },
    });
  }

  private register(hello: Extract<FromWorker, { kind: 'hello' }>, wire: WireConnection<FromWorker, ToWorker>): WorkerSlot | undefined {
    const fresh = this.fresh.get(hello.pid);
    if (fresh) fresh.readyReported = true;
    const slot: WorkerSlot = {
      pid: hello.pid,
      capacity: fresh ? 1 : Math.max(1, Math.floor(hello.concurrency)),
      tasks: new Set(hello.tasks),
      running: new Set(),
      draining: fresh !== undefined,
      freshRunId: fresh?.runId,
      send: (message) => wire.send(message),
    };
    this.slots.add(slot);
    return slot;
  }

  private disconnected(slot: WorkerSlot, error?: KoboldError): void {
    this.slots.delete(slot);
    const known = this.recentExits.get(slot.pid) ?? this.fresh.get(slot.pid)?.exit;
    if (known || slot.running.size === 0) {
      this.recentExits.delete(slot.pid);
      this.events.lost(slot, known, error);
      return;
    }
    // The socket usually closes a moment before the process's exit is reported.
    const timer = setTimeout(() => {
      this.awaitingExit.delete(slot.pid);
      this.events.lost(slot, undefined, error);
    }, this.options.workerExitWaitMs);
    this.awaitingExit.set(slot.pid, { worker: slot, timer, ...(error && { error }) });
  }
}

export function describeExit(exit: WorkerExit | undefined): string {
  if (!exit) return 'exit status unknown';
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}
