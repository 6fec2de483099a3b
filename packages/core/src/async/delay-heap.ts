import { CLOCK_CHECK_MS } from './deadlines.js';

/**
 * Delayed task ids under one Node timer, armed for the earliest: a binary min-heap on (due time,
 * order of arrival) kept in parallel arrays, so that a waiting task costs three array slots where
 * `setTimeout` costs a timer, a closure, its context and a Map entry (about 250 bytes held for as
 * long as the task waits, and a timer list insert). `cancel` searches the heap: a stop is rare,
 * an accept is not. The clock is `Date.now` (fake timers move it too).
 */
export class DelayHeap {
  private at: number[] = [];
  private order: number[] = [];
  private ids: string[] = [];
  private count = 0;
  private timer: NodeJS.Timeout | undefined = undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  /** `due` gets each id whose delay has passed, earliest first. */
  constructor(private readonly due: (taskId: string) => void) {}

  /** Ids waiting. */
  get size(): number {
    return this.ids.length;
  }

  /** When the earliest id is due (epoch ms), `undefined` when none waits. */
  get nextAt(): number | undefined {
    return this.ids.length === 0 ? undefined : this.at[0];
  }

  add(taskId: string, delayMs: number): void {
    const at = Date.now() + delayMs;
    this.up(this.ids.length, at, this.count++, taskId);
    if (at < this.timerAt) this.arm(at);
  }

  /** Takes an id out; false when it was not waiting. */
  cancel(taskId: string): boolean {
    const i = this.ids.indexOf(taskId);
    if (i < 0) return false;
    this.removeAt(i);
    if (this.ids.length === 0) this.clear();
    return true;
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.at = [];
    this.order = [];
    this.ids = [];
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    // At most CLOCK_CHECK_MS: a clock set forward brings the due tasks on (see CLOCK_CHECK_MS).
    this.timer = setTimeout(this.fire, Math.min(CLOCK_CHECK_MS, Math.max(1, at - Date.now())));
  }

  /** True when (at, order) comes before entry `j`. */
  private before(at: number, order: number, j: number): boolean {
    const other = this.at[j] as number;
    return at < other || (at === other && order < (this.order[j] as number));
  }

  private set(i: number, at: number, order: number, id: string): void {
    this.at[i] = at;
    this.order[i] = order;
    this.ids[i] = id;
  }

  /** Puts (at, order, id) at the hole `i` or above it. */
  private up(i: number, at: number, order: number, id: string): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(at, order, parent)) break;
      this.set(i, this.at[parent] as number, this.order[parent] as number, this.ids[parent] as string);
      i = parent;
    }
    this.set(i, at, order, id);
  }

  /** Puts (at, order, id) at the hole `i` or below it, within the first `size` slots. */
  private down(i: number, size: number, at: number, order: number, id: string): void {
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      const right = child + 1;
      if (right < size && this.before(this.at[right] as number, this.order[right] as number, child)) child = right;
      if (this.before(at, order, child)) break;
      this.set(i, this.at[child] as number, this.order[child] as number, this.ids[child] as string);
      i = child;
    }
    this.set(i, at, order, id);
  }

  private removeAt(i: number): void {
    const last = this.ids.length - 1;
    const at = this.at[last] as number;
    const order = this.order[last] as number;
    const id = this.ids[last] as string;
    this.at.length = last;
    this.order.length = last;
    this.ids.length = last;
    if (i === last) return;
    if (i > 0 && this.before(at, order, (i - 1) >> 1)) this.up(i, at, order, id);
    else this.down(i, last, at, order, id);
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    while (this.ids.length > 0 && (this.at[0] as number) <= now) {
      const id = this.ids[0] as string;
      this.removeAt(0);
      this.due(id);
    }
    if (this.ids.length > 0 && (this.at[0] as number) < this.timerAt) this.arm(this.at[0] as number);
  };
}
