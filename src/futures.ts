/**
 * Future (asyncio.Future): a result that arrives later, awaitable with
 * native `await`. Done callbacks are scheduled through the loop with
 * `callSoon`, in the context that was current when they were added.
 *
 * @module
 */
import {
  type Context,
  copyContext,
  currentFrame,
  NO_CONTEXT,
} from "./context.ts";
import {
  type AbstractEventLoop,
  type Callback,
  getEventLoop,
  withContext,
} from "./events.ts";
import { CancelledError, InvalidStateError } from "./exceptions.ts";

const PENDING = 0;
const CANCELLED = 1;
const FINISHED = 2;
const STATE_NAMES = ["PENDING", "CANCELLED", "FINISHED"] as const;

/** A callback run when a future is done; it receives the future. */
export type DoneCallback<T> = (future: Future<T>) => unknown;

/** The part of a Task that a future's await talks to. */
export interface AwaitingTask {
  /** @internal The future the task's code awaits now. */
  _futWaiter: Future<unknown> | null;
  /** @internal A cancel is pending delivery. */
  _mustCancel: boolean;
  /** @internal Builds the CancelledError to deliver. */
  _deliverCancel(): CancelledError;
  /** Whether the task is done. */
  done(): boolean;
}

interface Unretrieved {
  exception: unknown;
  loop: AbstractEventLoop;
  description: string;
}

// Reports exceptions that no one looked at when the future is collected.
const neverRetrieved = new FinalizationRegistry<Unretrieved>((held) => {
  if (held.loop.isClosed()) return;
  held.loop.callExceptionHandler({
    message: `${held.description} exception was never retrieved`,
    exception: held.exception,
  });
});

/** Marks objects as futures across copies of this module. */
const FUTURE_MARK = Symbol.for("aioloop.Future");

/** Whether `value` is a Future of this module (asyncio.isfuture). */
export function isFuture(value: unknown): value is Future<unknown> {
  return value !== null && typeof value === "object" &&
    (value as Record<symbol, unknown>)[FUTURE_MARK] === true;
}

/** A result that will be set later; `await` it. */
export class Future<T = unknown> implements Promise<T> {
  /** @internal */
  _state = PENDING;
  /** @internal */
  _result: T | undefined = undefined;
  /** @internal */
  _exception: unknown = undefined;
  /** @internal */
  _hasException = false;
  /** @internal */
  _loop: AbstractEventLoop;
  /**
   * @internal Typed loosely so that Future<string> stays assignable to
   * Future<unknown> (a callback parameter would make T contravariant).
   */
  // deno-lint-ignore no-explicit-any
  _callbacks: Array<[DoneCallback<any>, Context]> = [];
  /** @internal */
  _cancelMessage: string | undefined = undefined;
  /** @internal */
  _cancelledExc: CancelledError | null = null;
  private _unretrievedToken: object | null = null;

  /** Creates a pending future on `loop` (default: the current loop). */
  constructor(loop?: AbstractEventLoop) {
    this._loop = loop ?? getEventLoop();
  }

  /** The loop the future belongs to. */
  getLoop(): AbstractEventLoop {
    return this._loop;
  }

  /** Cancels the future; returns false if it was already done. */
  cancel(msg?: string): boolean {
    if (this._state !== PENDING) return false;
    this._state = CANCELLED;
    this._cancelMessage = msg;
    this._scheduleCallbacks();
    return true;
  }

  /** Whether it was cancelled. */
  cancelled(): boolean {
    return this._state === CANCELLED;
  }

  /** Whether it has a result, an exception, or was cancelled. */
  done(): boolean {
    return this._state !== PENDING;
  }

  /**
   * The result; throws the exception if one was set, CancelledError if
   * cancelled, InvalidStateError if not done.
   */
  result(): T {
    if (this._state === CANCELLED) throw this._makeCancelledError();
    if (this._state !== FINISHED) {
      throw new InvalidStateError("Result is not ready.");
    }
    this._markRetrieved();
    if (this._hasException) throw this._exception;
    return this._result as T;
  }

  /** The exception, or null; throws CancelledError / InvalidStateError. */
  exception(): unknown {
    if (this._state === CANCELLED) throw this._makeCancelledError();
    if (this._state !== FINISHED) {
      throw new InvalidStateError("Exception is not set.");
    }
    this._markRetrieved();
    return this._hasException ? this._exception : null;
  }

  /**
   * Calls `fn(future)` through the loop once the future is done, in
   * `options.context` or a copy of the current context.
   */
  addDoneCallback(fn: DoneCallback<T>, options?: { context?: Context }): void {
    if (typeof fn !== "function") {
      throw new TypeError(
        `a callable object was expected by addDoneCallback(), got ${
          String(fn)
        }`,
      );
    }
    this._addCallback(fn, options?.context ?? copyContext());
  }

