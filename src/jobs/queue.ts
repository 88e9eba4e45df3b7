// The dispatcher's in-memory view of waiting runs, rebuilt from the store at start.
// Ready runs sit in one list per task, so a task at its concurrency limit does not hold
// up the others; delayed runs wait in one list ordered by the time they become ready.

export interface WaitingRun {
  id: number;
  task: string;
  /** Higher runs first; equal priorities run in id (creation) order. */
  priority: number;
  runAt: number;
}

/** A list kept sorted so that the next item is always at the end: pop() is O(1). */
class SortedList<T> {
  private readonly items: T[] = [];

  /** `before(a, b)` is true when a must come out before b. */
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  insert(item: T): void {
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.before(this.items[middle]!, item)) high = middle;
      else low = middle + 1;
    }
    this.items.splice(low, 0, item);
  }

  peek(): T | undefined {
    return this.items[this.items.length - 1];
  }

  pop(): T | undefined {
    return this.items.pop();
  }

  remove(match: (item: T) => boolean): T | undefined {
    const index = this.items.findIndex(match);
    return index === -1 ? undefined : this.items.splice(index, 1)[0];
  }
}

const runsFirst = (a: WaitingRun, b: WaitingRun): boolean => a.priority > b.priority || (a.priority === b.priority && a.id < b.id);
const dueFirst = (a: WaitingRun, b: WaitingRun): boolean => a.runAt < b.runAt || (a.runAt === b.runAt && a.id < b.id);

export class RunQueue {
  private readonly ready = new Map<string, SortedList<WaitingRun>>();
  private readonly delayed = new SortedList<WaitingRun>(dueFirst);
  private readyCount = 0;

  get readySize(): number {
    return this.readyCount;
  }

  get delayedSize(): number {
    return this.delayed.size;
  }

  get size(): number {
    return this.readyCount + this.delayed.size;
  }

  addReady(run: WaitingRun): void {
    let list = this.ready.get(run.task);
    if (!list) this.ready.set(run.task, (list = new SortedList(runsFirst)));
    list.insert(run);
    this.readyCount += 1;
  }

  addDelayed(run: WaitingRun): void {
    this.delayed.insert(run);
  }

  /** Takes the best ready run among the tasks `canRun` accepts. */
  take(canRun: (task: string) => boolean): WaitingRun | undefined {
    let best: SortedList<WaitingRun> | undefined;
    for (const [task, list] of this.ready) {
      const head = list.peek();
      if (head && canRun(task) && (!best || runsFirst(head, best.peek()!))) best = list;
    }
    const run = best?.pop();
    if (run) this.readyCount -= 1;
    return run;
  }

  /** Delayed runs whose time has come, oldest first; they leave the delayed list. */
  takeDue(now: number): WaitingRun[] {
    const due: WaitingRun[] = [];
    while ((this.delayed.peek()?.runAt ?? Infinity) <= now) due.push(this.delayed.pop()!);
    return due;
  }

  /** When the next delayed run becomes due, if any. */
  nextDueAt(): number | undefined {
    return this.delayed.peek()?.runAt;
  }

  remove(id: number): WaitingRun | undefined {
    for (const list of this.ready.values()) {
      const run = list.remove((item) => item.id === id);
      if (run) {
        this.readyCount -= 1;
        return run;
      }
    }
    return this.delayed.remove((item) => item.id === id);
  }

  /** Ready runs per task, for stats and scaling. */
  readyByTask(): Map<string, number> {
    return new Map([...this.ready].map(([task, list]) => [task, list.size]));
  }
}
