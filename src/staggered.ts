/**
 * Staggered races (CPython's `staggered.py`): the heart of Happy Eyeballs
 * (RFC 8305) in createConnection().
 *
 * @module
 */
import type { AbstractEventLoop, TimerHandle } from "./events.ts";
import type { Future } from "./futures.ts";

/** What {@link staggeredRace} ends with. */
export interface RaceResult<T> {
  /** The first attempt that succeeded, or null. */
  winner: T | null;
  /** The errors of the attempts that failed, in their start order. */
  errors: unknown[];
}

/**
 * Starts `attempts` one after another, each `delay` ms after the previous
 * one started, or at once when it failed; the first success wins. The
 * others are cancelled, and a success that comes after the winner (or
 * after the caller was cancelled) goes to `discard` (a socket: closed).
 *
 * It waits on loop Futures only, so cancelling the caller's task cancels
 * the race at once.
 */
export async function staggeredRace<T>(
  loop: AbstractEventLoop,
  attempts: (() => Promise<T>)[],
  delay: number,
  discard: (value: T) => void,
): Promise<RaceResult<T>> {
  const errors: unknown[] = new Array(attempts.length).fill(null);
  const running = new Map<number, Future<T>>();
  let winner: T | null = null;
  let won = false;
  let next = 0;
  let wake: (() => void) | null = null;
  const poke = () => {
    const fn = wake;
    wake = null;
    fn?.();
  };
  const start = () => {
    const index = next++;
    const task = loop.createTask(attempts[index]) as unknown as Future<T>;
    running.set(index, task);
    task.addDoneCallback(() => {
      running.delete(index);
      if (task.cancelled()) return;
      const error = task.exception();
      if (error) errors[index] = error;
      else if (!won) {
        won = true;
        winner = task.result();
      } else discard(task.result());
      poke();
    });
  };
  let timer: TimerHandle | null = null;
  try {
    while (!won && (next < attempts.length || running.size > 0)) {
      if (next < attempts.length) start();
      // A loop Future, so that cancelling the caller's task lands here.
      const woken = loop.createFuture<void>();
      wake = () => {
        if (!woken.done()) woken.setResult(undefined);
      };
      timer = next < attempts.length ? loop.callLater(delay, poke) : null;
      await woken;
      timer?.cancel();
    }
  } catch (error) {
    // Cancelled: a winner that came meanwhile is nobody's.
    if (won) discard(winner as T);
    throw error;
  } finally {
    timer?.cancel();
    for (const task of running.values()) task.cancel();
  }
  return { winner, errors: errors.filter((e) => e !== null) };
}
