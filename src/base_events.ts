/**
 * The scheduling core (CPython's `base_events.py`): the ready queue, the
 * timer heap, and one iteration at a time.
 *
 * An iteration: drop cancelled timers at the heap's head (or rebuild the
 * heap when more than half of over 100 timers are cancelled); wait for I/O
 * if nothing is ready (off the JS thread, see below); take the I/O events;
 * move due timers to the ready queue; run exactly the callbacks that were
 * ready when the running started.
 *
 * Host integration: `runForever()` is async. When nothing is ready the loop
 * awaits its subclass's `_waitForEvents()` (the poller on another thread),
 * so the host runtime's own timers, I/O and promises keep running. After
 * each iteration the loop lets the microtasks it caused run (task code
 * resumed by futures), and when it has been busy for
 * {@link BUSY_YIELD_INTERVAL_MS} without waiting it yields one macrotask to
 * the host. Scheduling from outside an iteration (a host timer, a promise
 * callback) wakes a waiting loop at once.
 *
 * @module
 */
import { type Context, loopFrame, runInFrame } from "./context.ts";
import {
  _getRunningLoop,
  _setRunningLoop,
  AbstractEventLoop,
  type Callback,
  callbackName,
  type Coroutine,
  type ExceptionContext,
  type ExceptionHandler,
  Handle,
  takeContext,
  type TaskFactory,
  type TaskOptions,
  TimerHandle,
} from "./events.ts";
import { FatalError, RuntimeError } from "./exceptions.ts";
import { Future, isFuture } from "./futures.ts";
import { logger } from "./log.ts";
import { ensureFuture, Task } from "./tasks.ts";
import { TimerHeap } from "./timers.ts";
import { readEnv } from "../ffi/runtime.ts";

/** Above this many timers, a majority of cancelled ones triggers a rebuild. */
export const MIN_SCHEDULED_TIMER_HANDLES = 100;
/** The cancelled fraction above which the timer heap is rebuilt. */
export const MIN_CANCELLED_TIMER_HANDLES_FRACTION = 0.5;
/** The longest single wait for I/O: one day, in ms. */
export const MAXIMUM_SELECT_TIMEOUT = 24 * 3600 * 1000;
/**
 * A loop that has work every iteration yields one macrotask to the host
 * runtime after at most this many ms, so host timers and I/O keep going.
 */
export const BUSY_YIELD_INTERVAL_MS = 4;

const now: () => number = performance.now.bind(performance);

function checkCallback(
  callback: unknown,
  method: string,
  debug: boolean,
): void {
  if (
    callback !== null && typeof callback === "object" &&
    typeof (callback as PromiseLike<unknown>).then === "function"
  ) {
    throw new TypeError(`coroutines cannot be used with ${method}()`);
  }
  if (typeof callback !== "function") {
    throw new TypeError(
      `a callable object was expected by ${method}(), got ${String(callback)}`,
    );
  }
  if (debug && callback.constructor?.name === "AsyncFunction") {
    throw new TypeError(`coroutines cannot be used with ${method}()`);
  }
}

function checkTime(value: unknown, message: string): void {
  if (value === null || value === undefined) throw new TypeError(message);
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(
      `${message.split(" ")[0]} must be a number, got ${String(value)}`,
    );
  }
}

/**
 * The scheduling core. Subclasses provide I/O: polling without waiting,
 * waiting off the JS thread, and interrupting that wait.
 */
export abstract class BaseEventLoop extends AbstractEventLoop {
  /** Callbacks slower than this (ms) are logged in debug mode. */
  slowCallbackDuration = 100;
  /** @internal */
  _ready: Handle[] = [];
  private _spare: Handle[] = [];
  /** @internal */
  _scheduled: TimerHeap = new TimerHeap();
  /** @internal */
  _timerCancelledCount = 0;
  /** @internal The clock's resolution, in ms. */
  readonly _clockResolution = 1e-6;
  private _closed = false;
  private _stopping = false;
  private _running = false;
  private _debug: boolean;
  private _exceptionHandler: ExceptionHandler | null = null;
  private _taskFactory: TaskFactory | null = null;
  private _fatalError: FatalError | null = null;
  /** Non-null while the loop waits for I/O: wakes it. */
  private _wake: (() => void) | null = null;

