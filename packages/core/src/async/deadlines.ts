import { MAX_TIMER_MS } from '../destinations/validate.js';

/** One pending timeout of a {@link Deadlines}. */
export interface Deadline {
  /** Cancels the timeout; calling it after the timeout fired, or twice, does nothing. */
  clear(): void;
}

/**
 * The longest a timer of the engine waits before it reads the clock again: a system clock set
 * forward (a VM resumed, NTP stepping) brings delays, backoffs and timeouts on within this,
 * rather than at the end of the wait the timer was armed for.
 */
export const CLOCK_CHECK_MS = 1000;

class Entry implements Deadline {
  prev: Entry | undefined = undefined;
  next: Entry | undefined = undefined;
  linked = true;

  constructor(
    readonly list: Deadlines,
    readonly at: number,
    readonly fire: () => void,
  ) {}

  clear(): void {
    if (this.linked) this.list.unlink(this);
  }
}

/**
 * Many timeouts of one length (every attempt's, every destination call's): since they all last
 * as long, they end in the order they began, so they wait in a list under one Node timer, armed
 * for the first. Starting and clearing one costs a small object and two links, where
 * `setTimeout` and `clearTimeout` cost a timer each. The timer holds the process open only while
 * a timeout is pending; the clock is `Date.now` (fake timers move it too).
 */
export class Deadlines {
  private head: Entry | undefined = undefined;
  private tail: Entry | undefined = undefined;
  private timer: NodeJS.Timeout | undefined = undefined;
  /** True while due entries fire: the timer is armed after, for the first one left. */
  private expiring = false;
  private readonly ms: number;

  constructor(ms: number) {
    this.ms = Math.min(Math.max(ms, 1), MAX_TIMER_MS);
  }

  /** Calls `fire` once `ms` have passed, unless the returned deadline is cleared first. */
  add(fire: () => void): Deadline {
    const entry = new Entry(this, Date.now() + this.ms, fire);
    const tail = this.tail;
    if (tail) {
      tail.next = entry;
      entry.prev = tail;
    } else {
      this.head = entry;
    }
    this.tail = entry;
    if (this.timer !== undefined) {
      if (entry === this.head) this.timer.ref();
    } else if (!this.expiring) {
      this.timer = setTimeout(this.expire, Math.min(this.ms, CLOCK_CHECK_MS));
    }
    return entry;
  }

  /**
   * Clears the timer left armed for nothing (see `unlink`) when no timeout is pending: what closes
   * the owner calls it, so that no timer of a closed engine is left to fire (a test counting timers).
   */
  idle(): void {
    if (this.head !== undefined || this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Takes an entry out of the list (see {@link Deadline.clear}). */
  unlink(entry: Entry): void {
    entry.linked = false;
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = undefined;
    entry.next = undefined;
    // Nothing pending: the armed timer may fire for nothing, but must not hold the process open.
    if (this.head === undefined) this.timer?.unref();
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    this.expiring = true;
    const now = Date.now();
    try {
      for (let entry = this.head; entry !== undefined && entry.at <= now; entry = this.head) {
        this.unlink(entry);
        entry.fire();
      }
    } finally {
      this.expiring = false;
      const head = this.head;
      if (head !== undefined) {
        this.timer = setTimeout(this.expire, Math.min(CLOCK_CHECK_MS, Math.max(1, head.at - Date.now())));
      }
    }
  };
}
