import { createConnection } from 'node:net';
import { createInterface } from 'node:readline';
import { KoboldError } from '../errors.js';
import type { ControlReply, ControlRequest } from '../ipc/control.js';

/** A reply with ok: false, as an error the CLI can print. */
export class ControlError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Sends one request over the control socket and resolves with its result.
 * Rejects with KOBOLD_ERR_NOT_RUNNING when nothing listens on the socket.
 */
export function controlRequest(socketPath: string, request: ControlRequest, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new KoboldError('KOBOLD_ERR_CONTROL_TIMEOUT', { timeoutMs }));
    }, timeoutMs);
    const finish = (fn: () => void) => {
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const notRunning = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
      finish(() => reject(notRunning ? new KoboldError('KOBOLD_ERR_NOT_RUNNING', { pidFile: socketPath }) : error));
    });
    socket.on('connect', () => socket.write(`${JSON.stringify({ id: 1, ...request })}\n`));
    createInterface({ input: socket }).once('line', (line) => {
      const reply = JSON.parse(line) as ControlReply;
      finish(() => (reply.ok ? resolve(reply.result) : reject(new ControlError(reply.error.code, reply.error.message))));
    });
  });
}
