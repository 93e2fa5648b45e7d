/**
 * The selector event loop (CPython's `selector_events.py`): watching file
 * descriptors over a {@link Selector}, and the waker that lets other
 * threads and Workers schedule callbacks.
 *
 * Each registered fd carries `[reader, writer]` handles; a reader and a
 * writer on one fd share one registration whose mask is modified, and the fd
 * is unregistered when the mask becomes empty. Watching is level-triggered.
 *
 * @module
 */
import {
  DefaultSelector,
  loopPlatform,
  type Waiter,
} from "../ffi/selectors.ts";
import { BaseEventLoop } from "./base_events.ts";
import { NO_CONTEXT } from "./context.ts";
import { type Callback, Handle, takeContext, withContext } from "./events.ts";
import {
  RemoteCallback,
  type RemoteCallbackHandle,
  RemoteQueue,
} from "./remote.ts";
import {
  EVENT_INVALID,
  EVENT_READ,
  EVENT_WRITE,
  type FileLike,
  fileobjToFd,
  type ReadyEvent,
  type Selector,
  type Waker,
} from "./selectors.ts";

type Watchers = [reader: Handle | null, writer: Handle | null];

/** The bytes of one RemoteCallback queue, unless told otherwise. */
export const REMOTE_QUEUE_BYTES = 64 * 1024;

/** An event loop over a selector (epoll, poll, ...). */
export class SelectorEventLoop extends BaseEventLoop {
  /** @internal */
  readonly _selector: Selector<Watchers>;
  private readonly _waker: Waker;
  private _waiter: Waiter | null = null;
  /** Descriptors the loop itself registered (the waker). */
  _internalFds = 0;
  private _selfNotified = false;
  /** Shared words: [0] calls pending, [1] the loop waits on word 0. */
  private readonly _pending = new SharedArrayBuffer(8);
  private readonly _pendingWord = new Int32Array(this._pending);
  private readonly _remotes = new Set<RemoteQueue>();
  private _remoteWake: Promise<void> | null = null;

  /** Creates a loop over `selector` (default: the best one for this OS). */
  constructor(selector?: Selector) {
    super();
    this._selector = (selector ?? new DefaultSelector()) as Selector<Watchers>;
    try {
      this._waker = loopPlatform.createWaker();
    } catch (error) {
      this._selector.close();
      throw error;
    }
    this._addReaderInternal(this._waker.fd, () => this._readFromSelf());
    this._internalFds++;
  }

  /** The selector backend's name ("epoll", "poll", ...). */
  get selectorName(): string {
    return this._selector.name;
  }

  // -- I/O hooks of the core ------------------------------------------------

  /** Takes ready events without waiting (skipped when only the idle waker is registered). */
  protected override _pollEvents(): void {
    // Calls from other threads join this iteration's batch.
    const remote = Atomics.load(this._pendingWord, 0) !== 0;
    if (remote) this._takeRemoteCalls();
    // Nothing but our own waker is registered and no one signalled it:
    // skip the syscall.
    if (
      this._selector.getMap().size === this._internalFds &&
      !this._selfNotified && !remote
    ) {
      return;
    }
    this._selfNotified = false;
    this._processEvents(this._selector.select(0));
  }

  /**
   * Waits off the JS thread until the selector has something or
   * `timeoutMs` passed. With remote callbacks out, it also waits on the
   * shared "pending" word: a Worker's `call()` notifies it, which wakes
   * this thread in one hop instead of two (Worker -> poller thread -> JS).
   */
  protected override _waitForEvents(timeoutMs: number | null): Promise<void> {
    const waiter = this._waiter ??= loopPlatform.createWaiter();
    const polled = waiter.wait(this._selector.waitSet(), timeoutMs);
    if (this._remotes.size === 0) return polled;
    if (this._remoteWake === null) {
      const result = Atomics.waitAsync(this._pendingWord, 0, 0);
      if (!result.async) return Promise.resolve();
      // One outstanding waitAsync at a time, reused across waits.
      this._remoteWake = result.value.then(() => {
        this._remoteWake = null;
      });
    }
    // While this flag is set, callers skip the waker write: the notify
    // reaches us. Otherwise the loop is busy and reads word 0 itself.
    Atomics.store(this._pendingWord, 1, 1);
    // A remote wake leaves the poll in flight, for the next wait to keep.
    return Promise.race([polled, this._remoteWake])
      .finally(() => Atomics.store(this._pendingWord, 1, 0));
  }

