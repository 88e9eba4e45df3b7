import { Agent, request } from 'node:http';

export interface HttpResult {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

export function httpGet(url: string, options: { agent?: Agent; headers?: Record<string, string>; method?: string; body?: string } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    // A fresh connection unless the caller brings an agent: a reused idle keep-alive
    // connection may be closed by the server at the moment a request goes out.
    const req = request(url, { agent: options.agent ?? false, headers: options.headers, method: options.method ?? 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('request timed out')));
    req.end(options.body);
  });
}

export interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
  pids: Set<string>;
}

/**
 * Keep-alive load from `connections` loops until `stop()`; counts successes and failures.
 * Bounded: it also ends by itself after `maxMs`.
 */
export function keepAliveLoad(url: string, connections: number, maxMs = 60_000): { stop: () => Promise<LoadResult> } {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const result: LoadResult = { ok: 0, failed: 0, errors: [], pids: new Set() };
  let running = true;
  const deadline = Date.now() + maxMs;
  const loops = Array.from({ length: connections }, async () => {
    while (running && Date.now() < deadline) {
      try {
        const res = await httpGet(url, { agent });
        if (res.status === 200) {
          result.ok += 1;
          result.pids.add(res.body.trim().split(' ').pop() ?? '');
        } else {
          result.failed += 1;
          result.errors.push(`status ${res.status}: ${res.body.slice(0, 200)}`);
        }
      } catch (error) {
        result.failed += 1;
        result.errors.push(String(error));
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
  };
}
