/**
 * PEP 567 context variables: {@link ContextVar}, {@link Context},
 * {@link copyContext}.
 *
 * The current context travels across native `await` in an
 * `AsyncLocalStorage` (both runtimes ship it). Entering one costs about
 * 200 ns in Deno, so until a program first sets a variable or enters a
 * context, loop callbacks run without entering any: every context is still
 * empty, so nothing can be observed. The first `set()` inside such a
 * callback enters a fresh context for the rest of that callback.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { RuntimeError } from "./exceptions.ts";

/** A variable has no value in the current context and no default. */
export class LookupError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "LookupError";
  }
}

/** What the async storage carries: the context and the running task. */
export interface Frame {
  /** The current context. */
  readonly ctx: Context;
  /** The task whose code is running, if any. */
  readonly task: unknown;
}

const storage = new AsyncLocalStorage<Frame>();
/** Marks "no value" (a Token's oldValue when the variable had none). */
export const MISSING: unique symbol = Symbol("MISSING");

let contextsInUse = false;
let bareCallback = false;
let bareCallbackEntered = false;

/** A mapping of context variables to values (PEP 567 `Context`). */
export class Context implements Iterable<ContextVar<unknown>> {
  /** @internal */
  _data: Map<ContextVar<unknown>, unknown>;
  /** @internal the map is shared with a copy: copy before writing. */
  _shared = false;
  /** @internal */
  _entered = false;

  /** Creates an empty context. */
  constructor() {
    this._data = new Map();
  }

  /**
   * Runs `fn(...args)` with this context current, and returns its result.
   * Throws RuntimeError if this context is already entered.
   */
  run<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): R {
    if (this._entered) {
      throw new RuntimeError(
        `cannot enter context: ${this} is already entered`,
      );
    }
    contextsInUse = true;
    this._entered = true;
    try {
      return storage.run(
        { ctx: this, task: currentFrame()?.task ?? null },
        fn,
        ...args,
      );
    } finally {
      this._entered = false;
    }
  }

  /** A shallow copy. */
  copy(): Context {
    const c = new Context();
    c._data = this._data;
    c._shared = true;
    this._shared = true;
    return c;
  }

  /** The value of `v` here, or `defaultValue`. */
  get<T>(v: ContextVar<T>, defaultValue?: T): T | undefined {
    return this._data.has(v as ContextVar<unknown>)
      ? this._data.get(v as ContextVar<unknown>) as T
      : defaultValue;
  }

  /** Whether `v` has a value here. */
  has(v: ContextVar<unknown>): boolean {
    return this._data.has(v);
  }

  /** The number of variables with a value. */
  get size(): number {
    return this._data.size;
  }

  /** The variables. */
  keys(): IterableIterator<ContextVar<unknown>> {
    return this._data.keys();
  }

  /** The values. */
  values(): IterableIterator<unknown> {
    return this._data.values();
  }

  /** Variable/value pairs. */
  entries(): IterableIterator<[ContextVar<unknown>, unknown]> {
    return this._data.entries();
  }

  /** Iterates the variables. */
  [Symbol.iterator](): Iterator<ContextVar<unknown>> {
    return this._data.keys();
  }

  /** @internal writes `v` (copy-on-write). */
  _set(v: ContextVar<unknown>, value: unknown): void {
    if (this._shared) {
      this._data = new Map(this._data);
      this._shared = false;
    }
    if (value === MISSING) this._data.delete(v);
    else this._data.set(v, value);
  }

  /** A readable description. */
  toString(): string {
    return `<Context vars=${this._data.size}>`;
  }
}

const rootContext = new Context();

/** The frame of the running code (undefined at top level). */
export function currentFrame(): Frame | undefined {
  return storage.getStore();
}

/** The current context. */
export function currentContext(): Context {
  return storage.getStore()?.ctx ?? rootContext;
}

/** A copy of the current context (PEP 567 `copy_context()`). */
export function copyContext(): Context {
  return currentContext().copy();
}

/** A token that undoes one `ContextVar.set()`. */
export class Token<T> {
  /** The token was used by `reset()`. */
  _used = false;
  /** @internal */
  readonly _ctx: Context;

