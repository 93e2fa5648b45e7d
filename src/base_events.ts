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
  type CreateConnectionOptions,
  type CreateServerOptions,
  type CreateUnixServerOptions,
  type DatagramEndpointOptions,
  type ExceptionContext,
  type ExceptionHandler,
  type GetaddrinfoOptions,
  Handle,
  type SendfileOptions,
  takeContext,
  type TaskFactory,
  type TaskOptions,
  TimerHandle,
} from "./events.ts";
import {
  ConnectionError,
  FatalError,
  OSError,
  RuntimeError,
  SendfileNotAvailableError,
} from "./exceptions.ts";
import { Future, isFuture } from "./futures.ts";
import { logger } from "./log.ts";
import { ensureFuture, Task } from "./tasks.ts";
import { TimerHeap } from "./timers.ts";
import { lstatSync, unlinkSync } from "node:fs";
import {
  type AddrInfo,
  addrInfoRequest,
  AI_PASSIVE,
  createResolver,
  nameInfoRequest,
  type Resolver,
} from "../ffi/dns.ts";
import { pread, seek } from "../ffi/os.ts";
import { readEnv } from "../ffi/runtime.ts";
import type { FileLike } from "../ffi/selector.ts";
import { Socket } from "../ffi/socket.ts";
import {
  type Address,
  AF_INET,
  AF_INET6,
  AF_UNIX,
  formatAddress,
  ipFamily,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_V6ONLY,
  SO_BROADCAST,
  SO_KEEPALIVE,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../ffi/sys/sockaddr.ts";
import { EINVAL } from "../ffi/sys/platform.ts";
import { INT32_MAX } from "../ffi/validate.ts";
import {
  type BaseProtocol,
  type DatagramProtocol,
  makeProtocol,
  Protocol,
} from "./protocols.ts";
import { Server } from "./server.ts";
import { staggeredRace } from "./staggered.ts";
import { type DatagramTransport, Transport } from "./transports.ts";

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
  /** Name resolution, off the JS thread (made on first use). */
  private _resolver: Resolver | null = null;
  /**
   * @internal Sockets that calls in progress made or took (connects,
   * servers, datagram endpoints) and that no transport owns yet:
   * close() closes them, so nothing in flight outlives the loop.
   */
  readonly _openSockets: Set<Socket> = new Set();

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
    for (const sock of this._openSockets) sock.close();
    this._openSockets.clear();
    this._resolver?.close();
    this._resolver = null;
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

  // -- hooks of the I/O model (the selector loop; a proactor loop later) ----

  /** @internal A stream transport over a connected socket. */
  abstract _makeSocketTransport(
    sock: Socket,
    protocol: BaseProtocol,
    waiter: Future<void> | null,
    extra?: Record<string, unknown>,
    server?: Server | null,
  ): Transport;
  /** @internal A datagram transport over a socket. */
  abstract _makeDatagramTransport(
    sock: Socket,
    protocol: DatagramProtocol,
    address: Address | null,
    waiter: Future<void> | null,
    extra?: Record<string, unknown>,
  ): DatagramTransport;
  /** @internal Starts accepting on a listening socket for `server`. */
  abstract _startServing(
    protocolFactory: () => BaseProtocol,
    sock: Socket,
    server: Server,
    backlog: number,
  ): void;
  /** @internal Stops accepting on `sock` and closes it. */
  abstract _stopServing(sock: Socket): void;
  /**
   * @internal The I/O model's way to send a file over a socket;
   * SendfileNotAvailableError when it has none for this file.
   */
  abstract _sockSendfileNative(
    sock: Socket,
    fd: number,
    offset: number,
    count: number | null,
  ): Promise<number>;
  /** @internal The same over a transport of this I/O model. */
  abstract _sendfileNative(
    transport: Transport,
    fd: number,
    offset: number,
    count: number | null,
  ): Promise<number>;

  /**
   * Runs `fn` as a Task, so the returned promise is a loop Future whose
   * cancel() (directly, or through waitFor's timeout) reaches the socket
   * operation it waits on. A closed loop rejects with RuntimeError.
   */
  private _spawn<T>(fn: () => Promise<T>): Promise<T> {
    try {
      this._checkClosed();
      return this.createTask(fn);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // -- names ----------------------------------------------------------------

  /**
   * Resolves `host` and `port` (libc getaddrinfo, off the JS thread):
   * `[family, type, proto, canonname, sockaddr]` entries. Numeric hosts
   * with a known type are answered at once. GaiError when nothing is found;
   * bad arguments fail the Future with TypeError/RangeError naming them
   * (a port number must be in 0..65535: libc would wrap it).
   */
  override getaddrinfo(
    host: string | null,
    port: string | number | null,
    options: GetaddrinfoOptions = {},
  ): Future<AddrInfo[]> {
    this._checkClosed();
    const fut = this.createFuture<AddrInfo[]>();
    let req;
    try {
      req = addrInfoRequest(host, port, options);
    } catch (error) {
      fut.setException(error);
      return fut;
    }
    const known = numericAddrinfo(req);
    if (known !== null) {
      fut.setResult(known);
      return fut;
    }
    return this._resolve(fut, (r, signal) => r.getaddrinfo(req, signal));
  }

  /**
   * Reverse-resolves `sockaddr` (libc getnameinfo): `[host, service]`.
   * The host must be numeric (GaiError `EAI_NONAME` for a name, as in
   * asyncio); a malformed sockaddr is a TypeError, a bad port or flags a
   * TypeError/RangeError.
   */
  override getnameinfo(
    sockaddr: Address,
    flags = 0,
  ): Future<[string, string]> {
    this._checkClosed();
    const fut = this.createFuture<[string, string]>();
    let req;
    try {
      req = nameInfoRequest(sockaddr, flags);
    } catch (error) {
      fut.setException(error);
      return fut;
    }
    return this._resolve(fut, (r, signal) => r.getnameinfo(req, signal));
  }

  /**
   * Settles `fut` with a lookup on the resolver (made on first use). A
   * cancel of `fut` reaches the resolver: a lookup not started yet is
   * dropped; an answer after the loop closed is dropped too.
   */
  private _resolve<T>(
    fut: Future<T>,
    lookup: (resolver: Resolver, signal: AbortSignal) => Promise<T>,
  ): Future<T> {
    this._resolver ??= createResolver();
    const abort = new AbortController();
    fut.addDoneCallback(() => {
      if (fut.cancelled()) abort.abort();
    });
    lookup(this._resolver, abort.signal).then(
      (value) => {
        if (!fut.done() && !this.isClosed()) fut.setResult(value);
      },
      (error) => {
        if (!fut.done() && !this.isClosed()) fut.setException(error);
      },
    );
    return fut;
  }

  /** @internal Resolves the host in `address` for `sock`'s family and type. */
  async _ensureResolved(sock: Socket, address: Address): Promise<Address> {
    const [host, port] = address as readonly [string, number];
    const infos = await this.getaddrinfo(host, port, {
      family: sock.family,
      type: sock.type,
      proto: sock.proto,
    });
    if (infos.length === 0) {
      throw new TypeError(`no address found for ${formatAddress(address)}`);
    }
    return infos[0][4];
  }

  // -- connections and servers ---------------------------------------------

  /**
   * Connects to `host`:`port` (or wraps `options.sock`) and makes a
   * protocol from `protocolFactory`: resolves with `[transport, protocol]`
   * once connectionMade() ran. Happy Eyeballs with `happyEyeballsDelay`.
   */
  override createConnection<P extends BaseProtocol>(
    protocolFactory: () => P,
    host?: string | null,
    port?: number | string | null,
    options?: CreateConnectionOptions,
  ): Promise<[Transport, P]> {
    return this._spawn(() =>
      createConnection(this, protocolFactory, host, port, options)
    );
  }

  /**
   * Listens on every address of `host` (a name, a list, or null/"" for all
   * interfaces) at `port` (0: any free port), or on `options.sock`.
   */
  override createServer(
    protocolFactory: () => BaseProtocol,
    host?: string | string[] | null,
    port?: number | string | null,
    options?: CreateServerOptions,
  ): Promise<Server> {
    return this._spawn(() =>
      createServer(this, protocolFactory, host, port, options)
    );
  }

  /** Connects to a Unix socket at `path` (or wraps `options.sock`). */
  override createUnixConnection<P extends BaseProtocol>(
    protocolFactory: () => P,
    path?: string | null,
    options?: { sock?: Socket },
  ): Promise<[Transport, P]> {
    return this._spawn(() =>
      createUnixConnection(this, protocolFactory, path, options)
    );
  }

  /** Listens on a Unix socket at `path` ("\0name": abstract namespace). */
  override createUnixServer(
    protocolFactory: () => BaseProtocol,
    path?: string | null,
    options?: CreateUnixServerOptions,
  ): Promise<Server> {
    return this._spawn(() =>
      createUnixServer(this, protocolFactory, path, options)
    );
  }

  /** Wraps a socket accepted elsewhere in a transport. */
  override connectAcceptedSocket<P extends BaseProtocol>(
    protocolFactory: () => P,
    sock: Socket,
  ): Promise<[Transport, P]> {
    return this._spawn(() =>
      connectAcceptedSocket(this, protocolFactory, sock)
    );
  }

  /** Creates a UDP (or Unix datagram) endpoint. */
  override createDatagramEndpoint<P extends DatagramProtocol>(
    protocolFactory: () => P,
    options?: DatagramEndpointOptions,
  ): Promise<[DatagramTransport, P]> {
    return this._spawn(() =>
      createDatagramEndpoint(this, protocolFactory, options)
    );
  }

  // -- sendfile -------------------------------------------------------------

  /**
   * Sends `count` bytes (null: to the end) of `file` (an fd or an object
   * with fileno()) from `offset` over `sock`: the I/O model's native way
   * (sendfile(2)), else reading and sending (unless `fallback: false`).
   */
  override sockSendfile(
    sock: Socket,
    file: FileLike,
    offset = 0,
    count: number | null = null,
    options: SendfileOptions = {},
  ): Promise<number> {
    return this._spawn(() =>
      sockSendfile(this, sock, file, offset, count, options)
    );
  }

  /**
   * Sends a file over a stream transport (natively, or by reading and
   * writing unless `fallback: false`); resolves with the bytes sent.
   */
  override sendfile(
    transport: Transport,
    file: FileLike,
    offset = 0,
    count: number | null = null,
    options: SendfileOptions = {},
  ): Promise<number> {
    return this._spawn(() =>
      transportSendfile(this, transport, file, offset, count, options)
    );
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

// -- networking: the OS-independent algorithms -----------------------------

/**
 * A socket made (or taken) by a call in progress: until a transport or a
 * server's close() takes it over, `loop.close()` closes it, so a connect
 * still in flight when the loop closes leaks nothing.
 */
function ownSocket(loop: BaseEventLoop, sock: Socket): Socket {
  loop._openSockets.add(sock);
  return sock;
}

/** Closes a socket of a failed call and forgets it. */
function dropSocket(loop: BaseEventLoop, sock: Socket): void {
  loop._openSockets.delete(sock);
  sock.close();
}

function checkFactory(factory: unknown, method: string): void {
  if (typeof factory !== "function") {
    throw new TypeError(
      `${method}() expects a protocol factory function, got ${String(factory)}`,
    );
  }
}

function checkSockType(sock: Socket, type: number, method: string): void {
  if (sock.type !== type) {
    throw new RangeError(
      `${method}(): a ${
        type === SOCK_STREAM ? "stream" : "datagram"
      } socket was expected, got ${sock}`,
    );
  }
}

/** Reorders addrinfos to alternate families (RFC 8305 section 4). */
export function interleaveAddrinfos(
  infos: AddrInfo[],
  firstFamilyCount = 1,
): AddrInfo[] {
  const byFamily = new Map<number, AddrInfo[]>();
  for (const info of infos) {
    const list = byFamily.get(info[0]) ?? [];
    list.push(info);
    byFamily.set(info[0], list);
  }
  const lists = [...byFamily.values()];
  const out: AddrInfo[] = [];
  if (lists.length === 0) return out;
  out.push(...lists[0].splice(0, Math.max(0, firstFamilyCount - 1)));
  for (let i = 0; lists.some((list) => list.length > 0); i++) {
    for (const list of lists) {
      const next = list.shift();
      if (next) out.push(next);
    }
  }
  return out;
}

/** Resolves host/port for connecting; OSError when nothing comes back. */
async function resolveOrFail(
  loop: BaseEventLoop,
  host: string | null,
  port: string | number | null,
  options: GetaddrinfoOptions,
): Promise<AddrInfo[]> {
  const infos = await loop.getaddrinfo(host, port, options);
  if (infos.length === 0) {
    throw new OSError(
      0,
      "ENOADDR",
      "getaddrinfo() returned an empty list",
      "getaddrinfo",
      `${host}:${port}`,
    );
  }
  return infos;
}

/** Makes one socket and connects it; closes it on failure. */
async function connectOne(
  loop: BaseEventLoop,
  info: AddrInfo,
  localInfos: AddrInfo[] | null,
): Promise<Socket> {
  const [family, type, proto, , address] = info;
  const sock = ownSocket(loop, new Socket(family, type, proto));
  try {
    if (localInfos !== null) {
      let bound = false;
      let lastError: unknown = null;
      for (const local of localInfos) {
        if (local[0] !== family) continue;
        try {
          sock.bind(local[4]);
          bound = true;
          break;
        } catch (error) {
          lastError = error;
        }
      }
      if (!bound) {
        if (lastError) throw lastError;
        throw new OSError(
          EINVAL,
          "EINVAL",
          "no matching local address",
          "bind",
          `with family ${family} for ${formatAddress(address)}`,
        );
      }
    }
    await loop.sockConnect(sock, address);
    return sock;
  } catch (error) {
    dropSocket(loop, sock);
    throw error;
  }
}

/** The error for failed attempts: the one error, or all of them. */
function connectFailure(errors: unknown[]): unknown {
  if (errors.length === 1) return errors[0];
  const codes = new Set(errors.map((e) => (e as OSError)?.code));
  if (codes.size === 1) return errors[0];
  const first = errors[0] as OSError;
  const error = new OSError(
    first.errno ?? 0,
    first.code ?? "EMULTIPLE",
    "Multiple exceptions",
    first.syscall ?? "connect",
    errors.map(String).join("; "),
  );
  (error as OSError & { errors: unknown[] }).errors = errors;
  return error;
}

/** Wraps a connected stream socket in a transport; resolves once made. */
async function createConnectionTransport<P extends BaseProtocol>(
  loop: BaseEventLoop,
  sock: Socket,
  protocolFactory: () => P,
  server: Server | null = null,
): Promise<[Transport, P]> {
  const protocol = makeProtocol(protocolFactory, "stream");
  const waiter = loop.createFuture<void>();
  const transport = loop._makeSocketTransport(
    sock,
    protocol,
    waiter,
    undefined,
    server,
  );
  try {
    await waiter;
  } catch (error) {
    transport.close();
    throw error;
  }
  return [transport, protocol];
}

/** BaseEventLoop.createConnection(). */
async function createConnection<P extends BaseProtocol>(
  loop: BaseEventLoop,
  protocolFactory: () => P,
  host: string | null | undefined,
  port: string | number | null | undefined,
  options: CreateConnectionOptions = {},
): Promise<[Transport, P]> {
  checkFactory(protocolFactory, "createConnection");
  const hasHost = host !== undefined && host !== null;
  const hasPort = port !== undefined && port !== null;
  let sock: Socket;
  if (hasHost || hasPort) {
    if (options.sock !== undefined) {
      throw new RangeError(
        "host/port and sock can not be specified at the same time",
      );
    }
    const hints = {
      family: options.family ?? 0,
      type: SOCK_STREAM,
      proto: options.proto ?? 0,
      flags: options.flags ?? 0,
    };
    let infos = await resolveOrFail(loop, host ?? null, port ?? null, hints);
    let localInfos: AddrInfo[] | null = null;
    if (options.localAddr !== undefined) {
      const [lhost, lport] = options.localAddr as readonly [string, number];
      localInfos = await resolveOrFail(loop, lhost, lport, hints);
    }
    let interleave = options.interleave;
    if (options.happyEyeballsDelay !== undefined && interleave === undefined) {
      interleave = 1;
    }
    if (interleave) infos = interleaveAddrinfos(infos, interleave);
    const attempts = infos.map((info) => () =>
      connectOne(loop, info, localInfos)
    );
    let connected: Socket | null = null;
    let errors: unknown[] = [];
    if (options.happyEyeballsDelay === undefined || infos.length === 1) {
      for (const attempt of attempts) {
        try {
          connected = await attempt();
          break;
        } catch (error) {
          errors.push(error);
        }
      }
    } else {
      ({ winner: connected, errors } = await staggeredRace(
        loop,
        attempts,
        options.happyEyeballsDelay,
        (sock) => dropSocket(loop, sock),
      ));
    }
    if (connected === null) throw connectFailure(errors);
    sock = connected;
  } else {
    if (options.sock === undefined) {
      throw new RangeError(
        "Neither host/port nor sock were specified",
      );
    }
    sock = options.sock;
    checkSockType(sock, SOCK_STREAM, "createConnection");
  }
  try {
    return await createConnectionTransport(loop, sock, protocolFactory);
  } catch (error) {
    dropSocket(loop, sock);
    throw error;
  }
}

/** Binds one listening socket per resolved address; closes all on failure. */
async function bindServerSockets(
  loop: BaseEventLoop,
  host: string | string[] | null | undefined,
  port: number | string | null | undefined,
  options: CreateServerOptions,
): Promise<Socket[]> {
  const hosts = host === undefined || host === null || host === ""
    ? [null]
    : typeof host === "string"
    ? [host]
    : [...host];
  const hints = {
    family: options.family ?? 0,
    type: SOCK_STREAM,
    proto: 0,
    flags: (options.flags ?? 0) | AI_PASSIVE,
  };
  const all = await Promise.all(
    hosts.map((h) => resolveOrFail(loop, h, port ?? null, hints)),
  );
  const seen = new Set<string>();
  const sockets: Socket[] = [];
  try {
    for (const infos of all) {
      for (const [family, type, proto, , address] of infos) {
        const key = `${family}/${formatAddress(address)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        let sock: Socket;
        try {
          sock = ownSocket(loop, new Socket(family, type, proto));
        } catch (error) {
          // This host has no such family (IPv6 disabled): skip it.
          if (error instanceof OSError && error.code === "EAFNOSUPPORT") {
            continue;
          }
          throw error;
        }
        sockets.push(sock);
        if (options.reuseAddress ?? true) {
          sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
        }
        if (options.reusePort) sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
        if (options.keepAlive) sock.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1);
        // Dual-stack hosts get separate IPv4 and IPv6 sockets.
        if (family === AF_INET6) sock.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1);
        try {
          sock.bind(address);
        } catch (error) {
          if (!(error instanceof OSError)) throw error;
          const ErrorClass = error.constructor as typeof OSError;
          throw new ErrorClass(
            error.errno,
            error.code,
            "error while attempting to bind on address",
            "bind",
            `${formatAddress(address)}: ${
              error.message.replace(/^\[Errno \d+\] /, "")
            }`,
          );
        }
      }
    }
    if (sockets.length === 0) {
      throw new OSError(
        0,
        "ENOADDR",
        "no address to bind",
        "bind",
        String(host),
      );
    }
    return sockets;
  } catch (error) {
    for (const sock of sockets) dropSocket(loop, sock);
    throw error;
  }
}

/** loop.createServer(). */
async function createServer(
  loop: BaseEventLoop,
  protocolFactory: () => BaseProtocol,
  host: string | string[] | null | undefined,
  port: number | string | null | undefined,
  options: CreateServerOptions = {},
): Promise<Server> {
  checkFactory(protocolFactory, "createServer");
  checkServerHost(host);
  const backlog = checkBacklog(options.backlog);
  let sockets: Socket[];
  if (
    (host !== undefined && host !== null) ||
    (port !== undefined && port !== null)
  ) {
    if (options.sock !== undefined) {
      throw new RangeError(
        "host/port and sock can not be specified at the same time",
      );
    }
    sockets = await bindServerSockets(loop, host, port, options);
  } else {
    if (options.sock === undefined) {
      throw new RangeError("Neither host/port nor sock were specified");
    }
    checkSockType(options.sock, SOCK_STREAM, "createServer");
    sockets = [ownSocket(loop, options.sock)];
  }
  const server = new Server(loop, sockets, protocolFactory, backlog);
  if (options.startServing ?? true) {
    try {
      await server.startServing();
    } catch (error) {
      server.close();
      throw error;
    }
  }
  return server;
}

/** createServer()'s host: a string, a list of strings, null or undefined. */
function checkServerHost(host: unknown): void {
  if (host === undefined || host === null || typeof host === "string") return;
  if (Array.isArray(host) && host.every((h) => typeof h === "string")) return;
  throw new TypeError(
    `host must be a string, a list of strings or null, got ${
      Array.isArray(host) ? "a list with a non-string" : typeof host
    }`,
  );
}

function checkBacklog(backlog: number | undefined): number {
  const value = backlog ?? 100;
  if (!Number.isInteger(value)) {
    throw new TypeError(`backlog must be an integer, got ${backlog}`);
  }
  return value;
}

/** loop.createUnixConnection(). */
async function createUnixConnection<P extends BaseProtocol>(
  loop: BaseEventLoop,
  protocolFactory: () => P,
  path: string | null | undefined,
  options: { sock?: Socket } = {},
): Promise<[Transport, P]> {
  checkFactory(protocolFactory, "createUnixConnection");
  let sock: Socket;
  if (path !== undefined && path !== null) {
    if (options.sock !== undefined) {
      throw new RangeError(
        "path and sock can not be specified at the same time",
      );
    }
    if (typeof path !== "string") {
      throw new TypeError(`path must be a string, got ${String(path)}`);
    }
    sock = ownSocket(loop, new Socket(AF_UNIX, SOCK_STREAM));
    try {
      await loop.sockConnect(sock, path);
    } catch (error) {
      dropSocket(loop, sock);
      throw error;
    }
  } else {
    if (options.sock === undefined) {
      throw new RangeError("no path and sock were specified");
    }
    sock = options.sock;
    if (sock.family !== AF_UNIX) {
      throw new RangeError(
        `A UNIX Domain Stream Socket was expected, got ${sock}`,
      );
    }
    checkSockType(sock, SOCK_STREAM, "createUnixConnection");
  }
  try {
    return await createConnectionTransport(loop, sock, protocolFactory);
  } catch (error) {
    dropSocket(loop, sock);
    throw error;
  }
}

/** Removes a stale socket file at `path` (not other files). */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Not there: fine.
  }
}

/** loop.createUnixServer(). */
async function createUnixServer(
  loop: BaseEventLoop,
  protocolFactory: () => BaseProtocol,
  path: string | null | undefined,
  options: CreateUnixServerOptions = {},
): Promise<Server> {
  checkFactory(protocolFactory, "createUnixServer");
  const backlog = checkBacklog(options.backlog);
  let sock: Socket;
  let cleanup: (() => void) | null = null;
  if (path !== undefined && path !== null) {
    if (options.sock !== undefined) {
      throw new RangeError(
        "path and sock can not be specified at the same time",
      );
    }
    if (typeof path !== "string") {
      throw new TypeError(`path must be a string, got ${String(path)}`);
    }
    const abstract = path.startsWith("\0");
    if (!abstract) removeStaleSocket(path);
    sock = ownSocket(loop, new Socket(AF_UNIX, SOCK_STREAM));
    try {
      sock.bind(path);
    } catch (error) {
      dropSocket(loop, sock);
      if (error instanceof OSError && error.code === "EADDRINUSE") {
        throw new OSError(
          error.errno,
          error.code,
          `Address ${formatAddress(path)} is already in use`,
          "bind",
          formatAddress(path),
        );
      }
      throw error;
    }
    if (options.cleanupSocket ?? true) cleanup = socketFileCleanup(path);
  } else {
    if (options.sock === undefined) {
      throw new RangeError("path was not specified, and no sock specified");
    }
    sock = options.sock;
    if (sock.family !== AF_UNIX || sock.type !== SOCK_STREAM) {
      throw new RangeError(
        `A UNIX Domain Stream Socket was expected, got ${sock}`,
      );
    }
    ownSocket(loop, sock);
    // CPython 3.13: a given socket's bound path is removed at close too.
    if (options.cleanupSocket ?? true) {
      let name: Address | null = null;
      try {
        name = sock.getsockname();
      } catch {
        // Not bound: nothing to remove.
      }
      if (typeof name === "string") cleanup = socketFileCleanup(name);
    }
  }
  const server = new Server(loop, [sock], protocolFactory, backlog, cleanup);
  if (options.startServing ?? true) {
    try {
      await server.startServing();
    } catch (error) {
      server.close();
      throw error;
    }
  }
  return server;
}

/**
 * Removes the socket file at `path` when the server closes, if it is still
 * the one this server bound (same inode): a later server's file at the
 * same path is left alone. Null for abstract or unnamed sockets.
 */
function socketFileCleanup(path: string): (() => void) | null {
  if (path === "" || path.startsWith("\0")) return null;
  let ino: number | bigint;
  try {
    ino = lstatSync(path).ino;
  } catch {
    return null;
  }
  return () => {
    try {
      if (lstatSync(path).ino === ino) unlinkSync(path);
    } catch {
      // Gone already.
    }
  };
}

/** loop.connectAcceptedSocket(). */
async function connectAcceptedSocket<P extends BaseProtocol>(
  loop: BaseEventLoop,
  protocolFactory: () => P,
  sock: Socket,
): Promise<[Transport, P]> {
  checkFactory(protocolFactory, "connectAcceptedSocket");
  if (!(sock instanceof Socket)) {
    throw new TypeError(
      `connectAcceptedSocket() expects a Socket, got ${sock}`,
    );
  }
  checkSockType(sock, SOCK_STREAM, "connectAcceptedSocket");
  return await createConnectionTransport(loop, sock, protocolFactory);
}

/** loop.createDatagramEndpoint(). */
async function createDatagramEndpoint<P extends DatagramProtocol>(
  loop: BaseEventLoop,
  protocolFactory: () => P,
  options: DatagramEndpointOptions = {},
): Promise<[DatagramTransport, P]> {
  checkFactory(protocolFactory, "createDatagramEndpoint");
  let sock: Socket;
  let remote: Address | null = null;
  if (options.sock !== undefined) {
    sock = options.sock;
    checkSockType(sock, SOCK_DGRAM, "createDatagramEndpoint");
    const extra = [
      "localAddr",
      "remoteAddr",
      "family",
      "proto",
      "flags",
      "reusePort",
      "allowBroadcast",
    ]
      .filter((k) => (options as Record<string, unknown>)[k] !== undefined);
    if (extra.length > 0) {
      throw new RangeError(
        `socket modifier keyword arguments can not be used when sock is specified. (${
          extra.join(", ")
        })`,
      );
    }
  } else {
    const family = options.family ?? 0;
    const proto = options.proto ?? 0;
    let local: Address | null = options.localAddr ?? null;
    remote = options.remoteAddr ?? null;
    let chosenFamily = family;
    if (family === AF_UNIX) {
      for (const addr of [local, remote]) {
        if (addr !== null && typeof addr !== "string") {
          throw new TypeError("string is expected for an AF_UNIX address");
        }
      }
      if (
        typeof local === "string" && local !== "" && !local.startsWith("\0")
      ) {
        removeStaleSocket(local);
      }
    } else if (local === null && remote === null) {
      if (family === 0) throw new RangeError("unexpected address family");
    } else {
      const hints = {
        family,
        type: SOCK_DGRAM,
        proto,
        flags: options.flags ?? 0,
      };
      const resolveOne = async (addr: Address | null) => {
        if (addr === null) return null;
        if (!Array.isArray(addr) || addr.length < 2) {
          throw new TypeError("2-tuple is expected");
        }
        return await resolveOrFail(
          loop,
          addr[0] as string,
          addr[1] as number,
          hints,
        );
      };
      const [localInfos, remoteInfos] = await Promise.all([
        resolveOne(local),
        resolveOne(remote),
      ]);
      // The first family that both sides have.
      const pick = [...(localInfos ?? remoteInfos ?? [])].find((info) =>
        (localInfos === null || localInfos.some((i) => i[0] === info[0])) &&
        (remoteInfos === null || remoteInfos.some((i) => i[0] === info[0]))
      );
      if (!pick) throw new RangeError("can not get address information");
      chosenFamily = pick[0];
      local = localInfos?.find((i) => i[0] === chosenFamily)?.[4] ?? null;
      remote = remoteInfos?.find((i) => i[0] === chosenFamily)?.[4] ?? null;
    }
    sock = ownSocket(
      loop,
      new Socket(chosenFamily || AF_INET, SOCK_DGRAM, proto),
    );
    try {
      if (options.reusePort) sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
      if (options.allowBroadcast) sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1);
      if (local !== null) sock.bind(local);
      if (remote !== null && !options.allowBroadcast) {
        await loop.sockConnect(sock, remote);
      }
    } catch (error) {
      dropSocket(loop, sock);
      throw error;
    }
  }
  let protocol: P;
  try {
    protocol = makeProtocol(protocolFactory, "datagram");
  } catch (error) {
    if (options.sock === undefined) dropSocket(loop, sock);
    throw error;
  }
  const waiter = loop.createFuture<void>();
  const transport = loop._makeDatagramTransport(
    sock,
    protocol,
    remote,
    waiter,
  );
  try {
    await waiter;
  } catch (error) {
    transport.close();
    throw error;
  }
  return [transport, protocol];
}

// -- sendfile ----------------------------------------------------------------

/** The fd of a file argument: a number or an object with fileno(). */
function fileFd(file: unknown): number {
  const fd = typeof file === "number"
    ? file
    : typeof (file as { fileno?: unknown })?.fileno === "function"
    ? (file as { fileno(): number }).fileno()
    : NaN;
  if (!Number.isInteger(fd) || fd < 0 || fd > INT32_MAX) {
    throw new TypeError(
      `file must be a descriptor or have fileno(), got ${String(file)}`,
    );
  }
  return fd;
}

function checkRange(offset: number, count: number | null): void {
  if (!Number.isInteger(offset) || offset < 0) {
    throw new RangeError(
      `offset must be a non-negative integer (got ${offset})`,
    );
  }
  if (count !== null && (!Number.isInteger(count) || count <= 0)) {
    throw new RangeError(`count must be a positive integer (got ${count})`);
  }
}

/** The chunk the fallbacks read and send at a time. */
const SENDFILE_FALLBACK_CHUNK = 256 * 1024;

/**
 * BaseEventLoop.sockSendfile(): the loop's native way (sendfile(2) for
 * the selector loop), else reading the file and sending it with
 * sockSendall() (unless `fallback: false`). The file's position is left at
 * the end of what was sent.
 */
async function sockSendfile(
  loop: BaseEventLoop,
  sock: Socket,
  file: unknown,
  offset: number,
  count: number | null,
  options: SendfileOptions,
): Promise<number> {
  if (!(sock instanceof Socket)) {
    throw new TypeError(
      `sockSendfile() expects a Socket (from aioloop), got ${String(sock)}`,
    );
  }
  const fd = fileFd(file);
  checkRange(offset, count);
  if (sock.type !== SOCK_STREAM) {
    throw new RangeError("only SOCK_STREAM type sockets are supported");
  }
  try {
    return await loop._sockSendfileNative(sock, fd, offset, count);
  } catch (error) {
    if (!(error instanceof SendfileNotAvailableError)) throw error;
    if (options.fallback === false) throw error;
  }
  return await sendfileFallback(
    fd,
    offset,
    count,
    (chunk) => loop.sockSendall(sock, chunk),
  );
}

/**
 * Reads `fd` from `offset` in chunks and hands each to `send`, which
 * resolves once the chunk is out (or buffered within limits); then sets
 * the file position after what was sent.
 */
async function sendfileFallback(
  fd: number,
  offset: number,
  count: number | null,
  send: (chunk: Uint8Array) => PromiseLike<void>,
): Promise<number> {
  let total = 0;
  try {
    while (count === null || total < count) {
      const want = Math.min(
        SENDFILE_FALLBACK_CHUNK,
        count === null ? SENDFILE_FALLBACK_CHUNK : count - total,
      );
      // A fresh buffer per chunk: the transport may keep it buffered.
      const buf = new Uint8Array(want);
      const n = pread(fd, buf, offset + total);
      if (n === 0) break;
      await send(buf.subarray(0, n));
      total += n;
    }
  } finally {
    if (total > 0) seek(fd, offset + total);
  }
  return total;
}

/**
 * BaseEventLoop.sendfile(transport, ...): the transport's native way when
 * it has one (the selector socket transport: sendfile(2) on its socket,
 * write() refused meanwhile), else the fallback: read and write() through
 * the transport with its flow control, as asyncio's
 * `_sendfile_fallback` does.
 */
async function transportSendfile(
  loop: BaseEventLoop,
  transport: unknown,
  file: unknown,
  offset: number,
  count: number | null,
  options: SendfileOptions,
): Promise<number> {
  if (!(transport instanceof Transport)) {
    throw new TypeError(
      `sendfile() needs a stream transport, got ${transport}`,
    );
  }
  if (transport.isClosing()) throw new RuntimeError("Transport is closing");
  const mode = (transport as SendfileCapable)._sendfileCompatible;
  if (mode === undefined) {
    throw new RuntimeError(
      `fallback is disabled and native sendfile is not supported for transport ${transport}`,
    );
  }
  const fd = fileFd(file);
  checkRange(offset, count);
  if (mode === "native") {
    try {
      return await loop._sendfileNative(transport, fd, offset, count);
    } catch (error) {
      if (!(error instanceof SendfileNotAvailableError)) throw error;
      if (options.fallback === false) throw error;
    }
  } else if (options.fallback === false) {
    throw new RuntimeError(
      `fallback is disabled and native sendfile is not supported for transport ${transport}`,
    );
  }
  const proto = new SendfileFallbackProtocol(loop, transport);
  try {
    return await sendfileFallback(fd, offset, count, async (chunk) => {
      await proto.drain();
      transport.write(chunk);
    });
  } finally {
    proto.restore();
  }
}

/** What a transport says about sendfile (asyncio's `_sendfile_compatible`). */
interface SendfileCapable {
  /** "native": loop._sendfileNative works on it; "fallback": only writes. */
  _sendfileCompatible?: "native" | "fallback";
  /** Whether its protocol is paused by flow control. */
  _isProtocolPaused?(): boolean;
}

/**
 * Stands in for the transport's protocol during a fallback sendfile
 * (asyncio's `_SendfileFallbackProtocol`): reading is paused, and flow
 * control tells the fallback when to wait. restore() puts the protocol
 * back and tells it what it missed.
 */
class SendfileFallbackProtocol extends Protocol {
  private readonly _proto: BaseProtocol;
  private readonly _shouldResumeReading: boolean;
  private readonly _shouldResumeWriting: boolean;
  private _writeReady: Future<void> | null = null;
  private _lost = false;

  constructor(
    private readonly _loop: BaseEventLoop,
    private readonly _transport: Transport,
  ) {
    super();
    this._proto = _transport.getProtocol();
    this._shouldResumeReading = _transport.isReading();
    this._shouldResumeWriting =
      (_transport as SendfileCapable)._isProtocolPaused?.() ?? false;
    _transport.pauseReading();
    _transport.setProtocol(this);
    if (this._shouldResumeWriting) this.pauseWriting();
  }

  /** Resolves when the transport takes more (rejects once it is closed). */
  async drain(): Promise<void> {
    if (this._transport.isClosing() || this._lost) {
      throw new ConnectionError(
        0,
        "ECONNABORTED",
        "Connection is closed",
        "sendfile",
        "the transport was closed during sendfile()",
      );
    }
    if (this._writeReady !== null) await this._writeReady;
  }

  override connectionMade(): void {
    throw new RuntimeError(
      "Invalid state: connection should have been established already.",
    );
  }

  override connectionLost(exc: Error | null): void {
    this._lost = true;
    const waiter = this._writeReady;
    this._writeReady = null;
    if (waiter !== null && !waiter.done()) {
      waiter.setException(
        exc ??
          new ConnectionError(
            0,
            "ECONNABORTED",
            "Connection is closed by peer",
            "sendfile",
          ),
      );
    }
    this._proto.connectionLost(exc);
  }

  override pauseWriting(): void {
    if (this._writeReady !== null) return;
    this._writeReady = this._loop.createFuture<void>();
    // Only drain() awaits it; a failure without a drain is not news.
    this._writeReady.then(undefined, () => {});
  }

  override resumeWriting(): void {
    const waiter = this._writeReady;
    this._writeReady = null;
    if (waiter !== null && !waiter.done()) waiter.setResult(undefined);
  }

  override dataReceived(): void {
    throw new RuntimeError("Invalid state: reading should be paused");
  }

  override eofReceived(): boolean {
    throw new RuntimeError("Invalid state: reading should be paused");
  }

  /** Gives the transport its protocol back. */
  restore(): void {
    if (this._lost) return;
    this._transport.setProtocol(this._proto);
    if (this._shouldResumeReading) this._transport.resumeReading();
    const waiter = this._writeReady;
    this._writeReady = null;
    waiter?.cancel();
    if (this._shouldResumeWriting) this._proto.resumeWriting();
  }
}

/** getaddrinfo's answer for a numeric host, computed here; else null. */
function numericAddrinfo(req: {
  host: string | null;
  port: string | number | null;
  family: number;
  type: number;
  proto: number;
}): AddrInfo[] | null {
  if (req.host === null || req.type === 0) return null;
  if (req.type !== SOCK_STREAM && req.type !== SOCK_DGRAM) return null;
  let port: number;
  if (req.port === null) port = 0;
  else if (typeof req.port === "number") port = req.port;
  else if (/^[0-9]+$/.test(req.port)) port = Number(req.port);
  else return null;
  if (!Number.isInteger(port) || port < 0 || port > 65535) return null;
  const family = ipFamily(req.host);
  if (family === 0 || (req.family !== 0 && req.family !== family)) return null;
  const proto = req.proto ||
    (req.type === SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP);
  const address: Address = family === AF_INET6
    ? [req.host, port, 0, 0]
    : [req.host, port];
  return [[family, req.type, proto, "", address]];
}