  /** Creates the loop; debug mode starts on when AIOLOOP_DEBUG=1. */
  constructor() {
    super();
    const env = readEnv("AIOLOOP_DEBUG");
    this._debug = env !== undefined && env !== "" && env !== "0";
  }

  // -- I/O hooks ------------------------------------------------------------

  /** Takes ready I/O events (no waiting) and queues their callbacks. */
  protected abstract _pollEvents(): void;
  /** Resolves when I/O may be ready or `timeoutMs` passed (null: none). */
  protected abstract _waitForEvents(timeoutMs: number | null): Promise<void>;
  /**
   * Ends any wait still in flight (a wait the loop stopped listening to may
   * be kept for the next one) and resolves when none is left.
   */
  protected abstract _waitSettled(): Promise<void>;
  /** Gives the host runtime one turn of its own loop (timers, I/O). */
  protected abstract _yieldToHost(): Promise<void>;

  // -- running --------------------------------------------------------------

  /**
   * Runs iterations until stop() is called; resolves when the loop stopped.
   * RuntimeError if closed, already running, or another loop runs here.
   */
  override async runForever(): Promise<void> {
    this._checkClosed();
    this._checkRunning();
    this._running = true;
    this._fatalError = null;
    _setRunningLoop(this);
    try {
      await runInFrame(loopFrame(), () => this._runLoop());
    } finally {
      this._stopping = false;
      this._wake = null;
      await this._waitSettled();
      this._running = false;
      _setRunningLoop(null);
    }
  }

  /** Runs iterations until stop() or a fatal error. */
  private async _runLoop(): Promise<void> {
    // The busy slice is timed with Date.now(): half the cost of
    // performance.now() in Deno (~40 vs ~85 ns), and ms are enough here.
    let sliceStart = Date.now();
    for (;;) {
      const timeout = this._prepareIteration();
      let polled = false;
      if (timeout !== 0) {
        // I/O that is ready already needs no trip through the waiter
        // thread (a syscall here is ~0.3 µs, the trip ~15 µs).
        this._pollEvents();
        polled = true;
        if (this._ready.length === 0) {
          await this._idleWait(timeout);
          sliceStart = Date.now();
          polled = false;
        }
      }
      this._runOnceReady(polled);
      // Task code resumed by this iteration's futures runs now.
      await undefined;
      if (this._fatalError) throw this._takeFatal();
      if (this._stopping) return;
      const busy = Date.now() - sliceStart;
      if (busy >= BUSY_YIELD_INTERVAL_MS || busy < 0) {
        await this._yieldToHost();
        sliceStart = Date.now();
        if (this._fatalError) throw this._takeFatal();
      }
    }
  }

  /** Returns and clears the pending fatal error. */
  private _takeFatal(): FatalError {
    const fatal = this._fatalError!;
    this._fatalError = null;
    return fatal;
  }

