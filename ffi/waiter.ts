/**
 * Waiting for the poller without blocking the JS thread.
 *
 * A {@link Waiter} makes one blocking call on another thread through the
 * off-thread runner (ffi/offthread.ts: a `nonblocking` FFI call in Deno, a
 * runner Worker named `aioloop-waiter` in Bun) and resolves a promise
 * when it returns; the JS thread then takes the events with `select(0)`.
 * Meanwhile the host runtime's own event loop (timers, fetch, servers,
 * promises) keeps running. The call is:
 *
 * - `poll(2)` on the selector's {@link WaitSet} targets plus a private
 *   eventfd/pipe, the interrupt descriptor: `interrupt()` makes it
 *   readable so a poll in flight returns at once; only the waiter drains
 *   it, on the JS thread after the poll has returned, so an interrupt can
 *   never be lost to a reader on another thread;
 * - or the selector's own call, when its wait set has `native` (a kqueue
 *   that cannot itself be polled waits in `kevent`): `interrupt()` then
 *   calls `native.interrupt()`.
 *
 * Memory handed to the kernel comes from malloc and is freed only when no
 * call is in flight.
 *
 * @module
 */
import { RuntimeError } from "./errors.ts";
import type { NativeWait, WaitSet, Waker } from "./selector.ts";
import { allocate, libcPath } from "./libc.ts";
import type { NativeMemory } from "./runtime.ts";
import { runtime } from "./runtime.ts";
import {
  createRunner,
  type NativeCall,
  nonblockingCall,
  type OffThreadRunner,
} from "./offthread.ts";
import {
  POLLFD_LAYOUT,
  POLLIN,
  toPollEvents,
  writePollfd,
} from "./sys/posix/poll.ts";
import { createWaker } from "./sys/platform.ts";

/** int poll(struct pollfd *fds, nfds_t nfds, int timeout); */
const POLL: NativeCall = {
  library: libcPath,
  symbol: "poll",
  parameters: ["pointer", "u64", "i32"],
  result: "i32",
};

/** pid_t getpid(void);  (Deno: a no-op hop through its op loop) */
const GETPID: NativeCall = {
  library: libcPath,
  symbol: "getpid",
  parameters: [],
  result: "i32",
};

/** Waits for readiness on another thread. */
export interface Waiter {
  /**
   * Resolves when `set` has something ready, `timeoutMs` has passed
   * (null: no limit), or {@link interrupt} was called.
   */
  wait(set: WaitSet, timeoutMs: number | null): Promise<void>;
  /**
   * Makes an in-flight poll return promptly and cancels a queued one. Safe
   * at any time.
   */
  interrupt(): void;
  /** Resolves when no poll is in flight. */
  settled(): Promise<void>;
  /**
   * Lets the host runtime run its timers and I/O once, then resolves (a
   * busy loop's periodic yield).
   */
  yieldToHost(): Promise<void>;
  /** Releases the thread and descriptors; no poll may be in flight. */
  close(): void;
}

/** The pollfd array a waiter hands to the kernel: interrupt fd first. */
class PollSet {
  private memory: NativeMemory | undefined;
  private version = -1;
  /** Number of pollfd entries. */
  count = 0;

  constructor(private readonly interruptFd: number) {}

  /** Fills the native array for `set` (only when it changed). */
  load(set: WaitSet): NativeMemory {
    if (this.memory && set.version === this.version) return this.memory;
    const count = set.targets.length + 1;
    if (!this.memory || this.memory.bytes.length < count * POLLFD_LAYOUT.size) {
      this.memory?.free();
      this.memory = allocate(Math.max(8, count * 2) * POLLFD_LAYOUT.size);
    }
    const view = new DataView(this.memory.bytes.buffer);
    writePollfd(view, 0, this.interruptFd, POLLIN);
    set.targets.forEach(([fd, events], i) =>
      writePollfd(view, i + 1, fd, toPollEvents(events))
    );
    this.count = count;
    this.version = set.version;
    return this.memory;
  }

  free(): void {
    this.memory?.free();
    this.memory = undefined;
  }
}

function timeoutArg(timeoutMs: number | null): number {
  if (timeoutMs === null) return -1;
  return timeoutMs <= 0 ? 0 : Math.min(Math.ceil(timeoutMs), 0x7fffffff);
}