  /** Ends the waiter's poll in flight; resolves when it has returned. */
  protected override _waitSettled(): Promise<void> {
    if (this._waiter === null) return Promise.resolve();
    this._waiter.interrupt();
    return this._waiter.settled();
  }

  /** Gives the host one turn through the waiter (see Waiter.yieldToHost). */
  protected override _yieldToHost(): Promise<void> {
    this._waiter ??= loopPlatform.createWaiter();
    return this._waiter.yieldToHost();
  }

  /** Queues the reader and writer handles of ready fds. */
  private _processEvents(events: ReadyEvent<Watchers>[]): void {
    for (const [key, mask] of events) {
      const [reader, writer] = key.data;
      if (mask & EVENT_INVALID) {
        this._dropClosedFd(key.fd, reader, writer);
        continue;
      }
      if (mask & EVENT_READ && reader !== null) {
        if (reader._cancelled) this.removeReader(key.fd);
        else this._ready.push(reader);
      }
      if (mask & EVENT_WRITE && writer !== null) {
        if (writer._cancelled) this.removeWriter(key.fd);
        else this._ready.push(writer);
      }
    }
  }

  /** A watched fd was closed behind the loop's back (poll's POLLNVAL). */
  private _dropClosedFd(
    fd: number,
    reader: Handle | null,
    writer: Handle | null,
  ): void {
    this._selector.unregister(fd);
    reader?.cancel();
    writer?.cancel();
    this.callExceptionHandler({
      message: `File descriptor ${fd} was closed while the loop watched it; ` +
        "call removeReader()/removeWriter() before closing it",
      handle: reader ?? writer ?? undefined,
    });
  }

  // -- waker and threads ----------------------------------------------------

  /** The waker's reader: drains it and takes calls from other threads. */
  private _readFromSelf(): void {
    this._waker.drain();
    this._takeRemoteCalls();
  }

  /** Queues the calls other threads made, in their order. */
  private _takeRemoteCalls(): void {
    Atomics.store(this._pendingWord, 0, 0);
    for (const queue of this._remotes) {
      for (const args of queue.drain()) {
        this._callSoon(queue.callback, [...args, withContext(NO_CONTEXT)]);
      }
    }
  }

  /**
   * Schedules `callback(...args)`. Calls that other threads made before
   * this one (RemoteCallback) are queued first, so they keep their order.
   */
  override callSoon(callback: Callback, ...args: unknown[]): Handle {
    if (Atomics.load(this._pendingWord, 0) !== 0 && !this.isClosed()) {
      this._takeRemoteCalls();
    }
    return super.callSoon(callback, ...args);
  }

  /**
   * callSoon that also signals the loop's waker (eventfd or self-pipe), as
   * asyncio does. From another Worker, use {@link createRemoteCallback}.
   */
  override callSoonThreadsafe(callback: Callback, ...args: unknown[]): Handle {
    const handle = this.callSoon(callback, ...args);
    this._selfNotified = true;
    this._waker.notify();
    return handle;
  }

  /**
   * Registers `callback` for calls from other threads. Send the returned
   * handle to a Worker with `postMessage`; there,
   * `connectRemoteCallback(handle).call(...args)` schedules
   * `callback(...args)` on this loop and wakes it. Arguments travel as JSON.
   */
  createRemoteCallback(
    callback: Callback,
    options: { queueBytes?: number } = {},
  ): RemoteCallbackHandle {
    this._checkClosed();
    if (typeof callback !== "function") {
      throw new TypeError(
        `a callable object was expected by createRemoteCallback(), got ${
          String(callback)
        }`,
      );
    }
    const handle: RemoteCallbackHandle = {
      queue: RemoteQueue.allocate(options.queueBytes ?? REMOTE_QUEUE_BYTES),
      pending: this._pending,
      wakeFd: this._waker.fd,
    };
    this._remotes.add(new RemoteQueue(callback, handle));
    return handle;
  }

  // -- fd watching ----------------------------------------------------------