  /** Waits for I/O off the JS thread, or until scheduling from outside wakes the loop. */
  private _idleWait(timeout: number | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let waiting = true;
      const finish = () => {
        if (!waiting) return;
        waiting = false;
        this._wake = null;
        resolve();
      };
      // A wake from outside leaves the poll in flight; the next wait may
      // keep it (see _waitForEvents), or end it.
      this._wake = finish;
      this._waitForEvents(timeout).then(finish, (error) => {
        if (!waiting) return;
        waiting = false;
        this._wake = null;
        reject(error);
      });
    });
  }

  /** Wakes the loop if it waits for I/O (scheduling from outside). */
  protected _wakeUp(): void {
    this._wake?.();
  }

  /**
   * Drops cancelled timers and returns how long the coming wait may be:
   * 0 (do not wait), ms until the first timer, or null (no timers).
   */
  private _prepareIteration(): number | null {
    const heap = this._scheduled;
    const count = heap.size;
    if (
      count > MIN_SCHEDULED_TIMER_HANDLES &&
      this._timerCancelledCount / count > MIN_CANCELLED_TIMER_HANDLES_FRACTION
    ) {
      heap.removeWhere((timer) => {
        if (!timer._cancelled) return false;
        timer._scheduled = false;
        return true;
      });
      this._timerCancelledCount = 0;
    } else {
      let head = heap.peek();
      while (head !== undefined && head._cancelled) {
        this._timerCancelledCount--;
        heap.pop();
        head._scheduled = false;
        head = heap.peek();
      }
    }
    if (this._ready.length > 0 || this._stopping) return 0;
    const head = heap.peek();
    if (head === undefined) return null;
    const timeout = head._when - this.time();
    return timeout <= 0 ? 0 : Math.min(timeout, MAXIMUM_SELECT_TIMEOUT);
  }

  /**
   * Polls I/O without waiting (unless `polled`: done just before), moves
   * due timers, runs the ready batch.
   */
  private _runOnceReady(polled: boolean): void {
    if (!polled) this._pollEvents();
    const heap = this._scheduled;
    let head = heap.peek();
    if (head !== undefined) {
      const end = this.time() + this._clockResolution;
      while (head !== undefined && head._when < end) {
        heap.pop();
        head._scheduled = false;
        this._ready.push(head);
        head = heap.peek();
      }
    }
    const batch = this._ready;
    this._ready = this._spare;
    const debug = this._debug;
    let i = 0;
    try {
      for (; i < batch.length; i++) {
        const handle = batch[i];
        if (handle._cancelled) continue;
        if (debug) this._runTimed(handle);
        else handle._run();
      }
    } catch (error) {
      // Only a FatalError leaves _run(): keep the rest of the batch queued.
      this._ready = batch.slice(i + 1).concat(this._ready);
      batch.length = 0;
      this._spare = batch;
      throw error;
    }
    batch.length = 0;
    this._spare = batch;
  }

  /** Runs a handle and, in debug mode, warns when it was slow. */
  private _runTimed(handle: Handle): void {
    const start = now();
    try {
      handle._run();
    } finally {
      const took = now() - start;
      if (took >= this.slowCallbackDuration) {
        logger.warning(`Executing ${handle} took ${took.toFixed(3)} ms`);
      }
    }
  }

  /**
   * Runs until `future` (a Future, promise or async function) is done and
   * returns its result. RuntimeError if the loop stopped first.
   */
  override async runUntilComplete<T>(
    future: PromiseLike<T> | Coroutine<T>,
  ): Promise<T> {
    this._checkClosed();
    this._checkRunning();
    const newTask = !isFuture(future);
    const fut = ensureFuture(future as PromiseLike<T>, this);
    const onDone = (f: Future<T>) => {
      if (!f.cancelled() && f.exception() instanceof FatalError) return;
      this.stop();
    };
    fut.addDoneCallback(onDone);
    try {
      await this.runForever();
    } catch (error) {
      if (newTask && fut.done() && !fut.cancelled()) fut.exception();
      throw error;
    } finally {
      fut.removeDoneCallback(onDone);
    }
    if (!fut.done()) {
      throw new RuntimeError("Event loop stopped before Future completed.");
    }
    return fut.result();
  }

  /** Stops the loop after the current iteration (and wakes it if it waits). */
  override stop(): void {
    this._stopping = true;
    // Unlike asyncio, also wake a waiting loop: stop() from a host callback
    // should not wait for the next event.
    this._wakeUp();
  }

  /** Whether runForever() is in progress. */
  override isRunning(): boolean {
    return this._running;
  }

  /** Whether close() was called. */
  override isClosed(): boolean {
    return this._closed;
  }

  /**
   * Closes the loop: drops queued callbacks and timers. Throws if running;
   * idempotent.
   */
  override close(): void {
    if (this._running) {
      throw new RuntimeError("Cannot close a running event loop");
    }
    if (this._closed) return;
    if (this._debug) logger.warning(`Close ${this}`);
    this._closed = true;
    for (const handle of this._ready) handle.cancel();
    this._ready = [];
    for (const timer of this._scheduled.clear()) timer._scheduled = false;
    this._timerCancelledCount = 0;
  }

  /** JS has no async generator hooks: nothing to close. */
  override shutdownAsyncgens(): Promise<void> {
    return Promise.resolve();
  }

  /** There is no default executor yet: nothing to shut down. */
  override shutdownDefaultExecutor(_timeoutMs?: number | null): Promise<void> {
    return Promise.resolve();
  }

  /** @internal */
  protected _checkClosed(): void {
    if (this._closed) throw new RuntimeError("Event loop is closed");
  }

  /** Throws if this loop or another one runs in this thread. */
  private _checkRunning(): void {
    if (this._running) {
      throw new RuntimeError("This event loop is already running");
    }
    if (_getRunningLoop() !== null) {
      throw new RuntimeError(
        "Cannot run the event loop while another loop is running",
      );
    }
  }

  /** @internal */
  override _fatal(error: FatalError): void {
    if (!this._running) return;
    this._fatalError ??= error;
    this.stop();
  }

  // -- scheduling -----------------------------------------------------------

  /**
   * Schedules `callback(...args)` for the next iteration (FIFO); a trailing
   * `withContext(ctx)` picks the context. Returns a Handle.
   */
  override callSoon(callback: Callback, ...args: unknown[]): Handle {
    this._checkClosed();
    checkCallback(callback, "callSoon", this._debug);
    return this._callSoon(callback, args);
  }

  /** @internal callSoon without the checks. */
  _callSoon(callback: Callback, args: unknown[]): Handle {
    const handle = new Handle(callback, args, this, takeContext(args));
    this._ready.push(handle);
    if (this._wake !== null) this._wake();
    return handle;
  }

  /** Schedules `callback(...args)` after `delay` ms; returns a TimerHandle. */
  override callLater(
    delay: number,
    callback: Callback,
    ...args: unknown[]
  ): TimerHandle {
    checkTime(delay, "delay must not be null");
    return this._callAt(this.time() + delay, callback, args, "callLater");
  }

  /** Schedules `callback(...args)` at loop time `when` (ms); returns a TimerHandle. */
  override callAt(
    when: number,
    callback: Callback,
    ...args: unknown[]
  ): TimerHandle {
    checkTime(when, "when cannot be null");
    return this._callAt(when, callback, args, "callAt");
  }

  /** Pushes a TimerHandle onto the heap (shared by callLater and callAt). */
  private _callAt(
    when: number,
    callback: Callback,
    args: unknown[],
    method: string,
  ): TimerHandle {
    this._checkClosed();
    checkCallback(callback, method, this._debug);
    const timer = new TimerHandle(
      when,
      callback,
      args,
      this,
      takeContext(args),
    );
    this._scheduled.push(timer);
    timer._scheduled = true;
    if (this._wake !== null) this._wake();
    return timer;
  }

  /** @internal */
  override _timerHandleCancelled(handle: TimerHandle): void {
    if (handle._scheduled) this._timerCancelledCount++;
  }

  /** The loop's clock: `performance.now()`, in ms. */
  override time(): number {
    return now();
  }

  /** Creates a Future attached to this loop. */
  override createFuture<T = unknown>(): Future<T> {
    return new Future<T>(this);
  }

  /** Wraps `coro` in a Task on this loop (through the task factory, if set). */
  override createTask<T>(
    coro: Coroutine<T>,
    options: TaskOptions = {},
  ): Task<T> {
    this._checkClosed();
    if (this._taskFactory === null) {
      return new Task<T>(coro, { ...options, loop: this });
    }
    const task = this._taskFactory(this, coro, options) as Task<T>;
    if (options.name !== undefined && typeof task.setName === "function") {
      task.setName(options.name);
    }
    return task;
  }

  /** Sets the factory createTask() uses; null restores the default. */
  override setTaskFactory(factory: TaskFactory | null): void {
    if (factory !== null && typeof factory !== "function") {
      throw new TypeError("task factory must be a callable or null");
    }
    this._taskFactory = factory;
  }

  /** The task factory, or null for the default. */
  override getTaskFactory(): TaskFactory | null {
    return this._taskFactory;
  }

  // -- errors ---------------------------------------------------------------

  /** The custom exception handler, or null. */
  override getExceptionHandler(): ExceptionHandler | null {
    return this._exceptionHandler;
  }

  /**
   * Sets the exception handler, called as `handler(loop, context)`; null
   * restores the default.
   */
  override setExceptionHandler(handler: ExceptionHandler | null): void {
    if (handler !== null && typeof handler !== "function") {
      throw new TypeError(
        `A callable object or null is expected, got ${
          typeof handler === "string" ? `'${handler}'` : String(handler)
        }`,
      );
    }
    this._exceptionHandler = handler;
  }

  /**
   * Logs `context` through the logger: the message (default "Unhandled
   * exception in event loop"), the other keys sorted, and the exception.
   */
  override defaultExceptionHandler(context: ExceptionContext): void {
    const message = context.message || "Unhandled exception in event loop";
    const lines = [message];
    for (const key of Object.keys(context).sort()) {
      if (key === "message" || key === "exception") continue;
      const value = context[key];
      if (value === undefined) continue;
      if (key === "sourceTraceback" || key === "handleTraceback") {
        const label = key === "sourceTraceback"
          ? "Object created at (most recent call last):"
          : "Handle created at (most recent call last):";
        lines.push(`${label}\n${String(value)}`);
      } else {
        lines.push(`${key}: ${describeValue(value)}`);
      }
    }
    logger.error(lines.join("\n"), context.exception);
  }

  /**
   * Hands `context` to the exception handler (custom or default); a handler
   * that throws is reported by the default one.
   */
  override callExceptionHandler(context: ExceptionContext): void {
    const handler = this._exceptionHandler;
    if (handler === null) {
      try {
        this.defaultExceptionHandler(context);
      } catch (error) {
        if (error instanceof FatalError) throw error;
        logger.error("Exception in default exception handler", error);
      }
      return;
    }
    try {
      runHandlerInContext(handler, this, context);
    } catch (error) {
      if (error instanceof FatalError) throw error;
      try {
        this.defaultExceptionHandler({
          message: "Unhandled error in exception handler",
          exception: error,
          context,
        });
      } catch (inner) {
        if (inner instanceof FatalError) throw inner;
        logger.error(
          "Exception in default exception handler while handling an unexpected error in custom exception handler",
          inner,
        );
      }
    }
  }

  // -- debug ----------------------------------------------------------------

  /** Whether debug mode is on. */
  override getDebug(): boolean {
    return this._debug;
  }

  /** Turns debug mode on or off. */
  override setDebug(enabled: boolean): void {
    this._debug = Boolean(enabled);
  }

  /** `<SelectorEventLoop running=false closed=false debug=false>`. */
  override toString(): string {
    return `<${this.constructor.name} running=${this._running} closed=${this._closed} debug=${this._debug}>`;
  }
}

function describeValue(value: unknown): string {
  if (typeof value === "function") return callbackName(value);
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Runs a custom handler in the context of the task, future or handle. */
function runHandlerInContext(
  handler: ExceptionHandler,
  loop: AbstractEventLoop,
  context: ExceptionContext,
): void {
  const owner = (context.task ?? context.future ?? context.handle) as
    | { getContext?: () => Context }
    | undefined;
  const ctx = owner?.getContext?.();
  if (ctx && !ctx._entered) ctx.run(() => handler(loop, context));
  else handler(loop, context);
}
