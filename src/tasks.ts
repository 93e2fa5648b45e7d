/**
 * Task (asyncio.Task) and the helpers built on futures: {@link sleep},
 * {@link gather}, {@link waitFor}, {@link shield}, {@link ensureFuture},
 * {@link currentTask}, {@link allTasks}.
 *
 * A Task runs an async function on the loop. Its first step is a loop
 * callback; after that the function runs as native code, resumed by the
 * runtime when what it awaits settles. When it awaits a loop Future, the
 * task records it, so `cancel()` cancels that future and the `await` throws
 * CancelledError there. A cancel that arrives while the function awaits
 * something else (a native promise) is delivered at its next await of a
 * loop Future, or when it returns; `task.signal` aborts at once, for APIs
 * that take an AbortSignal.
 *
 * A native promise is already running and cannot be stopped. As asyncio's
 * `wrap_future`, {@link ensureFuture} wraps one in a plain loop Future, and
 * a Task made over one (`createTask(promise)`) runs no code of its own:
 * both are cancelled at once when asked, and the promise is abandoned: its
 * later outcome is dropped (a rejection is reported by no one). So
 * `waitFor(promise, ms)` keeps its deadline.
 *
 * Once the loop is closed, a task whose code finishes anyway (an abandoned
 * task, see `run()`) drops its outcome: nothing is thrown or reported.
 *
 * @module
 */
import {
  type Context,
  copyContext,
  currentFrame,
  NO_CONTEXT,
  runInFrame,
} from "./context.ts";
import {
  type AbstractEventLoop,
  callbackName,
  captureSourceTraceback,
  type Coroutine,
  getEventLoop,
  getRunningLoop,
  type TaskOptions,
  withContext,
} from "./events.ts";
import {
  CancelledError,
  FatalError,
  RuntimeError,
  TimeoutError,
} from "./exceptions.ts";
import { Future, isFuture, setResultUnlessCancelled } from "./futures.ts";

const liveTasks = new WeakMap<AbstractEventLoop, Set<Task<unknown>>>();
let taskCounter = 0;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as PromiseLike<unknown>).then === "function";
}

/**
 * Subscribes to a native promise (or any thenable that is not a loop
 * Future) at once, so that a rejection is never unhandled. `settle` gets
 * the outcome; it decides whether to keep or drop it.
 */
function follow(
  promise: PromiseLike<unknown>,
  settle: (ok: boolean, value: unknown) => void,
): void {
  try {
    promise.then(
      (value) => settle(true, value),
      (exc) => settle(false, exc),
    );
  } catch (exc) {
    // A thenable whose then() throws: that is its outcome.
    settle(false, exc);
  }
}

/** Options of the Task constructor. */
export interface TaskConstructorOptions extends TaskOptions {
  /** The loop (default: the current loop). */
  loop?: AbstractEventLoop;
}

/** Runs an async function (or awaits a promise) on the loop. */
export class Task<T = unknown> extends Future<T> {
  /** @internal */
  _futWaiter: Future<unknown> | null = null;
  /** @internal */
  _mustCancel = false;
  private readonly _coro: Coroutine<T>;
  private _name: string;
  private readonly _context: Context;
  private _numCancelsRequested = 0;
  private _abort: AbortController | null = null;
  /** Made over a native promise: no code of its own, cancelled at once. */
  private readonly _overPromise: boolean;
  /** @internal Debug mode: where the task was created. */
  _sourceTraceback: string | null = null;

  /**
   * Creates the task and schedules its first step. `coro` is an async
   * function (run lazily, like a coroutine) or a promise (already running:
   * the task follows it, and cancel() abandons it at once).
   */
  constructor(coro: Coroutine<T>, options: TaskConstructorOptions = {}) {
    super(options.loop ?? getEventLoop());
    if (typeof coro !== "function" && !isThenable(coro)) {
      throw new TypeError(`a coroutine was expected, got ${String(coro)}`);
    }
    this._coro = coro;
    this._name = options.name !== undefined
      ? String(options.name)
      : `Task-${++taskCounter}`;
    this._context = options.context ?? copyContext();
    if (this._loop.getDebug()) this._sourceTraceback = captureSourceTraceback();
    this._loop.callSoon(() => this._step(), withContext(NO_CONTEXT));
    let tasks = liveTasks.get(this._loop);
    if (!tasks) liveTasks.set(this._loop, tasks = new Set());
    tasks.add(this as Task<unknown>);
    this._overPromise = typeof coro !== "function" && !isFuture(coro);
    if (this._overPromise) {
      // Followed at once (a thenable may even answer synchronously), so a
      // rejection is never unhandled, even if the task is cancelled first.
      follow(coro as PromiseLike<T>, (ok, value) => {
        if (ok) this._finish(value as T);
        else this._finishWithError(value);
      });
    }
  }