  /** Registers one of the loop's own descriptors. */
  private _addReaderInternal(fd: number, callback: Callback): void {
    this._selector.register(fd, EVENT_READ, [
      new Handle(callback, [], this, NO_CONTEXT),
      null,
    ]);
  }

  /**
   * Calls `callback(...args)` whenever `fd` is readable (level-triggered);
   * replaces an earlier reader. OSError for a descriptor that cannot be watched.
   */
  override addReader(
    fd: FileLike,
    callback: Callback,
    ...args: unknown[]
  ): void {
    this._addWatcher(fd, callback, args, EVENT_READ, "addReader");
  }

  /**
   * Calls `callback(...args)` whenever `fd` is writable (level-triggered);
   * replaces an earlier writer.
   */
  override addWriter(
    fd: FileLike,
    callback: Callback,
    ...args: unknown[]
  ): void {
    this._addWatcher(fd, callback, args, EVENT_WRITE, "addWriter");
  }

  /** Stops watching `fd` for reading; returns whether a reader was removed. */
  override removeReader(fd: FileLike): boolean {
    return this._removeWatcher(fd, EVENT_READ);
  }

  /** Stops watching `fd` for writing; returns whether a writer was removed. */
  override removeWriter(fd: FileLike): boolean {
    return this._removeWatcher(fd, EVENT_WRITE);
  }

  /** Adds a reader or writer, sharing the fd's registration. */
  private _addWatcher(
    fileobj: FileLike,
    callback: Callback,
    args: unknown[],
    event: number,
    method: string,
  ): void {
    this._checkClosed();
    const fd = fileobjToFd(fileobj);
    if (fd === this._waker.fd) {
      throw new Error(`File descriptor ${fd} is used by the loop itself`);
    }
    if (typeof callback !== "function") {
      throw new TypeError(
        `a callable object was expected by ${method}(), got ${
          String(callback)
        }`,
      );
    }
    const handle = new Handle(callback, args, this, takeContext(args));
    const key = this._selector.get(fd);
    if (key === undefined) {
      const watchers: Watchers = event === EVENT_READ
        ? [handle, null]
        : [null, handle];
      this._selector.register(fileobj, event, watchers);
    } else {
      const [reader, writer] = key.data;
      const watchers: Watchers = event === EVENT_READ
        ? [handle, writer]
        : [reader, handle];
      this._selector.modify(fd, key.events | event, watchers);
      (event === EVENT_READ ? reader : writer)?.cancel();
    }
    this._wakeUp();
  }

  /** Removes a reader or writer; unregisters the fd when nothing is left. */
  private _removeWatcher(fileobj: FileLike, event: number): boolean {
    if (this.isClosed()) return false;
    const fd = fileobjToFd(fileobj);
    const key = this._selector.get(fd);
    if (key === undefined) return false;
    const [reader, writer] = key.data;
    const old = event === EVENT_READ ? reader : writer;
    const mask = key.events & ~event;
    if (mask === 0) this._selector.unregister(fd);
    else {
      this._selector.modify(
        fd,
        mask,
        event === EVENT_READ ? [null, writer] : [reader, null],
      );
    }
    this._wakeUp();
    if (old === null) return false;
    old.cancel();
    return true;
  }

  // -- closing --------------------------------------------------------------

  /**
   * Closes the loop: drops callbacks and timers, closes the waker and the
   * selector, ends the waiter thread. Remote callers get RuntimeError.
   */
  override close(): void {
    if (this.isRunning()) return super.close(); // throws
    if (this.isClosed()) return;
    super.close();
    for (const queue of this._remotes) queue.close();
    this._remotes.clear();
    this._waiter?.close();
    this._waiter = null;
    for (const key of this._selector.getMap().values()) {
      key.data[0]?.cancel();
      key.data[1]?.cancel();
    }
    this._selector.close();
    this._waker.close();
    this._internalFds = 0;
  }
}

/**
 * The calling end of a {@link RemoteCallbackHandle}, for use in a Worker:
 * `connectRemoteCallback(handle).call(...args)`.
 */
export function connectRemoteCallback(
  handle: RemoteCallbackHandle,
): RemoteCallback {
  return new RemoteCallback(handle, loopPlatform.signalFd);
}
