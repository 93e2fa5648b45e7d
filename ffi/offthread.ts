/**
 * One runner for blocking C calls off the JS thread: the waiter's poll,
 * name resolution, and later the executor and child-process waits.
 *
 * A call names a C function ({@link NativeCall}: library, symbol, C types)
 * and passes numbers only. Pointers travel as addresses of native
 * (`malloc`) memory, which neither garbage collector moves or frees, so
 * another thread may use it while the JS thread goes on. The caller frees
 * that memory once the call's promise has settled, never before: a call
 * that has started cannot be stopped, and the promise of a call in flight
 * settles only after the C function returned.
 *
 * - Deno: the symbol bound with `nonblocking: true` (one binding per
 *   library and symbol, kept for the life of the process), run on Deno's
 *   blocking-call pool.
 * - Bun ignores `nonblocking`, so a pool of Workers (named after the
 *   runner, `aioloop-*`) makes the calls. Each Worker opens the library
 *   and binds the symbol the first time it is asked for it, blocks in
 *   `Atomics.wait` between calls, and reports through a SharedArrayBuffer
 *   and `Atomics.notify`; the JS thread waits with `Atomics.waitAsync`
 *   (~10 µs a hop, against ~25 µs for postMessage). A Worker is referenced
 *   only while it runs a call, so an idle runner never keeps Bun alive;
 *   `close()` ends them all.
 *
 * In both runtimes a runner runs at most `threads` calls at once (Deno's
 * pool of 32 threads is shared with its file operations, and libuv bounds
 * its getaddrinfo pool the same way); further calls wait in a queue, and
 * an AbortSignal takes a queued call out before it starts.
 *
 * @module
 */
import {
  BrokenPipeError,
  ConnectionAbortedError,
  ConnectionError,
  ConnectionRefusedError,
  ConnectionResetError,
  GaiError,
  OSError,
  RuntimeError,
} from "./errors.ts";
import {
  type NativeFunction,
  type NativeType,
  openLibrary,
  pointerAddress,
  runtime,
} from "./runtime.ts";

/** A C function to call off the JS thread, as a selector's NativeWait names one. */
export interface NativeCall {
  /** The shared library that has `symbol`. */
  readonly library: string;
  /** The C function. */
  readonly symbol: string;
  /**
   * Its C parameter types: integers or `pointer` (passed as an address);
   * never `buffer` (JS memory may move or be freed while the call runs).
   */
  readonly parameters: readonly NativeType[];
  /** Its C result type (`pointer` comes back as an address, `void` as 0). */
  readonly result: NativeType;
}

/** How one call is made. */
export interface CallOptions {
  /**
   * Aborting it takes the call out of the queue if it has not started
   * (the promise rejects with the signal's reason). A call that started
   * is not affected.
   */
  readonly signal?: AbortSignal;
  /**
   * The call takes its thread at once but starts only when this settles,
   * as if the C function were slow to begin (a test hook stands for a
   * lookup that does not answer this way). Counts as started for
   * `signal`; `close()` drops it, since no C code runs yet.
   */
  readonly startAfter?: Promise<unknown>;
}

/** How a runner is made. */
export interface RunnerOptions {
  /** The threads' name (Bun Workers), `aioloop-...`; at most 15 bytes. */
  readonly name: string;
  /** How many calls may run at once (>= 1). */
  readonly threads: number;
}

/** Makes blocking C calls off the JS thread; see the module text. */
export interface OffThreadRunner {
  /**
   * Calls `fn(...args)` off the JS thread; resolves with its result as a
   * number. Rejects with TypeError/RangeError for arguments that do not
   * fit `fn`, with an Error from the thread when the library or symbol
   * cannot be bound, with the signal's reason when aborted while queued,
   * and with an Error when the runner was closed before the call started.
   * A call in flight when the runner closes settles once it has returned:
   * with its result in Deno, rejected in Bun (its Worker was ended and the
   * result is lost).
   */
  call(
    fn: NativeCall,
    args: readonly number[],
    options?: CallOptions,
  ): Promise<number>;
  /** Whether {@link close} was called. */
  readonly closed: boolean;
  /**
   * Rejects queued calls, ends idle threads at once and busy ones as soon
   * as their call returns. Idempotent.
   */
  close(): void;
}