  /** The task's name. */
  getName(): string {
    return this._name;
  }

  /** Renames the task. */
  setName(name: unknown): void {
    this._name = String(name);
  }

  /** The function or promise the task runs. */
  getCoro(): Coroutine<T> {
    return this._coro;
  }

  /** The context the task's code runs in. */
  getContext(): Context {
    return this._context;
  }

  /** An AbortSignal that aborts when the task is cancelled. */
  get signal(): AbortSignal {
    if (this._abort === null) {
      this._abort = new AbortController();
      if (this._numCancelsRequested > 0 || this.cancelled()) {
        this._abort.abort(new CancelledError(this._cancelMessage));
      }
    }
    return this._abort.signal;
  }

  /** Tasks cannot be resolved from outside (RuntimeError). */
  override setResult(_result: T): void {
    throw new RuntimeError("Task does not support setResult operation");
  }

  /** Tasks cannot be failed from outside (RuntimeError). */
  override setException(_exception: unknown): void {
    throw new RuntimeError("Task does not support setException operation");
  }

  /**
   * Requests cancellation: the await the task is suspended in throws
   * CancelledError. A task over a native promise is cancelled at once (the
   * promise is abandoned). Returns false if the task is already done.
   */
  override cancel(msg?: string): boolean {
    if (this.done()) return false;
    this._numCancelsRequested++;
    this._abort?.abort(new CancelledError(msg));
    if (this._overPromise) {
      // No code of ours runs: nothing to deliver the cancel to.
      this._finishCancelled(msg);
      return true;
    }
    if (this._futWaiter !== null && this._futWaiter.cancel(msg)) {
      // The await of _futWaiter throws CancelledError.
      return true;
    }
    this._mustCancel = true;
    this._cancelMessage = msg;
    return true;
  }

  /** How many cancel requests are pending. */
  cancelling(): number {
    return this._numCancelsRequested;
  }

  /** Withdraws one cancel request; returns the remaining count. */
  uncancel(): number {
    if (this._numCancelsRequested > 0) {
      this._numCancelsRequested--;
      if (this._numCancelsRequested === 0) this._mustCancel = false;
    }
    return this._numCancelsRequested;
  }

  /** @internal The cancel to throw at the task's next await. */
  _deliverCancel(): CancelledError {
    this._mustCancel = false;
    return new CancelledError(this._cancelMessage);
  }

  /** The first step: runs the function in the task's context and frame. */
  private _step(): void {
    if (this.done()) return;
    if (this._mustCancel) {
      // Cancelled before it started: the function never runs.
      this._mustCancel = false;
      this._finishCancelled(this._cancelMessage);
      return;
    }
    const coro = this._coro;
    // A native promise was followed from the constructor on.
    if (this._overPromise) return;
    try {
      // Subscribe inside the task's frame: when the function returned a
      // loop Future (or `coro` is one), the task records it as the future
      // it waits for, as an `await` would, so cancel() reaches it.
      runInFrame({ ctx: this._context, task: this }, () => {
        const out = typeof coro === "function" ? coro() : coro;
        if (isThenable(out)) {
          out.then(
            (value) => this._finish(value as T),
            (exc) => this._finishWithError(exc),
          );
        } else {
          this._finish(out as T);
        }
      });
    } catch (exc) {
      this._finishWithError(exc);
    }
  }

  /** The function returned: the task's result (or cancel, if one is pending). */
  private _finish(value: T): void {
    if (this.done()) return;
    if (this._loop.isClosed()) return this._forget(); // abandoned: dropped
    if (this._mustCancel) {
      // Cancelled right before the function returned.
      this._mustCancel = false;
      this._finishCancelled(this._cancelMessage);
      return;
    }
    this._forget();
    this._setResult(value);
  }

  /** The function threw: the task's exception, or cancelled for CancelledError. */
  private _finishWithError(exc: unknown): void {
    if (this.done()) return;
    if (this._loop.isClosed()) return this._forget(); // abandoned: dropped
    if (exc instanceof CancelledError) {
      this._finishCancelled(exc.message || undefined, exc);
      return;
    }
    this._forget();
    this._setException(exc);
    if (exc instanceof FatalError) this._loop._fatal(exc);
  }

  /** Marks the task cancelled. */
  private _finishCancelled(msg?: string, exc?: CancelledError): void {
    this._forget();
    if (exc) this._cancelledExc = exc;
    super.cancel(msg);
  }

