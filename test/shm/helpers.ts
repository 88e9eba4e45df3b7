// Shared helpers for the shared-memory tests: unique segment names, fixture processes
// started with tsx and reaped by pid, and waiting for their messages.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

let counter = 0;

/** A segment name no other test (or test run) uses. */
export function uniqueName(label: string): string {
  return `kobold-test-${label}-${process.pid}-${++counter}`;
}

export interface Fixture {
  readonly child: ChildProcess;
  /** Resolves with the next message matching `kind` (messages are { kind, ... }). */
  next<T = Record<string, unknown>>(kind: string, timeoutMs?: number): Promise<T>;
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

const running = new Set<ChildProcess>();

/** Starts test/shm/fixtures/<name>.ts with the given arguments. */
export function startFixture(name: string, args: string[]): Fixture {
  const path = fileURLToPath(new URL(`./fixtures/${name}.ts`, import.meta.url));
  const child = fork(path, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  running.add(child);
  const inbox: Record<string, unknown>[] = [];
  const waiters: { kind: string; resolve: (message: Record<string, unknown>) => void }[] = [];
  child.on('message', (message: Record<string, unknown>) => {
    const index = waiters.findIndex((waiter) => waiter.kind === message.kind);
    if (index >= 0) waiters.splice(index, 1)[0].resolve(message);
    else inbox.push(message);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    child,
    next<T>(kind: string, timeoutMs = 20_000): Promise<T> {
      const index = inbox.findIndex((message) => message.kind === kind);
      if (index >= 0) return Promise.resolve(inbox.splice(index, 1)[0] as T);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fixture ${name}: no "${kind}" message within ${timeoutMs} ms`)), timeoutMs);
        const onExit = (code: number | null, signal: string | null): void => {
          clearTimeout(timer);
          reject(new Error(`fixture ${name} exited (${code ?? signal}) before sending "${kind}"`));
        };
        child.once('exit', onExit);
        waiters.push({
          kind,
          resolve: (message) => {
            clearTimeout(timer);
            child.off('exit', onExit);
            resolve(message as T);
          },
        });
      });
    },
    exited: () => exit,
    kill(signal = 'SIGKILL') {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, signal);
    },
  };
}

/** Kills every fixture still running (call from an after() hook). */
export function killFixtures(): void {
  for (const child of running) if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
}

/** The bytes of record `seq` in the ring tests: a length and content that depend on seq. */
export function recordFor(seq: number, maxBytes: number): Uint8Array {
  const length = 4 + (seq % (maxBytes - 3));
  const bytes = new Uint8Array(length);
  new DataView(bytes.buffer).setUint32(0, seq % 0x100000000, true);
  for (let i = 4; i < length; i++) bytes[i] = (seq * 31 + i * 7) & 255;
  return bytes;
}

/** Whether `payload` is exactly recordFor(seq). */
export function isRecordFor(payload: Uint8Array, seq: number, maxBytes: number): boolean {
  const length = 4 + (seq % (maxBytes - 3));
  if (payload.byteLength !== length) return false;
  if (new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, true) !== seq % 0x100000000) return false;
  for (let i = 4; i < length; i++) if (payload[i] !== ((seq * 31 + i * 7) & 255)) return false;
  return true;
}
