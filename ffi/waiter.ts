/**
 * Waiting for the poller without blocking the JS thread.
 *
 * A {@link Waiter} runs `poll(2)` on a selector's {@link WaitSet} on another
 * thread and resolves a promise when it returns; the JS thread then takes the
 * events with `select(0)`. Meanwhile the host runtime's own event loop
 * (timers, fetch, servers, promises) keeps running.
 *
 * - Deno: a `nonblocking` FFI call, which runs on Deno's blocking-call pool
 *   and keeps the process alive while it is pending.
 * - Bun: `nonblocking` is ignored, so a waiter Worker blocks in `poll(2)`
 *   and reports through a SharedArrayBuffer and `Atomics.waitAsync`. The
 *   Worker is referenced only while a wait is pending.
 *
 * Every poll also watches a private eventfd/pipe, the interrupt descriptor.
 * `interrupt()` makes it readable so an in-flight poll returns at once; only
 * the waiter drains it, after the poll has returned, so an interrupt can
 * never be lost to a reader on another thread.
 *
 * Memory handed to the kernel comes from malloc and is freed only when no
 * poll is in flight.
 *
 * @module
 */
import type { WaitSet } from "./selector.ts";
import { allocate, libcPath } from "./libc.ts";
import { type NativeMemory, openLibrary, runtime } from "./runtime.ts";
import { POLLFD_LAYOUT, POLLIN, toPollEvents } from "./sys/posix/poll.ts";
import { createWaker } from "./sys/platform.ts";
import type { Waker } from "./selector.ts";

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
    const put = (i: number, fd: number, events: number) => {
      const at = i * POLLFD_LAYOUT.size;
      view.setInt32(at + POLLFD_LAYOUT.fdOffset, fd, true);
      view.setInt16(at + POLLFD_LAYOUT.eventsOffset, events, true);
      view.setInt16(at + POLLFD_LAYOUT.reventsOffset, 0, true);
    };
    put(0, this.interruptFd, POLLIN);
    set.targets.forEach(([fd, events], i) =>
      put(i + 1, fd, toPollEvents(events))
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
 * What both waiters share: the pollfd array, the interrupt descriptor, and
 * one poll in flight at a time. A wait asked for while a poll is still in
 * flight starts when that one returns, unless `interrupt()` came in between
 * (the loop no longer wants it).
 */
abstract class PollingWaiter implements Waiter {
  protected readonly interruptWaker: Waker = createWaker();
  private readonly pollSet = new PollSet(this.interruptWaker.fd);
  private inflight: Promise<void> | null = null;
  private inflightVersion = -1;
  private inflightDeadline = 0;
  private interrupted = false;
  private requests = 0;
  private abandoned = 0;

  /** Runs poll(2) on `count` pollfds at `memory`; drains the interrupt fd. */
  protected abstract poll(
    memory: NativeMemory,
    count: number,
    timeout: number,
  ): Promise<void>;

  wait(set: WaitSet, timeoutMs: number | null): Promise<void> {
    const timeout = timeoutArg(timeoutMs);
    const deadline = timeout < 0 ? Infinity : performance.now() + timeout;
    if (this.inflight !== null) {
      // The poll in flight (left by a wake that did not come from it)
      // watches the same set and returns no later than needed: keep it.
      // Nothing is lost: whatever the JS thread consumed meanwhile is
      // handled, and anything new still wakes that poll.
      if (
        !this.interrupted && set.version === this.inflightVersion &&
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
    const memory = this.pollSet.load(set);
    this.interrupted = false;
    this.inflightVersion = set.version;
    this.inflightDeadline = deadline;
    this.inflight = this.poll(memory, this.pollSet.count, timeout)
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }

  interrupt(): void {
    this.abandoned = this.requests;
    if (this.inflight !== null && !this.interrupted) {
      this.interrupted = true;
      this.interruptWaker.notify();
    }
  }

  settled(): Promise<void> {
    return this.inflight ?? Promise.resolve();
  }

  yieldToHost(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  close(): void {
    if (this.inflight) throw new Error("cannot close a waiter while it polls");
    this.release();
    this.pollSet.free();
    this.interruptWaker.close();
  }

  /** Releases what the subclass holds (its thread, its library). */
  protected abstract release(): void;
}

/** Deno: poll(2) as a nonblocking FFI call. */
class DenoWaiter extends PollingWaiter {
  private readonly lib = openLibrary(libcPath, {
    // int poll(struct pollfd *fds, nfds_t nfds, int timeout);
    poll: {
      parameters: ["pointer", "u64", "i32"],
      result: "i32",
      nonblocking: true,
    },
    // pid_t getpid(void);  (a no-op hop through Deno's op loop)
    getpid: { parameters: [], result: "i32", nonblocking: true },
  });

  protected async poll(
    memory: NativeMemory,
    count: number,
    timeout: number,
  ): Promise<void> {
    await this.lib.symbols.poll(memory.pointer, count, timeout);
    this.interruptWaker.drain();
  }

  /**
   * In Deno, a macrotask (setImmediate) does not give the host's I/O a turn
   * (a local fetch took ~470 ms under a busy loop), but the completion of a
   * nonblocking FFI call goes through Deno's op polling and does (~9 ms).
   */
  override yieldToHost(): Promise<void> {
    return this.lib.symbols.getpid() as Promise<unknown> as Promise<void>;
  }

  protected release(): void {
    this.lib.close();
  }
}

/** Control words shared with the waiter Worker. */
const CTL = {
  /** Main increments to post a poll request. */
  request: 0,
  /** Worker stores the request number it finished. */
  done: 1,
  /** Number of pollfd entries. */
  count: 2,
  /** Timeout in ms (-1: none). */
  timeout: 3,
  /** 1 asks the Worker to exit. */
  exit: 4,
  /** Worker sets 1 when it has exited its loop. */
  exited: 5,
  /** The interrupt descriptor. */
  interruptFd: 6,
  /** Float64 index (after the Int32 words) of the pollfd address. */
  addressF64: 4,
} as const;
const CTL_BYTES = 64;

interface WorkerLike {
  postMessage(message: unknown): void;
  terminate(): void;
  ref?(): void;
  unref?(): void;
  addEventListener(type: string, listener: (e: unknown) => void): void;
}

/** Bun: a Worker blocked in poll(2), reporting through Atomics. */
class WorkerWaiter extends PollingWaiter {
  private readonly shared = new SharedArrayBuffer(CTL_BYTES);
  private readonly ctl = new Int32Array(this.shared);
  private readonly address = new Float64Array(this.shared);
  private worker: WorkerLike | undefined;
  private requestNumber = 0;

  private startWorker(): WorkerLike {
    const url = new URL("./waiter_worker.ts", import.meta.url);
    const WorkerCtor = Reflect.get(globalThis, "Worker") as new (
      url: URL,
      options: unknown,
    ) => WorkerLike;
    const worker = new WorkerCtor(url, {
      type: "module",
      name: "aioloop-waiter",
    });
    worker.unref?.();
    Atomics.store(this.ctl, CTL.interruptFd, this.interruptWaker.fd);
    worker.postMessage(this.shared);
    return worker;
  }

  protected async poll(
    memory: NativeMemory,
    count: number,
    timeout: number,
  ): Promise<void> {
    const worker = this.worker ??= this.startWorker();
    this.address[CTL.addressF64] = memory.address;
    Atomics.store(this.ctl, CTL.count, count);
    Atomics.store(this.ctl, CTL.timeout, timeout);
    const request = ++this.requestNumber;
    Atomics.store(this.ctl, CTL.request, request);
    Atomics.notify(this.ctl, CTL.request);
    // Referenced only while it polls: an idle loop never keeps Bun alive.
    worker.ref?.();
    try {
      for (;;) {
        const done = Atomics.load(this.ctl, CTL.done);
        if (done === request) return;
        const result = Atomics.waitAsync(this.ctl, CTL.done, done);
        if (result.async) await result.value;
      }
    } finally {
      worker.unref?.();
    }
  }

  protected release(): void {
    if (!this.worker) return;
    Atomics.store(this.ctl, CTL.exit, 1);
    // Change the word the Worker waits on, so that a Worker that has not
    // reached Atomics.wait yet does not sleep through the notify.
    Atomics.add(this.ctl, CTL.request, 1);
    Atomics.notify(this.ctl, CTL.request);
    // The Worker leaves its loop within microseconds; it touches none of
    // our descriptors after it sees `exit`.
    Atomics.wait(this.ctl, CTL.exited, 0, 1000);
    this.worker.terminate();
    this.worker = undefined;
  }
}

/** The waiter for this runtime. */
export function createWaiter(): Waiter {
  return runtime === "deno" ? new DenoWaiter() : new WorkerWaiter();
}

export { CTL as WAITER_CTL };
