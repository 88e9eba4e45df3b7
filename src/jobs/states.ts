// The states of a run and the only moves between them. The store refuses any other move,
// so a bug elsewhere shows up as an error instead of a record that lies.

export const runStates = [
  'queued',
  'delayed',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'interrupted',
] as const;

export type RunState = (typeof runStates)[number];

const transitions: Record<RunState, readonly RunState[]> = {
  // taken by a worker, or cancelled before it ran
  queued: ['running', 'cancelled'],
  // its runAt came, or cancelled while waiting
  delayed: ['queued', 'cancelled'],
  // an outcome; or back to waiting for a retry (queued when the backoff is 0)
  running: ['succeeded', 'failed', 'timed_out', 'cancelled', 'interrupted', 'queued', 'delayed'],
  succeeded: [],
  // a manual retry
  failed: ['queued'],
  timed_out: ['queued'],
  cancelled: ['queued'],
  // retried at the next start when attempts remain, or by hand
  interrupted: ['queued', 'delayed'],
};

export function canTransition(from: RunState, to: RunState): boolean {
  return transitions[from].includes(to);
}

/** States a run can still leave without someone asking for a retry. */
export const activeStates: readonly RunState[] = ['queued', 'delayed', 'running'];

/** States in which a run is over; retention may delete these. */
export const finishedStates: readonly RunState[] = ['succeeded', 'failed', 'timed_out', 'cancelled', 'interrupted'];

export function isRunState(value: unknown): value is RunState {
  return typeof value === 'string' && (runStates as readonly string[]).includes(value);
}
