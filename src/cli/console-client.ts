import { createConnection } from 'node:net';
import type { ConsoleHello } from '../worker/console.js';

/**
 * Connects this terminal to a worker's REPL socket. On a TTY, keystrokes go through raw so
 * the REPL edits lines itself; otherwise lines are piped. Resolves when the session ends.
 */
export function attachConsole(socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    const terminal = process.stdin.isTTY === true;
    socket.once('error', reject);
    socket.on('connect', () => {
      socket.write(`${JSON.stringify({ terminal } satisfies ConsoleHello)}\n`);
      if (terminal) process.stdin.setRawMode(true);
      process.stdin.pipe(socket);
      socket.pipe(process.stdout);
    });
    socket.on('close', () => {
      if (terminal) process.stdin.setRawMode(false);
      process.stdin.unpipe(socket);
      process.stdin.pause();
      resolve();
    });
    // Piped input that ends (a script) ends the session after the REPL has answered.
    process.stdin.on('end', () => socket.end());
  });
}