/**
 * The waiter: the pollfd array or the selector's native call, the
 * interrupt, and one call in flight at a time. A wait asked for while a
 * call is still in flight starts when that one returns, unless
 * `interrupt()` came in between (the loop no longer wants it).
 */
class RunnerWaiter implements Waiter {
  private readonly runner: OffThreadRunner = createRunner({
    name: "aioloop-waiter",
    threads: 1,
  });
  /** Made on the first poll (a native wait has its own interrupt). */
  private interruptWaker: Waker | null = null;
  private pollSet: PollSet | null = null;
  private inflight: Promise<void> | null = null;
  private inflightVersion = -1;
  private inflightNative: NativeWait | undefined;
  private inflightDeadline = 0;
  private interrupted = false;
  private requests = 0;
  private abandoned = 0;

  wait(set: WaitSet, timeoutMs: number | null): Promise<void> {
    const timeout = timeoutArg(timeoutMs);
    const deadline = timeout < 0 ? Infinity : performance.now() + timeout;
    if (this.inflight !== null) {
      // The call in flight (left by a wake that did not come from it)
      // watches the same set and returns no later than needed: keep it.
      // Nothing is lost: whatever the JS thread consumed meanwhile is
      // handled, and anything new still wakes that call.
      if (
        !this.interrupted && set.version === this.inflightVersion &&
        set.native === this.inflightNative &&
        this.inflightDeadline <= deadline + 1
      ) {
        return this.inflight;
      }
      this.interrupt();
    }
    const request = ++this.requests;
    if (this.inflight === null) return this.start(set, timeout, deadline);
    return this.inflight.then(() =>
      request > this.abandoned && this.inflight === null
        ? this.start(set, timeout, deadline)
        : undefined
    );
  }

  private start(
    set: WaitSet,
    timeout: number,
    deadline: number,
  ): Promise<void> {
    this.interrupted = false;
    this.inflightVersion = set.version;
    this.inflightNative = set.native;
    this.inflightDeadline = deadline;
    const native = set.native;
    const call = native === undefined
      ? this.poll(set, timeout)
      : this.runner.call(native, native.args(timeout < 0 ? null : timeout))
        .then((result) => {
          native.finished?.(result);
          return result;
        }, (error) => {
          native.finished?.(-1);
          throw error;
        });
    this.inflight = call.then(this.finished, this.failed);
    return this.inflight;
  }

  /** poll(2) on the set's targets and the interrupt descriptor. */
  private poll(set: WaitSet, timeout: number): Promise<number> {
    const waker = this.interruptWaker ??= createWaker();
    const pollSet = this.pollSet ??= new PollSet(waker.fd);
    const memory = pollSet.load(set);
    return this.runner.call(POLL, [memory.address, pollSet.count, timeout]);
  }

  /** The call returned: drain what interrupted it; the next may start. */
  private readonly finished = (): void => {
    this.inflight = null;
    if (this.interrupted && this.inflightNative === undefined) {
      this.interruptWaker?.drain();
    }
  };

  private readonly failed = (error: unknown): never => {
    this.finished();
    throw error;
  };

  interrupt(): void {
    this.abandoned = this.requests;
    if (this.inflight !== null && !this.interrupted) {
      this.interrupted = true;
      if (this.inflightNative !== undefined) this.inflightNative.interrupt();
      else this.interruptWaker?.notify();
    }
  }

  settled(): Promise<void> {
    return this.inflight?.catch(() => {}) ?? Promise.resolve();
  }

  /**
   * Bun: a macrotask. Deno: a macrotask (setImmediate) does not give the
   * host's I/O a turn (a local fetch took ~470 ms under a busy loop), but
   * the completion of a nonblocking FFI call goes through Deno's op
   * polling and does (~9 ms). It bypasses the runner, whose one thread a
   * kept poll may hold.
   */
  yieldToHost(): Promise<void> {
    if (runtime === "deno") {
      return nonblockingCall(GETPID, []) as Promise<unknown> as Promise<void>;
    }
    return new Promise((resolve) => setImmediate(resolve));
  }

  close(): void {
    if (this.inflight) {
      throw new RuntimeError("cannot close a waiter while it waits");
    }
    this.runner.close();
    this.pollSet?.free();
    this.pollSet = null;
    this.interruptWaker?.close();
    this.interruptWaker = null;
  }
}

/** The waiter for this runtime (both go through the off-thread runner). */
export function createWaiter(): Waiter {
  return new RunnerWaiter();
}