/** The most parameters a {@link NativeCall} may have. */
export const MAX_ARGS = 8;

const CALL_TYPES = new Set<NativeType>(["i32", "u32", "i64", "u64", "pointer"]);
const checkedCalls = new WeakSet<NativeCall>();

/** TypeError/RangeError unless `fn` can run off-thread with `args`. */
function checkCall(fn: NativeCall, args: readonly number[]): void {
  if (!checkedCalls.has(fn)) {
    if (typeof fn.library !== "string" || typeof fn.symbol !== "string") {
      throw new TypeError("a native call needs a library and a symbol name");
    }
    if (fn.parameters.length > MAX_ARGS) {
      throw new RangeError(
        `${fn.symbol}: at most ${MAX_ARGS} parameters off-thread`,
      );
    }
    for (const type of fn.parameters) {
      if (!CALL_TYPES.has(type)) {
        throw new TypeError(
          `${fn.symbol}: parameter type ${type} cannot cross threads`,
        );
      }
    }
    if (!CALL_TYPES.has(fn.result) && fn.result !== "void") {
      throw new TypeError(`${fn.symbol}: result type ${fn.result} unsupported`);
    }
    checkedCalls.add(fn);
  }
  if (args.length !== fn.parameters.length) {
    throw new RangeError(
      `${fn.symbol} takes ${fn.parameters.length} arguments, got ${args.length}`,
    );
  }
  for (let i = 0; i < args.length; i++) {
    if (typeof args[i] !== "number" || !Number.isSafeInteger(args[i])) {
      throw new TypeError(
        `${fn.symbol}: argument ${i} must be a safe integer, got ${
          String(args[i])
        }`,
      );
    }
  }
}

/**
 * Binds `fn` as a function of numbers returning a number (Deno with
 * `nonblocking`: a Promise of one). Pointer parameters are bound as u64:
 * an address in the same integer register on every 64-bit ABI we run on,
 * without making a pointer object per call.
 */
export function bindNative(
  fn: NativeCall,
  nonblocking: boolean,
): (...args: number[]) => number | Promise<number> {
  const lib = openLibrary(fn.library, {
    [fn.symbol]: {
      parameters: fn.parameters.map((t) => t === "pointer" ? "u64" : t),
      result: fn.result,
      nonblocking,
    },
  });
  const call = lib.symbols[fn.symbol] as NativeFunction;
  if (fn.result === "pointer") {
    return nonblocking
      ? (...a) => (call(...a) as Promise<unknown>).then(pointerAddress)
      : (...a) => pointerAddress(call(...a));
  }
  if (fn.result === "void") {
    return nonblocking
      ? (...a) => (call(...a) as Promise<unknown>).then(() => 0)
      : (...a) => (call(...a), 0);
  }
  return call as (...args: number[]) => number | Promise<number>;
}

/** Deno's nonblocking bindings, one per library, symbol and signature. */
const denoBindings = new Map<string, (...args: number[]) => Promise<number>>();
const denoByCall = new WeakMap<
  NativeCall,
  (...args: number[]) => Promise<number>
>();

function callKey(fn: NativeCall): string {
  return `${fn.library}\0${fn.symbol}\0${
    fn.parameters.join(",")
  }\0${fn.result}`;
}

/** Deno: the call, checked already, on the blocking pool. */
function denoCall(fn: NativeCall, args: readonly number[]): Promise<number> {
  let bound = denoByCall.get(fn);
  if (bound === undefined) {
    const key = callKey(fn);
    bound = denoBindings.get(key);
    if (bound === undefined) {
      bound = bindNative(fn, true) as (...args: number[]) => Promise<number>;
      denoBindings.set(key, bound);
    }
    denoByCall.set(fn, bound);
  }
  return bound(...args);
}

