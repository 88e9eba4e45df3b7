// The application hooks, in the order a worker runs them. Each is awaited with a
// timeout, so a hung hook cannot hold a worker (or a reload) forever.

export const APP_HOOKS = [
  { name: 'setup', timeoutMs: 30_000 },
  { name: 'ready', timeoutMs: 10_000 },
  { name: 'config', timeoutMs: 10_000 },
  { name: 'drain', timeoutMs: 30_000 },
  { name: 'close', timeoutMs: 10_000 },
] as const;

export type HookName = (typeof APP_HOOKS)[number]['name'];

export function hookTimeoutMs(name: HookName): number {
  return APP_HOOKS.find((hook) => hook.name === name)!.timeoutMs;
}
