import type { IncomingMessage } from 'node:http';

export interface Mount<T> {
  host: string | undefined;
  prefix: string;
  target: T;
}

/**
 * Picks the app instance for a request by Host and path prefix (phpDaemon's appResolver):
 * an instance bound to the request's host beats one for any host, then the longest prefix wins.
 */
export class AppResolver<T> {
  private readonly mounts: Mount<T>[];

  constructor(mounts: Mount<T>[]) {
    this.mounts = [...mounts].sort(
      (a, b) => Number(b.host !== undefined) - Number(a.host !== undefined) || b.prefix.length - a.prefix.length,
    );
  }

  /** Every candidate for the request, best first (a later one answers when an earlier has no route). */
  candidates(req: IncomingMessage): T[] {
    const hostname = hostnameOf(req.headers.host);
    const path = req.url ?? '/';
    return this.mounts
      .filter((m) => (m.host === undefined || m.host === hostname) && underPrefix(path, m.prefix))
      .map((m) => m.target);
  }
}

function hostnameOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (header.startsWith('[')) return header.slice(0, header.indexOf(']') + 1).toLowerCase();
  const colon = header.indexOf(':');
  return (colon === -1 ? header : header.slice(0, colon)).toLowerCase();
}

function underPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  if (!path.startsWith(prefix)) return false;
  const next = path.charAt(prefix.length);
  return next === '' || next === '/' || next === '?';
}