/**
 * Deno only: makes the call on Deno's blocking pool at once, outside any
 * runner's queue or bound (the waiter's no-op hop that gives the host a
 * turn, see ffi/waiter.ts). Throws in Bun, where it would block.
 */
export function nonblockingCall(
  fn: NativeCall,
  args: readonly number[],
): Promise<number> {
  if (runtime !== "deno") {
    throw new RuntimeError("nonblockingCall() is for Deno; Bun would block");
  }
  checkCall(fn, args);
  return denoCall(fn, args);
}

// -- errors that cross the Worker boundary ------------------------------------

/** An error as it crosses the Worker boundary: its class name and fields. */
export interface WireError {
  /** The class: "GaiError", "OSError" (or a subclass), "RangeError", ... */
  name: string;
  /** The message, as it was. */
  message: string;
  /** OSError/GaiError: errno (EAI_* for GaiError). */
  errno?: number;
  /** OSError/GaiError: the errno or EAI_* name. */
  code?: string;
  /** OSError/GaiError: the failed call. */
  syscall?: string;
}

/** The OSError classes that cross the Worker boundary by name. */
const OS_ERROR_CLASSES: Record<string, typeof OSError> = {
  OSError,
  GaiError,
  ConnectionError,
  ConnectionRefusedError,
  ConnectionResetError,
  ConnectionAbortedError,
  BrokenPipeError,
};

/** The JS error classes that cross the Worker boundary by name. */
const ERROR_CLASSES: Record<string, ErrorConstructor> = {
  Error,
  RangeError,
  TypeError,
};

/** `error` as plain data for another thread (see {@link errorFromWire}). */
export function errorToWire(error: unknown): WireError {
  if (error instanceof OSError) {
    return {
      name: error.name,
      message: error.message,
      errno: error.errno,
      code: error.code,
      syscall: error.syscall,
    };
  }
  if (error instanceof Error) {
    return { name: error.name, message: error.message };
  }
  return { name: "Error", message: String(error) };
}

/**
 * The error {@link errorToWire} described, rebuilt with the same class
 * (GaiError, an OSError class, RangeError, TypeError; else Error with the
 * same name), message, errno, code and syscall.
 */
export function errorFromWire(wire: WireError): Error {
  const OsClass = Object.hasOwn(OS_ERROR_CLASSES, wire.name)
    ? OS_ERROR_CLASSES[wire.name]
    : undefined;
  let error: Error;
  if (OsClass !== undefined || wire.errno !== undefined) {
    error = new (OsClass ?? OSError)(
      wire.errno ?? 0,
      wire.code ?? "",
      "",
      wire.syscall ?? "",
    );
  } else {
    const ErrorClass = Object.hasOwn(ERROR_CLASSES, wire.name)
      ? ERROR_CLASSES[wire.name]
      : Error;
    error = new ErrorClass(wire.message);
  }
  error.message = wire.message;
  if (error.name !== wire.name) error.name = wire.name;
  return error;
}

// -- the runner -----------------------------------------------------------------

/**
 * The shared memory of one runner Worker (Bun). Int32 words at these
 * indices; Float64 cells at `result` and `args`; then a text area (UTF-8)
 * for a binding's description going in and an error coming out.
 *
 * Protocol: the JS thread writes the binding id (and, until the Worker has
 * made it, its description at `text`: library, symbol, parameters and
 * result joined by NUL, its length in `define`), `argc` and the
 * arguments, increments `request` and notifies it. The Worker makes the
 * call, writes `status` (0 ok; 1 error, the WireError's JSON at `text`,
 * its length in `errorLength`) and `result`, stores the request number in
 * `done` and notifies it. `exit` set to 1 ends the Worker's loop.
 */