  /** Drops the loop's strong reference to the task. */
  private _forget(): void {
    liveTasks.get(this._loop)?.delete(this as Task<unknown>);
  }

  /** The parts of the repr. */
  protected override _reprInfo(): string[] {
    const info = super._reprInfo();
    if (this._mustCancel) info[0] = "cancelling";
    info.splice(1, 0, `name='${this._name}'`);
    const coro = this._coro;
    info.splice(
      2,
      0,
      `coro=<${typeof coro === "function" ? callbackName(coro) : "promise"}()>`,
    );
    if (this._futWaiter) info.push(`wait_for=${this._futWaiter}`);
    return info;
  }
}

/** The task whose code is running (in `loop`, default: the running loop). */
export function currentTask(loop?: AbstractEventLoop): Task<unknown> | null {
  const target = loop ?? getRunningLoop();
  const task = currentFrame()?.task;
  if (task instanceof Task && task.getLoop() === target && !task.done()) {
    return task;
  }
  return null;
}

/** The tasks of `loop` (default: the running loop) that are not done. */
export function allTasks(loop?: AbstractEventLoop): Set<Task<unknown>> {
  const target = loop ?? getRunningLoop();
  return new Set(
    [...(liveTasks.get(target) ?? [])].filter((t) => !t.done()),
  );
}

/** Something that can become a Future. */
export type Awaitable<T> =
  | Future<T>
  | PromiseLike<T>
  | (() => PromiseLike<T> | T);

/**
 * A Future for `aw`: a Future as it is; an async function run as a Task; a
 * native promise (any thenable) wrapped in a plain Future, as asyncio's
 * `wrap_future`. Cancelling that Future cancels it at once and abandons the
 * promise: it goes on, and its outcome is dropped (a rejection is reported
 * by no one). TypeError for anything else; RangeError for a future of
 * another loop.
 */
export function ensureFuture<T>(
  aw: Awaitable<T>,
  loop?: AbstractEventLoop,
): Future<T> {
  if (isFuture(aw)) {
    if (loop !== undefined && aw.getLoop() !== loop) {
      throw new RangeError(
        "The future belongs to a different loop than the one specified as the loop argument",
      );
    }
    return aw as Future<T>;
  }
  if (typeof aw === "function") {
    const target = loop ?? getEventLoop();
    return target.createTask(aw as Coroutine<T>) as Future<T>;
  }
  if (isThenable(aw)) return wrapPromise(aw, loop ?? getEventLoop());
  throw new TypeError(
    "An asyncio.Future, a coroutine or an awaitable is required",
  );
}

/**
 * A loop Future that settles as `promise` does, unless it was cancelled
 * first (or the loop is closed): then the outcome is dropped.
 */
function wrapPromise<T>(
  promise: PromiseLike<T>,
  loop: AbstractEventLoop,
): Future<T> {
  const fut = loop.createFuture<T>();
  follow(promise, (ok, value) => {
    if (fut.done() || loop.isClosed()) return;
    if (ok) fut._setResult(value as T);
    else {
      fut._setException(value);
      // As a Task does: a FatalError stops the loop.
      if (value instanceof FatalError) loop._fatal(value);
    }
  });
  return fut;
}

/**
 * A future that resolves with `result` after `delay` ms, on the running
 * loop. `sleep(0)` resolves in the next iteration.
 */
export function sleep<T = undefined>(delay: number, result?: T): Future<T> {
  if (typeof delay !== "number" || Number.isNaN(delay)) {
    throw new TypeError(`delay must be a number, got ${String(delay)}`);
  }
  const loop = getRunningLoop();
  const fut = loop.createFuture() as Future<T>;
  const timer = delay <= 0
    ? loop.callSoon(
      setResultUnlessCancelled,
      fut,
      result,
      withContext(NO_CONTEXT),
    )
    : loop.callLater(
      delay,
      setResultUnlessCancelled,
      fut,
      result,
      withContext(NO_CONTEXT),
    );
  fut._addCallback(() => timer.cancel(), NO_CONTEXT);
  return fut;
}

/** Options of {@link gather}. */
export interface GatherOptions {
  /** Return errors as results instead of failing on the first one. */
  returnExceptions?: boolean;
}

/** The future gather() returns; cancelling it cancels its children. */
class GatheringFuture<T> extends Future<T> {
  constructor(
    private readonly children: Future<unknown>[],
    loop: AbstractEventLoop,
  ) {
    super(loop);
  }

  override cancel(msg?: string): boolean {
    if (this.done()) return false;
    let any = false;
    for (const child of this.children) if (child.cancel(msg)) any = true;
    if (!any) return super.cancel(msg);
    // Children report their cancellation; the outcome follows from them.
    this._cancelRequested = msg ?? "";
    return true;
  }

