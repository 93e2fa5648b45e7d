/**
 * The selector interface (CPython's `selectors.py`, minus the OS classes).
 *
 * A selector watches file descriptors for readiness, level-triggered. The
 * OS-specific classes live in `ffi/sys/` and implement {@link Selector};
 * the loop above (`src/selector_events.ts`) knows only this interface.
 *
 * @module
 */
import type { NativeType } from "./runtime.ts";
import { describeValue, INT32_MAX } from "./validate.ts";

/** The descriptor is readable. */
export const EVENT_READ = 1;
/** The descriptor is writable. */
export const EVENT_WRITE = 2;
/**
 * The descriptor was closed while registered (poll's POLLNVAL): the
 * selector reports it once; the loop drops the registration.
 */
export const EVENT_INVALID = 4;

/** A file descriptor, or an object that has one. */
export type FileLike = number | { fileno(): number };

/** A registration: the descriptor, its events mask and attached data. */
export interface SelectorKey<T = unknown> {
  /** The object that was registered. */
  readonly fileobj: FileLike;
  /** Its file descriptor. */
  readonly fd: number;
  /** The watched events (EVENT_READ | EVENT_WRITE). */
  readonly events: number;
  /** Data attached by the caller. */
  readonly data: T;
}

/** One ready registration and the events that are ready on it. */
export type ReadyEvent<T = unknown> = readonly [SelectorKey<T>, number];

/**
 * What another thread may block on until the selector has something ready,
 * without the JS thread's `select(0)` losing events: pairs of fd and events
 * for `poll(2)` (the epoll fd; every watched fd for the poll selector), or a
 * selector's own blocking call in `native`. `version` changes whenever the
 * list does.
 */
export interface WaitSet {
  /** Increases whenever `targets` changes. */
  readonly version: number;
  /** Descriptors and EVENT_READ/EVENT_WRITE masks to poll. */
  readonly targets: ReadonlyArray<readonly [number, number]>;
  /**
   * When set, the waiter thread makes this call instead of `poll(2)` on
   * `targets` (a kqueue that cannot itself be polled, as libkqueue's).
   */
  readonly native?: NativeWait;
}

/**
 * A blocking C call that waits for a selector's readiness on another thread
 * (for kqueue: `kevent(kq, NULL, 0, scratch, n, &timeout)`). Level-triggered
 * events it takes are reported again to the JS thread's `select(0)`.
 */
export interface NativeWait {
  /** The shared library that has `symbol` (the waiter thread opens it). */
  readonly library: string;
  /** The C function to call. */
  readonly symbol: string;
  /** Its C parameter types. */
  readonly parameters: readonly NativeType[];
  /** Its C result type. */
  readonly result: NativeType;
  /**
   * The arguments for one wait of at most `timeoutMs` (null: no limit),
   * pointers as addresses of native memory that stays valid until the call
   * returns. Called on the loop's thread before each wait.
   */
  args(timeoutMs: number | null): readonly number[];
  /** Makes a wait in flight return promptly. Safe from any thread. */
  interrupt(): void;
  /**
   * Called on the loop's thread once a wait has returned (with the call's
   * result, or -1 when it failed), before another starts: the memory the
   * call wrote is the selector's to read, and to free, from then on.
   */
  finished?(result: number): void;
}

/** An OS readiness poller (epoll, kqueue, poll, ...). */
export interface Selector<T = unknown> {
  /** The backend's name: "epoll", "poll", ... */
  readonly name: string;
  /** Starts watching `fileobj` for `events`. Throws if already registered. */
  register(fileobj: FileLike, events: number, data: T): SelectorKey<T>;
  /** Stops watching `fileobj`; returns its key. Throws if not registered. */
  unregister(fileobj: FileLike): SelectorKey<T>;
  /** Changes the events or data of a registration. */
  modify(fileobj: FileLike, events: number, data: T): SelectorKey<T>;
  /**
   * Waits up to `timeoutMs` (0: poll and return; null: no limit) and returns
   * the ready registrations. Blocks the calling thread while it waits.
   */
  select(timeoutMs: number | null): ReadyEvent<T>[];
  /** The key of a registered descriptor, or undefined. */
  get(fileobj: FileLike): SelectorKey<T> | undefined;
  /** All registrations, by fd. */
  getMap(): ReadonlyMap<number, SelectorKey<T>>;
  /** What another thread polls to learn that `select(0)` has work. */
  waitSet(): WaitSet;
  /** Releases the OS resources. Idempotent. */
  close(): void;
}

/** A way to wake the loop's poller from any thread. */
export interface Waker {
  /** The descriptor the selector watches for reading. */
  readonly fd: number;
  /**
   * The descriptor other threads write to make `fd` readable: `fd` itself
   * for an eventfd, the write end for a self-pipe.
   */
  readonly wakeFd: number;
  /** Makes `fd` readable. Safe to call often; never throws. */
  notify(): void;
  /** Consumes pending notifications. */
  drain(): void;
  /** Closes the descriptors. Idempotent. */
  close(): void;
}

/** A constructor of a selector backend. */
export interface SelectorClass {
  /** Creates a selector. */
  new (): Selector;
  /** The backend's name. */
  readonly backend: string;
}

/**
 * The fd of a file-like object (CPython's `_fileobj_to_fd`): an integer, or
 * an object with `fileno()`. Throws TypeError for other objects and
 * RangeError for descriptors that are not integers in 0..2^31-1 (Bun's FFI
 * would wrap `2 ** 32 + 5` to fd 5).
 */
export function fileobjToFd(fileobj: FileLike): number {
  let fd: unknown = fileobj;
  if (typeof fileobj !== "number") {
    const fileno = fileobj !== null && typeof fileobj === "object"
      ? (fileobj as { fileno?: unknown }).fileno
      : undefined;
    if (typeof fileno !== "function") {
      throw new TypeError(`Invalid file object: ${describeValue(fileobj)}`);
    }
    fd = fileno.call(fileobj);
  }
  if (
    typeof fd !== "number" || !Number.isInteger(fd) || fd < 0 || fd > INT32_MAX
  ) {
    throw new RangeError(`Invalid file descriptor: ${describeValue(fd)}`);
  }
  return fd;
}