export const RUNNER_CTL = {
  /** Int32: the JS thread's request number. */
  request: 0,
  /** Int32: the request the Worker finished. */
  done: 1,
  /** Int32: 1 asks the Worker to leave. */
  exit: 2,
  /** Int32: the binding to call. */
  binding: 3,
  /** Int32: bytes of the binding's description at `text` (0: known). */
  define: 4,
  /** Int32: 0 ok, 1 error (see `errorLength`), 2 thread ended. */
  status: 5,
  /** Int32: bytes of the WireError's JSON at `text`. */
  errorLength: 6,
  /** Int32: number of arguments. */
  argc: 7,
  /** Float64 index of the result. */
  result: 4,
  /** Float64 index of the first argument. */
  args: 5,
  /** Byte offset of the text area. */
  text: 128,
  /** Byte length of the text area. */
  textBytes: 4096,
} as const;

const STATUS_OK = 0;
const STATUS_ERROR = 1;
const STATUS_ENDED = 2;

/** A call waiting for a thread. */
interface Job {
  fn: NativeCall;
  args: readonly number[];
  startAfter: Promise<unknown> | undefined;
  resolve(value: number): void;
  reject(error: unknown): void;
  /** Removes the abort listener. */
  unlisten(): void;
  settled: boolean;
}

/** One thread of a runner: runs one call at a time. */
interface Slot {
  busy: boolean;
  /** Takes the thread for a call (Bun: references the Worker). */
  reserve(): void;
  /** Makes the call; the runner has checked it. */
  run(fn: NativeCall, args: readonly number[]): Promise<number>;
  /** Ends the thread (a call in flight ends when it returns). */
  end(): void;
}

function closedError(): Error {
  return new RuntimeError("off-thread runner is closed");
}

/** What both runtimes share: the bound, the queue, cancellation, close. */
abstract class Runner implements OffThreadRunner {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly held = new Set<Job>();
  private readonly releaseSlot: (slot: Slot) => void;
  closed = false;

