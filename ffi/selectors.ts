/**
 * The OS selectors and the choice among them (mio's `sys/`, CPython's
 * `DefaultSelector`). The loop asks for a backend by name or takes the
 * default; only this file knows which OS has which.
 *
 * @module
 */
import type { SelectorClass, Waker } from "./selector.ts";
import { epollAvailable, EpollSelector } from "./sys/linux/epoll.ts";
import { pollAvailable, PollSelector } from "./sys/posix/poll.ts";
import { createWaker, signalFd } from "./sys/platform.ts";
import { createWaiter, type Waiter } from "./waiter.ts";

export { EpollSelector, PollSelector };

/** The selector backends available here, best first. */
export const availableSelectors: Readonly<Record<string, SelectorClass>> =
  Object.fromEntries(
    ([
      [epollAvailable, EpollSelector],
      [pollAvailable, PollSelector],
    ] as [boolean, SelectorClass][])
      .filter(([ok]) => ok)
      .map(([, cls]) => [cls.backend, cls]),
  );

/** The best selector for this OS (epoll on Linux, else poll). */
export const DefaultSelector: SelectorClass =
  Object.values(availableSelectors)[0];

/** The selector class for a backend name; RangeError when not available. */
export function selectorClass(name: string): SelectorClass {
  const cls = availableSelectors[name];
  if (!cls) {
    throw new RangeError(
      `selector backend '${name}' is not available here (have: ${
        Object.keys(availableSelectors).join(", ")
      })`,
    );
  }
  return cls;
}

/** The OS services a selector loop needs besides its selector. */
export interface LoopPlatform {
  /** A waker for `callSoonThreadsafe`. */
  createWaker(): Waker;
  /** A waiter that polls off the JS thread. */
  createWaiter(): Waiter;
  /** Makes a waker descriptor readable, from any thread. */
  signalFd(fd: number): void;
}

/** The services of this OS. */
export const loopPlatform: LoopPlatform = {
  createWaker,
  createWaiter,
  signalFd,
};

export type { Waiter };
