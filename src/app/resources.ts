import { describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';

interface Entry {
  value: unknown;
  close: (value: never) => unknown;
}

/**
 * Resources an app opens in setup (a DB pool, a Redis client…), closed for it in reverse
 * order when the worker closes — after the app's own close hooks.
 */
export class ResourceRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly logger: Logger) {}

  add<T>(name: string, value: T, close: (value: T) => unknown): T {
    if (this.entries.has(name)) throw new Error(`resource "${name}" is registered twice`);
    this.entries.set(name, { value, close: close as (value: never) => unknown });
    return value;
  }

  get<T>(name: string): T {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new Error(`no resource named "${name}" (registered: ${[...this.entries.keys()].join(', ') || 'none'})`);
    return entry.value as T;
  }

  async closeAll(): Promise<void> {
    for (const [name, entry] of [...this.entries].reverse()) {
      try {
        await entry.close(entry.value as never);
      } catch (error) {
        this.logger.error({ err: error }, `closing resource "${name}" failed: ${describeError(error)}`);
      }
    }
    this.entries.clear();
  }
}