  constructor(protected readonly options: RunnerOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) {
      throw new RangeError(
        `threads must be an integer >= 1, got ${options.threads}`,
      );
    }
    this.releaseSlot = (slot) => {
      slot.busy = false;
      if (this.closed) return;
      if (this.queue.length > 0) this.dispatch();
      else this.idle(slot);
    };
  }

  /** A new thread for this runner. */
  protected abstract newSlot(): Slot;

  /** Called when `slot` has nothing to do. */
  protected idle(_slot: Slot): void {}

  /** Called when a slot's thread died; it leaves the pool. */
  protected dropSlot(slot: Slot): void {
    const at = this.slots.indexOf(slot);
    if (at >= 0) this.slots.splice(at, 1);
    if (!this.closed && this.queue.length > 0) this.dispatch();
  }

  private freeSlot(): Slot | undefined {
    for (const slot of this.slots) if (!slot.busy) return slot;
    if (this.slots.length >= this.options.threads) return undefined;
    const slot = this.newSlot();
    this.slots.push(slot);
    return slot;
  }

  /** Runs a call on `slot`; the slot comes free before the caller hears. */
  private start(
    slot: Slot,
    fn: NativeCall,
    args: readonly number[],
  ): Promise<number> {
    slot.busy = true;
    slot.reserve();
    let done: Promise<number>;
    try {
      done = slot.run(fn, args);
    } catch (error) {
      done = Promise.reject(error);
    }
    const release = () => this.releaseSlot(slot);
    done.then(release, release);
    return done;
  }

  call(
    fn: NativeCall,
    args: readonly number[],
    options?: CallOptions,
  ): Promise<number> {
    if (this.closed) return Promise.reject(closedError());
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    try {
      checkCall(fn, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const startAfter = options?.startAfter;
    if (this.queue.length === 0 && startAfter === undefined) {
      const slot = this.freeSlot();
      if (slot !== undefined) return this.start(slot, fn, args);
    }
    return new Promise<number>((resolve, reject) => {
      const onAbort = () => {
        const at = this.queue.indexOf(job);
        if (at < 0) return; // started meanwhile
        this.queue.splice(at, 1);
        this.settle(job, false, signal!.reason);
      };
      const job: Job = {
        fn,
        args,
        startAfter,
        resolve,
        reject,
        settled: false,
        unlisten: () => signal?.removeEventListener("abort", onAbort),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(job);
      this.dispatch();
    });
  }

  private settle(job: Job, ok: boolean, value: unknown): void {
    if (job.settled) return;
    job.settled = true;
    job.unlisten();
    if (ok) job.resolve(value as number);
    else job.reject(value);
  }

  /** Gives queued calls to free threads, starting threads up to the bound. */
  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      const slot = this.freeSlot();
      if (slot === undefined) return;
      const job = this.queue.shift()!;
      job.unlisten();
      if (job.startAfter === undefined) {
        this.start(slot, job.fn, job.args).then(
          (value) => this.settle(job, true, value),
          (error) => this.settle(job, false, error),
        );
        continue;
      }
      // Held: the thread is taken now, the call starts later.
      slot.busy = true;
      slot.reserve();
      this.held.add(job);
      const go = () => {
        this.held.delete(job);
        if (this.closed || job.settled) {
          this.releaseSlot(slot);
          this.settle(job, false, closedError());
          return;
        }
        this.start(slot, job.fn, job.args).then(
          (value) => this.settle(job, true, value),
          (error) => this.settle(job, false, error),
        );
      };
      job.startAfter.then(go, go);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const error = closedError();
    for (const job of [...this.queue, ...this.held]) {
      this.settle(job, false, error);
    }
    this.queue.length = 0;
    this.held.clear();
    for (const slot of this.slots) slot.end();
    this.slots.length = 0;
  }
}

/** Deno: nonblocking calls; a slot is only a place in the bound. */
class DenoRunner extends Runner {
  protected newSlot(): Slot {
    return {
      busy: false,
      reserve() {},
      run: denoCall,
      end() {},
    };
  }
}

interface WorkerLike {
  postMessage(message: unknown): void;
  terminate(): void;
  ref?(): void;
  unref?(): void;
  addEventListener(type: string, listener: (e: unknown) => void): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bun: a pool of Workers, each making one call at a time. */
class WorkerRunner extends Runner {
  /** Binding ids by description, shared by this runner's Workers. */
  private readonly bindingIds = new Map<string, number>();
  private readonly idsByCall = new WeakMap<NativeCall, number>();

  /** The id of `fn`'s binding (its description: {@link callKey}). */
  bindingOf(fn: NativeCall): number {
    let id = this.idsByCall.get(fn);
    if (id !== undefined) return id;
    const key = callKey(fn);
    id = this.bindingIds.get(key);
    if (id === undefined) {
      id = this.bindingIds.size + 1;
      this.bindingIds.set(key, id);
    }
    this.idsByCall.set(fn, id);
    return id;
  }

  protected newSlot(): Slot {
    return new WorkerSlot(this, this.options.name);
  }

  protected override idle(slot: Slot): void {
    (slot as WorkerSlot).unref();
  }

  /** A Worker died outside a call, or ended: it leaves the pool. */
  died(slot: WorkerSlot): void {
    this.dropSlot(slot);
  }
}

/** One runner Worker and its shared control block. */
class WorkerSlot implements Slot {
  busy = false;
  private readonly shared = new SharedArrayBuffer(
    RUNNER_CTL.text + RUNNER_CTL.textBytes,
  );
  private readonly ctl = new Int32Array(this.shared);
  private readonly cells = new Float64Array(
    this.shared,
    0,
    RUNNER_CTL.text / 8,
  );
  private readonly text = new Uint8Array(this.shared, RUNNER_CTL.text);
  private readonly worker: WorkerLike;
  /** Bindings this Worker has made. */
  private readonly known = new Set<number>();
  private requests = 0;
  private inCall = false;
  private ended = false;

  constructor(private readonly runner: WorkerRunner, name: string) {
    const WorkerCtor = Reflect.get(globalThis, "Worker") as new (
      url: URL,
      options: unknown,
    ) => WorkerLike;
    this.worker = new WorkerCtor(
      new URL("./offthread_worker.ts", import.meta.url),
      { type: "module", name },
    );
    this.worker.unref?.();
    this.worker.postMessage(this.shared);
    // "close" comes once the thread has left JS, so after any C call in
    // it returned: a call in flight ends there when its Worker was ended.
    this.worker.addEventListener("close", () => this.finish());
    this.worker.addEventListener("error", () => {
      this.worker.terminate();
      this.finish();
    });
  }

  /** The thread is gone: a call waiting on it ends, the slot leaves. */
  private finish(): void {
    const wasEnded = this.ended;
    this.ended = true;
    if (
      this.inCall && Atomics.load(this.ctl, RUNNER_CTL.done) !== this.requests
    ) {
      Atomics.store(this.ctl, RUNNER_CTL.status, STATUS_ENDED);
      Atomics.store(this.ctl, RUNNER_CTL.done, this.requests);
      Atomics.notify(this.ctl, RUNNER_CTL.done);
    }
    if (!wasEnded) this.runner.died(this);
  }

  reserve(): void {
    this.worker.ref?.();
  }

  unref(): void {
    this.worker.unref?.();
  }

  async run(fn: NativeCall, args: readonly number[]): Promise<number> {
    if (this.ended) throw new RuntimeError("off-thread Worker has ended");
    const C = RUNNER_CTL;
    const id = this.runner.bindingOf(fn);
    let define = 0;
    if (!this.known.has(id)) {
      const bytes = encoder.encode(callKey(fn));
      if (bytes.length > C.textBytes) {
        throw new RangeError(`${fn.symbol}: library path too long`);
      }
      this.text.set(bytes);
      define = bytes.length;
    }
    const ctl = this.ctl;
    ctl[C.binding] = id;
    ctl[C.define] = define;
    ctl[C.argc] = args.length;
    for (let i = 0; i < args.length; i++) this.cells[C.args + i] = args[i];
    const request = ++this.requests;
    this.inCall = true;
    Atomics.store(ctl, C.request, request);
    Atomics.notify(ctl, C.request);
    try {
      for (;;) {
        const done = Atomics.load(ctl, C.done);
        if (done === request) break;
        const wait = Atomics.waitAsync(ctl, C.done, done);
        if (wait.async) await wait.value;
      }
    } finally {
      this.inCall = false;
    }
    const status = Atomics.load(ctl, C.status);
    if (status === STATUS_OK) {
      if (define) this.known.add(id);
      return this.cells[C.result];
    }
    if (status === STATUS_ERROR) {
      const length = ctl[C.errorLength];
      const json = decoder.decode(this.text.slice(0, length));
      throw errorFromWire(JSON.parse(json) as WireError);
    }
    throw new RuntimeError("off-thread Worker ended while the call ran");
  }

  end(): void {
    // A Worker in Atomics.wait leaves at once; one in a C call when that
    // returns (Bun interrupts the calls a signal interrupts: poll, sleeps).
    Atomics.store(this.ctl, RUNNER_CTL.exit, 1);
    Atomics.add(this.ctl, RUNNER_CTL.request, 1);
    Atomics.notify(this.ctl, RUNNER_CTL.request);
    this.worker.unref?.();
    this.worker.terminate();
  }
}

/** A runner for this runtime: Deno's pool, or a pool of Bun Workers. */
export function createRunner(options: RunnerOptions): OffThreadRunner {
  return runtime === "deno"
    ? new DenoRunner(options)
    : new WorkerRunner(options);
}
