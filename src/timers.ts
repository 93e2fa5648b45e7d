/**
 * The loop's timer heap: a binary min-heap of TimerHandles ordered by due
 * time, ties broken by scheduling order (so equal times run FIFO).
 *
 * @module
 */
import type { TimerHandle } from "./events.ts";

function before(a: TimerHandle, b: TimerHandle): boolean {
  return a._when < b._when || (a._when === b._when && a._seq < b._seq);
}

/** A min-heap of timers by (when, sequence). */
export class TimerHeap {
  private items: TimerHandle[] = [];
  private seq = 0;

  /** Number of timers in the heap, cancelled ones included. */
  get size(): number {
    return this.items.length;
  }

  /** The earliest timer, or undefined. */
  peek(): TimerHandle | undefined {
    return this.items[0];
  }

  /** Adds a timer. */
  push(timer: TimerHandle): void {
    timer._seq = this.seq++;
    const items = this.items;
    let i = items.length;
    items.push(timer);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(timer, items[parent])) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = timer;
  }

  /** Removes and returns the earliest timer. */
  pop(): TimerHandle | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) this.siftDown(0, last);
    return top;
  }

  private siftDown(start: number, timer: TimerHandle): void {
    const items = this.items;
    const n = items.length;
    let i = start;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(items[child + 1], items[child])) child++;
      if (!before(items[child], timer)) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = timer;
  }

  /** Drops every timer for which `drop` returns true, in O(n). */
  removeWhere(drop: (timer: TimerHandle) => boolean): void {
    const kept = this.items.filter((t) => !drop(t));
    this.items = kept;
    for (let i = (kept.length >> 1) - 1; i >= 0; i--) this.siftDown(i, kept[i]);
  }

  /** Removes every timer and returns them. */
  clear(): TimerHandle[] {
    const all = this.items;
    this.items = [];
    return all;
  }
}
