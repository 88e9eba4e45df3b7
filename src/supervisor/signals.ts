// One table for every signal the master understands: the daemon installs its handlers
// from it and the CLI's help lists it. Handlers only record the action; the
// supervisor's loop acts on recorded actions in a fixed order (see ACTION_ORDER).

export type SignalAction = 'stop-hard' | 'stop' | 'reload' | 'reopen-logs' | 'restart-workers' | 'scale-up' | 'scale-down';

export interface SignalEntry {
  signal: NodeJS.Signals;
  action: SignalAction;
  description: string;
}

export const SIGNALS: readonly SignalEntry[] = [
  { signal: 'SIGTERM', action: 'stop', description: 'graceful stop (a second one: stop at once)' },
  { signal: 'SIGINT', action: 'stop', description: 'graceful stop (a second one: stop at once)' },
  { signal: 'SIGQUIT', action: 'stop', description: 'graceful stop' },
  { signal: 'SIGHUP', action: 'reload', description: 're-read the config, then restart workers one by one' },
  { signal: 'SIGUSR1', action: 'reopen-logs', description: 'reopen log files (logrotate)' },
  { signal: 'SIGUSR2', action: 'restart-workers', description: 'restart every worker gracefully, same config' },
  { signal: 'SIGTTIN', action: 'scale-up', description: 'one more web worker (up to maxWorkers)' },
  { signal: 'SIGTTOU', action: 'scale-down', description: 'one fewer web worker (down to minWorkers)' },
];

/** Recorded actions are carried out in this order, like nginx's master cycle. */
export const ACTION_ORDER: readonly SignalAction[] = ['stop-hard', 'stop', 'reload', 'reopen-logs', 'restart-workers', 'scale-up', 'scale-down'];

/** A second TERM or INT while a graceful stop is under way means: stop at once. */
export const HARD_ON_REPEAT: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