  /** @internal set when cancel() reached a child. */
  _cancelRequested: string | null = null;
}

/**
 * Runs awaitables concurrently and resolves with their results in order
 * (asyncio.gather). `gather(a, b)` or `gather([a, b], { returnExceptions })`.
 */
export function gather<T extends unknown[] = unknown[]>(
  ...args: unknown[]
): Future<T> {
  let items: unknown[] = args;
  let options: GatherOptions = {};
  if (args.length >= 1 && Array.isArray(args[0]) && args.length <= 2) {
    items = args[0];
    options = (args[1] as GatherOptions | undefined) ?? {};
  }
  const returnExceptions = options.returnExceptions ?? false;
  const loop = getEventLoop();
  const children = items.map((aw) =>
    ensureFuture(aw as Awaitable<unknown>, loop)
  );
  const outer = new GatheringFuture<T>(children, loop);
  if (children.length === 0) {
    outer.setResult([] as unknown as T);
    return outer;
  }
  let pending = children.length;
  const onChildDone = (child: Future<unknown>) => {
    pending--;
    if (outer.done()) {
      if (!child.cancelled()) child.exception(); // mark as retrieved
      return;
    }
    if (!returnExceptions) {
      if (child.cancelled()) {
        outer.setException(child._makeCancelledError());
        return;
      }
      const exc = child.exception();
      if (exc !== null) {
        outer.setException(exc);
        return;
      }
    }
    if (pending > 0) return;
    const results = children.map((c) => {
      if (c.cancelled()) return c._makeCancelledError();
      const exc = c.exception();
      return exc !== null ? exc : c.result();
    });
    if (outer._cancelRequested !== null) {
      // asyncio: a gather that was cancelled ends cancelled, even if the
      // children swallowed their cancellation.
      Future.prototype.cancel.call(outer, outer._cancelRequested || undefined);
      return;
    }
    outer.setResult(results as T);
  };
  for (const child of children) child._addCallback(onChildDone, NO_CONTEXT);
  return outer;
}

/**
 * Waits for `aw` at most `timeout` ms (null: no limit). On timeout, `aw` is
 * cancelled and the future fails with TimeoutError.
 *
 * - `waitFor(fn, ms)`: `fn` (an async function) runs as a Task; on timeout
 *   the cancel lands in its code (at its next await of a loop Future), and
 *   waitFor waits for it to finish, as asyncio does. Use it to stop work.
 * - `waitFor(promise, ms)`: a native promise cannot be stopped. On timeout
 *   it is abandoned and waitFor fails at the deadline; the promise goes on
 *   and its outcome is dropped. Use it to stop waiting.
 */
export function waitFor<T>(
  aw: Awaitable<T>,
  timeout: number | null,
): Future<T> {
  const loop = getRunningLoop();
  const inner = ensureFuture(aw, loop);
  if (timeout === null) return inner;
  if (typeof timeout !== "number" || Number.isNaN(timeout)) {
    throw new TypeError(
      `timeout must be a number or null, got ${String(timeout)}`,
    );
  }
  const outer = loop.createFuture() as Future<T>;
  let timedOut = false;
  const timer = loop.callLater(timeout, () => {
    timedOut = true;
    inner.cancel();
  }, withContext(NO_CONTEXT));
  inner._addCallback(() => {
    timer.cancel();
    if (outer.done()) return;
    if (inner.cancelled()) {
      if (timedOut) outer.setException(new TimeoutError());
      else outer.cancel();
      return;
    }
    const exc = inner.exception();
    if (exc !== null) outer.setException(exc);
    else outer.setResult(inner.result());
  }, NO_CONTEXT);
  outer._addCallback(() => {
    if (outer.cancelled()) {
      timer.cancel();
      inner.cancel();
    }
  }, NO_CONTEXT);
  return outer;
}

/**
 * Protects `aw` from cancellation: cancelling the returned future does not
 * cancel `aw` (asyncio.shield).
 */
export function shield<T>(aw: Awaitable<T>): Future<T> {
  const inner = ensureFuture(aw);
  if (inner.done()) return inner;
  const outer = new Future<T>(inner.getLoop());
  inner._addCallback(() => {
    if (outer.cancelled()) {
      if (!inner.cancelled()) inner.exception();
      return;
    }
    if (inner.cancelled()) outer.cancel();
    else {
      const exc = inner.exception();
      if (exc !== null) outer.setException(exc);
      else outer.setResult(inner.result());
    }
  }, NO_CONTEXT);
  return outer;
}
