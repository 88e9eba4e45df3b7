// UNIX sockets owned by one process (the control socket, a worker's console, the hub writer,
// the jobs API): a socket file left by a killed process is replaced, a live one is not.

import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname } from 'node:path';

/** Whether a process accepts connections on the socket file. */
export function socketIsLive(path: string): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** Removes the socket file unless a process listens on it; returns whether the path is free. */
export async function removeStaleSocket(path: string): Promise<boolean> {
  if (await socketIsLive(path)) return false;
  try {
    unlinkSync(path);
  } catch {
    // nothing there
  }
  return true;
}

export interface ListenUnixOptions {
  /** File mode of the socket (default 0600: only its owner may connect). */
  mode?: number;
  /**
   * Bind in this process even inside a node:cluster worker (default true). Without it a
   * cluster worker's listen goes through the master, which would own the socket.
   */
  exclusive?: boolean;
}

/** Listens on `path` (creating its folder 0700), after removing a stale socket file there. */
export async function listenUnix(server: Server, path: string, options: ListenUnixOptions = {}): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  await removeStaleSocket(path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path, exclusive: options.exclusive ?? true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, options.mode ?? 0o600);
}

/** Removes a socket file we own, if it is still there. */
export function removeSocketFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Retries while the socket is missing or refused, up to `timeoutMs`; then throws the last error. */
export async function connectWithRetry(socketPath: string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect(socketPath);
        socket.once('connect', () => {
          socket.off('error', reject);
          resolve(socket);
        });
        socket.once('error', reject);
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() >= deadline) throw error;
      await sleep(50);
    }
  }
}