  /** @internal */
  constructor(
    /** The variable that was set. */
    readonly variable: ContextVar<T>,
    /** The value before the set, or {@link Token.MISSING}. */
    /** The value before the set, or {@link Token.MISSING}. */
    readonly oldValue: T | typeof MISSING,
    ctx: Context,
  ) {
    this._ctx = ctx;
  }

  /** Marks "the variable had no value". */
  static readonly MISSING: typeof MISSING = MISSING;
}

/** A context variable (PEP 567 `ContextVar`). */
export class ContextVar<T> {
  /** The variable's name. */
  readonly name: string;
  private readonly defaultValue: T | typeof MISSING;

  /** Creates a variable; `options.default` is used when it has no value. */
  constructor(name: string, options?: { default: T }) {
    if (typeof name !== "string") {
      throw new TypeError("context variable name must be a str");
    }
    this.name = name;
    this.defaultValue = options && "default" in options
      ? options.default
      : MISSING;
  }

  /**
   * The value in the current context; else `defaultValue`, else the
   * variable's default; else throws LookupError.
   */
  get(defaultValue?: T): T {
    const data = currentContext()._data;
    const self = this as ContextVar<unknown>;
    if (data.has(self)) return data.get(self) as T;
    if (arguments.length > 0) return defaultValue as T;
    if (this.defaultValue !== MISSING) return this.defaultValue;
    throw new LookupError(`<ContextVar name='${this.name}'>`);
  }

  /** Sets the value in the current context; returns a Token for reset(). */
  set(value: T): Token<T> {
    if (!contextsInUse) {
      contextsInUse = true;
      if (bareCallback) {
        // A loop callback that runs without a context of its own: give it
        // one now, so that this value stays inside it.
        storage.enterWith({ ctx: new Context(), task: null });
        bareCallbackEntered = true;
      }
    }
    const ctx = currentContext();
    const self = this as ContextVar<unknown>;
    const old = ctx._data.has(self) ? ctx._data.get(self) as T : MISSING;
    ctx._set(self, value);
    return new Token(this, old, ctx);
  }

  /** Restores the value a `set()` replaced. */
  reset(token: Token<T>): void {
    if (!(token instanceof Token)) {
      throw new TypeError(`expected an instance of Token, got ${token}`);
    }
    if (token._used) {
      throw new RuntimeError(`${token} has already been used once`);
    }
    if (token.variable !== this) {
      throw new RangeError(`${token} was created by a different ContextVar`);
    }
    if (token._ctx !== currentContext()) {
      throw new RangeError(`${token} was created in a different Context`);
    }
    token._ctx._set(this as ContextVar<unknown>, token.oldValue);
    token._used = true;
  }

  /** A readable description. */
  toString(): string {
    return `<ContextVar name='${this.name}'>`;
  }
}

/**
 * @internal A marker context for the loop's own callbacks that need none
 * (resolving a native promise): they run as they are, entering nothing.
 */
export const NO_CONTEXT: Context = new Context();

/** The frame a loop runs its bare callbacks in. */
const LOOP_FRAME: Frame = { ctx: rootContext, task: null };

/**
 * @internal Runs a loop callback in `ctx` (null: the empty context it was
 * scheduled in before any variable was set).
 */
export function runInContext(
  ctx: Context | null,
  fn: (...args: unknown[]) => unknown,
  args: unknown[],
): unknown {
  if (ctx === NO_CONTEXT) return fn(...args);
  if (contextsInUse) {
    if (ctx === null) ctx = new Context();
    if (ctx._entered) {
      throw new RuntimeError(`cannot enter context: ${ctx} is already entered`);
    }
    ctx._entered = true;
    try {
      return storage.run({ ctx, task: null }, fn, ...args);
    } finally {
      ctx._entered = false;
    }
  }
  bareCallback = true;
  try {
    return fn(...args);
  } finally {
    bareCallback = false;
    if (bareCallbackEntered) {
      bareCallbackEntered = false;
      storage.enterWith(LOOP_FRAME);
    }
  }
}

/** @internal The context a new Handle captures (null: nothing to capture). */
export function captureContext(): Context | null {
  return contextsInUse ? currentContext().copy() : null;
}

/** @internal Runs `fn` with `frame` current (tasks, the loop's own run). */
export function runInFrame<R>(frame: Frame, fn: () => R): R {
  return storage.run(frame, fn);
}

/** @internal The frame the loop's run starts in. */
export function loopFrame(): Frame {
  return LOOP_FRAME;
}
