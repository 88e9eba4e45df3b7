// The job runner's UNIX sockets (task workers -> dispatcher, clients -> jobs API): listening
// on one only its owner can use, and connecting to one whose process may be starting (the
// dispatcher starts at the same time as its clients, and restarts).

import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Listens on `path` (replacing a stale socket file left by a killed process), mode 0600. */
export async function listenPrivate(server: Server, path: string): Promise<void> {
  removeStaleSocket(path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
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

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Nothing there.
  }
}