  /** @internal Adds a done callback with an explicit context. */
  _addCallback(fn: DoneCallback<T>, ctx: Context): void {
    if (this._state !== PENDING) {
      this._loop.callSoon(fn as Callback, this, withContext(ctx));
    } else {
      this._callbacks.push([fn, ctx]);
    }
  }

  /** Removes every registration of `fn`; returns how many were removed. */
  removeDoneCallback(fn: DoneCallback<T>): number {
    const before = this._callbacks.length;
    this._callbacks = this._callbacks.filter(([f]) => f !== fn);
    return before - this._callbacks.length;
  }

  /** Sets the result; InvalidStateError if already done. */
  setResult(result: T): void {
    this._setResult(result);
  }

  /** Sets the exception; InvalidStateError if already done. */
  setException(exception: unknown): void {
    this._setException(exception);
  }

  /** @internal */
  _setResult(result: T): void {
    if (this._state !== PENDING) {
      throw new InvalidStateError(`${STATE_NAMES[this._state]}: ${this}`);
    }
    this._result = result;
    this._state = FINISHED;
    this._scheduleCallbacks();
  }

  /** @internal */
  _setException(exception: unknown): void {
    if (this._state !== PENDING) {
      throw new InvalidStateError(`${STATE_NAMES[this._state]}: ${this}`);
    }
    this._exception = exception;
    this._hasException = true;
    this._state = FINISHED;
    this._unretrievedToken = {};
    neverRetrieved.register(this, {
      exception,
      loop: this._loop,
      description: this.constructor.name,
    }, this._unretrievedToken);
    this._scheduleCallbacks();
  }

  /** Records that the exception was looked at. */
  private _markRetrieved(): void {
    if (this._unretrievedToken !== null) {
      neverRetrieved.unregister(this._unretrievedToken);
      this._unretrievedToken = null;
    }
  }

  /** @internal The CancelledError to throw for a cancelled future. */
  _makeCancelledError(): CancelledError {
    if (this._cancelledExc !== null) return this._cancelledExc;
    this._cancelledExc = new CancelledError(this._cancelMessage);
    return this._cancelledExc;
  }

  /** @internal */
  _scheduleCallbacks(): void {
    const callbacks = this._callbacks;
    if (callbacks.length === 0) return;
    this._callbacks = [];
    for (const [fn, ctx] of callbacks) {
      this._loop.callSoon(fn as Callback, this, withContext(ctx));
    }
  }

  /**
   * Makes the future awaitable. A task that awaits it records it, so that
   * cancelling the task cancels this future and the await throws
   * CancelledError.
   */
  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    const task = currentFrame()?.task as AwaitingTask | null | undefined;
    const settled = new Promise<T>((resolve, reject) => {
      if (task && !task.done()) {
        if (task._mustCancel) {
          // As asyncio's Task.__step: the future the task was about to wait
          // for is cancelled too (a socket op then drops its watcher).
          const error = task._deliverCancel();
          this.cancel(error.message === "" ? undefined : error.message);
          reject(error);
          return;
        }
        task._futWaiter = this as Future<unknown>;
      }
      const settle = () => {
        if (task && task._futWaiter === this) task._futWaiter = null;
        if (this._state === CANCELLED) reject(this._makeCancelledError());
        else if (this._hasException) {
          this._markRetrieved();
          reject(this._exception);
        } else resolve(this._result as T);
      };
      if (this._state !== PENDING) settle();
      else this._callbacks.push([settle, NO_CONTEXT]);
    });
    return settled.then(onFulfilled, onRejected);
  }

  /** Like Promise.prototype.catch. */
  catch<R = never>(
    onRejected?: ((reason: unknown) => R | PromiseLike<R>) | null,
  ): Promise<T | R> {
    return this.then(undefined, onRejected);
  }

  /** Like Promise.prototype.finally. */
  finally(onFinally?: (() => void) | null): Promise<T> {
    return this.then().finally(onFinally);
  }

  /** The state, and the result or exception when done. */
  protected _reprInfo(): string[] {
    const info = [STATE_NAMES[this._state].toLowerCase()];
    if (this._state === FINISHED) {
      if (this._hasException) info.push(`exception=${String(this._exception)}`);
      else info.push(`result=${reprValue(this._result)}`);
    }
    return info;
  }

  /** `<Future pending>`, `<Future finished result=1>`, ... */
  toString(): string {
    return `<${this.constructor.name} ${this._reprInfo().join(" ")}>`;
  }

  /** Makes futures usable where a Promise is expected. */
  get [Symbol.toStringTag](): string {
    return this.constructor.name;
  }

  /** @internal */
  get [FUTURE_MARK](): boolean {
    return true;
  }
}

function reprValue(value: unknown): string {
  if (typeof value === "string") return `'${value}'`;
  try {
    const text = String(value);
    return text.length > 60 ? text.slice(0, 57) + "..." : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Sets `fut`'s result unless it was cancelled meanwhile. */
export function setResultUnlessCancelled<T>(fut: Future<T>, result: T): void {
  if (!fut.cancelled()) fut.setResult(result);
}
