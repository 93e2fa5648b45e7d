/**
 * The OS selectors and the choice among them (mio's `sys/`, CPython's
 * `DefaultSelector`). The loop asks for a backend by name or takes the
 * default; only this file knows which OS has which.
 *
 * @module
 */
import type { SelectorClass, Waker } from "./selector.ts";
import { epollAvailable, EpollSelector } from "./sys/linux/epoll.ts";
import { kqueueAvailable, KqueueSelector } from "./sys/bsd/kqueue.ts";
import { LIBKQUEUE_ENV } from "./sys/bsd/kevent.ts";
import { pollAvailable, PollSelector } from "./sys/posix/poll.ts";
import { createWaker, signalFd } from "./sys/platform.ts";
import { createWaiter, type Waiter } from "./waiter.ts";
import { platform } from "./runtime.ts";

export { EpollSelector, KqueueSelector, PollSelector };

/**
 * The selector backends available here, best first: epoll (Linux), kqueue
 * (macOS and the BSDs; on Linux only with libkqueue, see
 * `AIOLOOP_LIBKQUEUE`, after epoll), then poll.
 */
export const availableSelectors: Readonly<Record<string, SelectorClass>> =
  Object.fromEntries(
    ([
      [epollAvailable, EpollSelector],
      [kqueueAvailable, KqueueSelector],
      [pollAvailable, PollSelector],
    ] as [boolean, SelectorClass][])
      .filter(([ok]) => ok)
      .map(([, cls]) => [cls.backend, cls]),
  );

/**
 * The best selector for this OS: epoll on Linux, kqueue on macOS and the
 * BSDs, else poll.
 */
export const DefaultSelector: SelectorClass =
  Object.values(availableSelectors)[0];

/** The selector class for a backend name; RangeError when not available. */
export function selectorClass(name: string): SelectorClass {
  const cls = availableSelectors[name];
  if (!cls) {
    const hint = name === "kqueue" && platform === "linux"
      ? `; on Linux, set ${LIBKQUEUE_ENV} to a built libkqueue (scripts/build-libkqueue.sh)`
      : "";
    throw new RangeError(
      `selector backend '${name}' is not available here (have: ${
        Object.keys(availableSelectors).join(", ")
      })${hint}`,
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
