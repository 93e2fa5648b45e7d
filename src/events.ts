/**
 * Event loop interfaces (CPython's `asyncio/events.py`): {@link Handle},
 * {@link TimerHandle}, {@link AbstractServer}, {@link AbstractEventLoop},
 * the loop policy, and the per-thread running loop.
 *
 * This file holds interfaces and the policy mechanism only; the scheduling
 * core is `base_events.ts`. Times are milliseconds.
 *
 * @module
 */
import { captureContext, Context, runInContext } from "./context.ts";
import { FatalError, NotImplementedError, RuntimeError } from "./exceptions.ts";
import type { AddrInfo } from "../ffi/dns.ts";
import type { Socket } from "../ffi/socket.ts";
import type { Address } from "../ffi/sys/sockaddr.ts";
import type { BaseProtocol, DatagramProtocol } from "./protocols.ts";
import type { DatagramTransport, Transport } from "./transports.ts";
import type { FileLike } from "../ffi/selector.ts";
import type { Future } from "./futures.ts";
import type { Task } from "./tasks.ts";
import { isMainThread, threadId } from "node:worker_threads";

// -- option types of the networking methods ------------------------------

/** getaddrinfo()'s filters. */
export interface GetaddrinfoOptions {
  /** AF_INET, AF_INET6, AF_UNIX or 0 (any). */
  family?: number;
  /** SOCK_STREAM, SOCK_DGRAM or 0 (any). */
  type?: number;
  /** Protocol number or 0. */
  proto?: number;
  /** AI_* flags. */
  flags?: number;
}

/** Options of createConnection(). */
export interface CreateConnectionOptions extends GetaddrinfoOptions {
  /** An existing connected (or to-be-used) stream socket, instead of host/port. */
  sock?: Socket;
  /** Bind to this local address first. */
  localAddr?: Address;
  /**
   * Happy Eyeballs (RFC 8305): ms to wait for an attempt before starting
   * the next in parallel. Undefined: one attempt at a time.
   */
  happyEyeballsDelay?: number;
  /** Reorder addresses to alternate families, starting with this many of the first. */
  interleave?: number;
}

/** Options of createServer(). */
export interface CreateServerOptions {
  /** AF_INET, AF_INET6 or 0 (both). */
  family?: number;
  /** AI_* flags (AI_PASSIVE is always added). */
  flags?: number;
  /** A socket to serve on instead of host/port (bound already). */
  sock?: Socket;
  /** listen() backlog; default 100. */
  backlog?: number;
  /** SO_REUSEADDR; default true. */
  reuseAddress?: boolean;
  /** SO_REUSEPORT. */
  reusePort?: boolean;
  /** SO_KEEPALIVE on accepted connections. */
  keepAlive?: boolean;
  /** Accept at once (default true); else call startServing() later. */
  startServing?: boolean;
}

/** Options of createUnixServer(). */
export interface CreateUnixServerOptions {
  /** A bound AF_UNIX socket instead of a path. */
  sock?: Socket;
  /** listen() backlog; default 100. */
  backlog?: number;
  /** Accept at once (default true). */
  startServing?: boolean;
  /** Remove the socket file when the server closes (default true). */
  cleanupSocket?: boolean;
}

/** Options of createDatagramEndpoint(). */
export interface DatagramEndpointOptions extends GetaddrinfoOptions {
  /** Bind to this address. */
  localAddr?: Address;
  /** Connect to this address (sendto() then needs no address). */
  remoteAddr?: Address;
  /** SO_REUSEPORT. */
  reusePort?: boolean;
  /** SO_BROADCAST. */
  allowBroadcast?: boolean;
  /** An existing datagram socket instead of addresses. */
  sock?: Socket;
}

/** sendfile's options. */
export interface SendfileOptions {
  /** Read and send in JS when sendfile(2) cannot be used (default true). */
  fallback?: boolean;
}

/** Any function the loop may call. */
// deno-lint-ignore no-explicit-any
export type Callback = (...args: any[]) => unknown;

/** The argument of an exception handler (asyncio's `context` dict). */
export interface ExceptionContext {
  /** What went wrong. */
  message: string;
  /** The error, if any. */
  exception?: unknown;
  /** The future involved. */
  future?: unknown;
  /** The task involved. */
  task?: unknown;
  /** The handle whose callback failed. */
  handle?: Handle;
  /** The protocol involved. */
  protocol?: unknown;
  /** The transport involved. */
  transport?: unknown;
  /** The socket involved. */
  socket?: unknown;
  /** Debug mode: where the handle or future was created. */
  sourceTraceback?: string;
  /** Debug mode: where the running handle was created. */
  handleTraceback?: string;
  /** Other keys. */
  [key: string]: unknown;
}

/** An exception handler: `(loop, context) => void`. */
export type ExceptionHandler = (
  loop: AbstractEventLoop,
  context: ExceptionContext,
) => void;

/** How many stack lines debug mode keeps for a handle's origin. */
export const DEBUG_STACK_DEPTH = 10;

/**
 * This package's own source folders, as stack frames name them: a URL in
 * Deno (file:// or https:// when imported from JSR), a path in Bun.
 */
const OWN_SOURCES: readonly string[] = ["./", "../ffi/"].flatMap((dir) => {
  const url = new URL(dir, import.meta.url);
  return url.protocol === "file:"
    ? [url.href, decodeURIComponent(url.pathname)]
    : [url.href];
});

/** Whether a stack line is a frame of this package's own code. */
function isOwnFrame(line: string): boolean {
  return OWN_SOURCES.some((dir) => line.includes(dir));
}

/**
 * Debug mode: the caller's stack, without the frames of this package's
 * own files (a user's own `src/app.ts` stays).
 */
export function captureSourceTraceback(): string {
  const stack = new Error().stack?.split("\n").slice(1) ?? [];
  return stack.filter((line) => !isOwnFrame(line))
    .slice(0, DEBUG_STACK_DEPTH).map((l) => l.trim()).join("\n");
}

/** A readable name of a callback, for reprs and messages. */
export function callbackName(cb: unknown): string {
  if (typeof cb === "function") return cb.name ? cb.name : "<anonymous>";
  return String(cb);
}

function formatArg(arg: unknown): string {
  if (typeof arg === "string") return `'${arg}'`;
  if (typeof arg === "function") return callbackName(arg);
  try {
    return String(arg);
  } catch {
    return Object.prototype.toString.call(arg);
  }
}

/** The "cb(arg, ...)" text of a callback and its arguments. */
export function formatCallback(
  cb: unknown,
  args: readonly unknown[] | null,
  debug: boolean,
): string {
  const shown = debug && args ? args.map(formatArg).join(", ") : "";
  return `${callbackName(cb)}(${shown})`;
}

/**
 * A context for a scheduled callback, passed as the last argument of
 * `callSoon`, `callLater`, `callAt` or `callSoonThreadsafe` (asyncio's
 * `context=` keyword): `loop.callSoon(cb, 1, 2, withContext(ctx))`.
 */
export class CallContext {
  /** Wraps `context`. */
  constructor(
    /** The context the callback will run in. */
    readonly context: Context,
  ) {}
}

const callContexts = new WeakMap<Context, CallContext>();

/** The trailing argument that makes a callback run in `context`. */
export function withContext(context: Context): CallContext {
  let wrapped = callContexts.get(context);
  if (wrapped === undefined) {
    if (!(context instanceof Context)) {
      throw new TypeError(`context must be a Context, got ${String(context)}`);
    }
    wrapped = new CallContext(context);
    callContexts.set(context, wrapped);
  }
  return wrapped;
}

/** @internal Removes a trailing CallContext from `args`; returns its context. */
export function takeContext(args: unknown[]): Context | null {
  const n = args.length;
  if (n === 0) return null;
  const last = args[n - 1];
  if (!(last instanceof CallContext)) return null;
  args.length = n - 1;
  return last.context;
}

/** A scheduled callback (asyncio.Handle). */
export class Handle {
  /** @internal */
  _callback: Callback | null;
  /** @internal */
  _args: unknown[] | null;
  /** @internal */
  _cancelled = false;
  /** @internal */
  readonly _loop: AbstractEventLoop;
  /** @internal */
  readonly _context: Context | null;
  /** @internal debug mode: where it was created. */
  _sourceTraceback: string | null = null;
  /** @internal debug mode: the repr cached at cancel time. */
  _repr: string | null = null;

  /**
   * Creates a handle for `callback(...args)`; it runs in `context`, or in a
   * copy of the current context when none is given.
   */
  constructor(
    callback: Callback,
    args: unknown[],
    loop: AbstractEventLoop,
    context: Context | null = null,
  ) {
    this._callback = callback;
    this._args = args;
    this._loop = loop;
    this._context = context ?? captureContext();
    if (loop.getDebug()) this._sourceTraceback = captureSourceTraceback();
  }

  /** The context the callback runs in. */
  getContext(): Context {
    // Scheduled before any context variable was set: the empty context.
    return this._context ?? new Context();
  }

  /** Cancels the callback; idempotent. */
  cancel(): void {
    if (this._cancelled) return;
    this._cancelled = true;
    if (this._loop.getDebug()) this._repr = this.toString();
    this._callback = null;
    this._args = null;
  }

  /** Whether cancel() was called. */
  cancelled(): boolean {
    return this._cancelled;
  }

  /** @internal Runs the callback; errors go to the exception handler. */
  _run(): void {
    try {
      const result = runInContext(this._context, this._callback!, this._args!);
      if (result !== undefined) this._watchPromise(result);
    } catch (exc) {
      if (exc instanceof FatalError) throw exc;
      this._reportError(exc);
    }
  }

  /** A callback that returned a promise: its rejection is an error too. */
  private _watchPromise(result: unknown): void {
    if (
      result !== null && typeof result === "object" &&
      typeof (result as PromiseLike<unknown>).then === "function"
    ) {
      (result as PromiseLike<unknown>).then(undefined, (exc: unknown) => {
        if (exc instanceof FatalError) this._loop._fatal(exc);
        else if (!this._loop.isClosed()) this._reportError(exc);
      });
    }
  }

  /** Reports a callback's error to the loop's exception handler. */
  private _reportError(exc: unknown): void {
    const context: ExceptionContext = {
      message: `Exception in callback ${this._describeCallback()}`,
      exception: exc,
      handle: this,
    };
    if (this._sourceTraceback) context.sourceTraceback = this._sourceTraceback;
    this._loop.callExceptionHandler(context);
  }

  /** The callback as `name(args)`, args in debug mode only. */
  private _describeCallback(): string {
    return formatCallback(this._callback, this._args, this._loop.getDebug());
  }

  /** The repr parts (overridden by TimerHandle). */
  protected _reprInfo(): string[] {
    const info: string[] = [];
    if (this._cancelled) info.push("cancelled");
    if (this._callback !== null) info.push(this._describeCallback());
    if (this._sourceTraceback) {
      info.push(`created at ${this._sourceTraceback.split("\n")[0]}`);
    }
    return info;
  }

  /** `<Handle cb()>`, with arguments and origin in debug mode. */
  toString(): string {
    if (this._repr !== null) return this._repr;
    return `<${this.constructor.name} ${this._reprInfo().join(" ")}>`;
  }
}

/** A callback scheduled for a time (asyncio.TimerHandle). */
export class TimerHandle extends Handle {
  /** @internal The loop time (ms) it is due at. */
  readonly _when: number;
  /** @internal Still in the loop's timer heap. */
  _scheduled = false;
  /** @internal Tie-breaker that keeps equal times in schedule order. */
  _seq = 0;
  /** @internal Position in the heap (-1: not in it). */
  _heapIndex = -1;

  /** Creates a timer for loop time `when` (ms). */
  constructor(
    when: number,
    callback: Callback,
    args: unknown[],
    loop: AbstractEventLoop,
    context: Context | null = null,
  ) {
    super(callback, args, loop, context);
    this._when = when;
  }

  /** The absolute loop time (ms) the callback is scheduled for. */
  when(): number {
    return this._when;
  }

  /** Cancels the timer; the loop removes it from its heap lazily. */
  override cancel(): void {
    if (!this._cancelled) this._loop._timerHandleCancelled(this);
    super.cancel();
  }

  /**
   * asyncio's `__eq__`: same time, callback, arguments and cancel state.
   */
  equals(other: TimerHandle): boolean {
    if (!(other instanceof TimerHandle)) return false;
    if (this === other) return true;
    const a = this._args, b = other._args;
    return this._when === other._when &&
      this._callback === other._callback &&
      this._cancelled === other._cancelled &&
      (a === b ||
        (a !== null && b !== null && a.length === b.length &&
          a.every((x, i) => Object.is(x, b[i]))));
  }

  /** The parts of the repr. */
  protected override _reprInfo(): string[] {
    const info = super._reprInfo();
    info.splice(this._cancelled ? 1 : 0, 0, `when=${this._when}`);
    return info;
  }
}

/** A listening server (asyncio.AbstractServer); `Server` implements it. */
export abstract class AbstractServer {
  /** The listening sockets (empty once closed). */
  get sockets(): Socket[] {
    throw new NotImplementedError("AbstractServer.sockets");
  }
  /** Stops listening; existing connections stay open. */
  close(): void {
    throw new NotImplementedError("AbstractServer.close");
  }
  /** Closes all client connections. */
  closeClients(): void {
    throw new NotImplementedError("AbstractServer.closeClients");
  }
  /** Aborts all client connections. */
  abortClients(): void {
    throw new NotImplementedError("AbstractServer.abortClients");
  }
  /** The loop the server runs on. */
  getLoop(): AbstractEventLoop {
    throw new NotImplementedError("AbstractServer.getLoop");
  }
  /** Whether it accepts connections. */
  isServing(): boolean {
    throw new NotImplementedError("AbstractServer.isServing");
  }
  /** Starts accepting connections. */
  startServing(): Promise<void> {
    return Promise.reject(
      new NotImplementedError("AbstractServer.startServing"),
    );
  }
  /** Accepts connections until cancelled. */
  serveForever(): Promise<void> {
    return Promise.reject(
      new NotImplementedError("AbstractServer.serveForever"),
    );
  }
  /** Resolves when the server and its connections are closed. */
  waitClosed(): Promise<void> {
    return Promise.reject(new NotImplementedError("AbstractServer.waitClosed"));
  }
  /** `await using server = ...`: close, then wait until closed. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.waitClosed();
  }
}

/** Options of a task: its name and context. */
export interface TaskOptions {
  /** The task's name. */
  name?: string;
  /** The context its code runs in (default: a copy of the current one). */
  context?: Context;
}

/** Something a task can run: an async function or a running promise. */
export type Coroutine<T> = (() => PromiseLike<T> | T) | PromiseLike<T>;

/** Creates tasks for {@link AbstractEventLoop.createTask}. */
export type TaskFactory = (
  loop: AbstractEventLoop,
  coro: Coroutine<unknown>,
  options?: TaskOptions,
) => Task<unknown>;

function notImplemented(name: string): never {
  throw new NotImplementedError(`${name}() is not implemented by this loop`);
}

function notImplementedAsync(name: string): Promise<never> {
  return Promise.reject(
    new NotImplementedError(`${name}() is not implemented by this loop`),
  );
}

/**
 * The event loop interface (asyncio.AbstractEventLoop), camelCase, times in
 * milliseconds. Every method throws NotImplementedError here; concrete loops
 * override them.
 */
export abstract class AbstractEventLoop {
  // Running and stopping.
  /** Runs until stop() is called. Resolves when the loop stopped. */
  runForever(): Promise<void> {
    return notImplementedAsync("runForever");
  }
  /** Runs until `future` is done; resolves with its result. */
  runUntilComplete<T>(_future: PromiseLike<T> | Coroutine<T>): Promise<T> {
    return notImplementedAsync("runUntilComplete");
  }
  /** Asks the loop to stop after the current iteration. */
  stop(): void {
    notImplemented("stop");
  }
  /** Whether the loop is running. */
  isRunning(): boolean {
    return notImplemented("isRunning");
  }
  /** Whether the loop was closed. */
  isClosed(): boolean {
    return notImplemented("isClosed");
  }
  /** Closes the loop: drops pending callbacks, releases OS resources. */
  close(): void {
    notImplemented("close");
  }
  /** Closes open async generators. */
  shutdownAsyncgens(): Promise<void> {
    return notImplementedAsync("shutdownAsyncgens");
  }
  /** Shuts the default executor down. */
  shutdownDefaultExecutor(_timeoutMs?: number | null): Promise<void> {
    return notImplementedAsync("shutdownDefaultExecutor");
  }
  /** @internal A TimerHandle was cancelled. */
  _timerHandleCancelled(_handle: TimerHandle): void {
    notImplemented("_timerHandleCancelled");
  }
  /** @internal A fatal error escaped a callback: stop and re-throw it. */
  _fatal(_error: FatalError): void {
    notImplemented("_fatal");
  }

  // Scheduling.
  /** Schedules `callback(...args)` for the next iteration. */
  callSoon(_callback: Callback, ..._args: unknown[]): Handle {
    return notImplemented("callSoon");
  }
  /** Schedules `callback(...args)` after `delay` ms. */
  callLater(
    _delay: number,
    _callback: Callback,
    ..._args: unknown[]
  ): TimerHandle {
    return notImplemented("callLater");
  }
  /** Schedules `callback(...args)` at loop time `when` (ms). */
  callAt(_when: number, _callback: Callback, ..._args: unknown[]): TimerHandle {
    return notImplemented("callAt");
  }
  /** The loop's monotonic clock, in ms. */
  time(): number {
    return notImplemented("time");
  }
  /** Creates a Future attached to this loop. */
  createFuture<T = unknown>(): Future<T> {
    return notImplemented("createFuture");
  }
  /** Wraps `coro` in a Task scheduled on this loop. */
  createTask<T>(
    _coro: Coroutine<T>,
    _options?: TaskOptions,
  ): Task<T> {
    return notImplemented("createTask");
  }

  // Methods for interacting with threads.
  /** callSoon that wakes a waiting loop; safe from any callback. */
  callSoonThreadsafe(_callback: Callback, ..._args: unknown[]): Handle {
    return notImplemented("callSoonThreadsafe");
  }
  /** Runs `func(...args)` in an executor. */
  runInExecutor(
    _executor: unknown,
    _func: Callback,
    ..._args: unknown[]
  ): PromiseLike<unknown> {
    return notImplemented("runInExecutor");
  }
  /** Sets the default executor. */
  setDefaultExecutor(_executor: unknown): void {
    notImplemented("setDefaultExecutor");
  }

  // Network I/O methods returning Futures.
  /** Resolves a host and port (libc getaddrinfo). */
  getaddrinfo(
    _host: string | null,
    _port: string | number | null,
    _options?: GetaddrinfoOptions,
  ): Promise<AddrInfo[]> {
    return notImplementedAsync("getaddrinfo");
  }
  /** Reverse-resolves an address (libc getnameinfo). */
  getnameinfo(_sockaddr: Address, _flags?: number): Promise<[string, string]> {
    return notImplementedAsync("getnameinfo");
  }
  /** Opens a streaming connection. */
  createConnection<P extends BaseProtocol>(
    _protocolFactory: () => P,
    _host?: string | null,
    _port?: number | string | null,
    _options?: CreateConnectionOptions,
  ): Promise<[Transport, P]> {
    return notImplementedAsync("createConnection");
  }
  /** Creates a listening server. */
  createServer(
    _protocolFactory: () => BaseProtocol,
    _host?: string | string[] | null,
    _port?: number | string | null,
    _options?: CreateServerOptions,
  ): Promise<AbstractServer> {
    return notImplementedAsync("createServer");
  }
  /** Sends a file over a transport. */
  sendfile(
    _transport: Transport,
    _file: FileLike,
    _offset?: number,
    _count?: number | null,
    _options?: SendfileOptions,
  ): Promise<number> {
    return notImplementedAsync("sendfile");
  }
  /** Upgrades a connection to TLS. */
  startTls(
    _transport: unknown,
    _protocol: unknown,
    _sslcontext: unknown,
    _options?: unknown,
  ): Promise<unknown> {
    return notImplementedAsync("startTls");
  }
  /** Opens a Unix-socket connection. */
  createUnixConnection<P extends BaseProtocol>(
    _protocolFactory: () => P,
    _path?: string | null,
    _options?: { sock?: Socket },
  ): Promise<[Transport, P]> {
    return notImplementedAsync("createUnixConnection");
  }
  /** Creates a Unix-socket server. */
  createUnixServer(
    _protocolFactory: () => BaseProtocol,
    _path?: string | null,
    _options?: CreateUnixServerOptions,
  ): Promise<AbstractServer> {
    return notImplementedAsync("createUnixServer");
  }
  /** Wraps an accepted socket in a transport. */
  connectAcceptedSocket<P extends BaseProtocol>(
    _protocolFactory: () => P,
    _sock: Socket,
  ): Promise<[Transport, P]> {
    return notImplementedAsync("connectAcceptedSocket");
  }
  /** Creates a datagram endpoint. */
  createDatagramEndpoint<P extends DatagramProtocol>(
    _protocolFactory: () => P,
    _options?: DatagramEndpointOptions,
  ): Promise<[DatagramTransport, P]> {
    return notImplementedAsync("createDatagramEndpoint");
  }

  // Pipes and subprocesses.
  /** Wraps the read end of a pipe in a transport. */
  connectReadPipe(
    _protocolFactory: () => unknown,
    _pipe: unknown,
  ): Promise<[unknown, unknown]> {
    return notImplementedAsync("connectReadPipe");
  }
  /** Wraps the write end of a pipe in a transport. */
  connectWritePipe(
    _protocolFactory: () => unknown,
    _pipe: unknown,
  ): Promise<[unknown, unknown]> {
    return notImplementedAsync("connectWritePipe");
  }
  /** Runs a shell command as a subprocess. */
  subprocessShell(
    _protocolFactory: () => unknown,
    _cmd: string,
    _options?: unknown,
  ): Promise<[unknown, unknown]> {
    return notImplementedAsync("subprocessShell");
  }
  /** Runs a program as a subprocess. */
  subprocessExec(
    _protocolFactory: () => unknown,
    _program: string,
    ..._args: unknown[]
  ): Promise<[unknown, unknown]> {
    return notImplementedAsync("subprocessExec");
  }

  // Ready-based callback registration methods.
  /** Calls `callback(...args)` whenever `fd` is readable. */
  addReader(_fd: FileLike, _callback: Callback, ..._args: unknown[]): void {
    notImplemented("addReader");
  }
  /** Stops watching `fd` for reading; returns whether it was watched. */
  removeReader(_fd: FileLike): boolean {
    return notImplemented("removeReader");
  }
  /** Calls `callback(...args)` whenever `fd` is writable. */
  addWriter(_fd: FileLike, _callback: Callback, ..._args: unknown[]): void {
    notImplemented("addWriter");
  }
  /** Stops watching `fd` for writing; returns whether it was watched. */
  removeWriter(_fd: FileLike): boolean {
    return notImplemented("removeWriter");
  }

  // Completion based I/O methods returning Futures.
  /** Receives up to `nbytes` bytes. */
  sockRecv(_sock: Socket, _nbytes: number): Promise<Uint8Array> {
    return notImplementedAsync("sockRecv");
  }
  /** Receives into `buf`; resolves with the byte count. */
  sockRecvInto(_sock: Socket, _buf: Uint8Array): Promise<number> {
    return notImplementedAsync("sockRecvInto");
  }
  /** Receives a datagram and its sender. */
  sockRecvfrom(
    _sock: Socket,
    _bufsize: number,
  ): Promise<[Uint8Array, Address]> {
    return notImplementedAsync("sockRecvfrom");
  }
  /** Receives a datagram into `buf`. */
  sockRecvfromInto(
    _sock: Socket,
    _buf: Uint8Array,
    _nbytes?: number,
  ): Promise<[number, Address]> {
    return notImplementedAsync("sockRecvfromInto");
  }
  /** Sends all of `data`. */
  sockSendall(_sock: Socket, _data: Uint8Array): Promise<void> {
    return notImplementedAsync("sockSendall");
  }
  /** Sends a datagram to `address`. */
  sockSendto(
    _sock: Socket,
    _data: Uint8Array,
    _address: Address,
  ): Promise<number> {
    return notImplementedAsync("sockSendto");
  }
  /** Connects a socket. */
  sockConnect(_sock: Socket, _address: Address): Promise<void> {
    return notImplementedAsync("sockConnect");
  }
  /** Accepts a connection. */
  sockAccept(_sock: Socket): Promise<[Socket, Address]> {
    return notImplementedAsync("sockAccept");
  }
  /** Sends a file over a socket. */
  sockSendfile(
    _sock: Socket,
    _file: FileLike,
    _offset?: number,
    _count?: number | null,
    _options?: SendfileOptions,
  ): Promise<number> {
    return notImplementedAsync("sockSendfile");
  }

  // Signal handling.
  /** Calls `callback(...args)` when signal `sig` arrives. */
  addSignalHandler(
    _sig: number,
    _callback: Callback,
    ..._args: unknown[]
  ): void {
    notImplemented("addSignalHandler");
  }
  /** Removes a signal handler; returns whether one was set. */
  removeSignalHandler(_sig: number): boolean {
    return notImplemented("removeSignalHandler");
  }

  // Task factory.
  /** Sets the factory createTask() uses (null: the default). */
  setTaskFactory(_factory: TaskFactory | null): void {
    notImplemented("setTaskFactory");
  }
  /** The task factory, or null for the default. */
  getTaskFactory(): TaskFactory | null {
    return notImplemented("getTaskFactory");
  }

  // Error handlers.
  /** The custom exception handler, or null. */
  getExceptionHandler(): ExceptionHandler | null {
    return notImplemented("getExceptionHandler");
  }
  /** Sets the exception handler (null: the default one). */
  setExceptionHandler(_handler: ExceptionHandler | null): void {
    notImplemented("setExceptionHandler");
  }
  /** Logs the context (the default exception handler). */
  defaultExceptionHandler(_context: ExceptionContext): void {
    notImplemented("defaultExceptionHandler");
  }
  /** Hands `context` to the exception handler. */
  callExceptionHandler(_context: ExceptionContext): void {
    notImplemented("callExceptionHandler");
  }

  // Debug flag management.
  /** Whether debug mode is on. */
  getDebug(): boolean {
    return notImplemented("getDebug");
  }
  /** Turns debug mode on or off. */
  setDebug(_enabled: boolean): void {
    notImplemented("setDebug");
  }
}

// ---------------------------------------------------------------------------
// The running loop (per thread: each Worker has its own module instance).

let runningLoop: AbstractEventLoop | null = null;

/** The running loop; throws RuntimeError("no running event loop"). */
export function getRunningLoop(): AbstractEventLoop {
  if (runningLoop === null) throw new RuntimeError("no running event loop");
  return runningLoop;
}

/** The running loop, or null (asyncio's `_get_running_loop`). */
export function _getRunningLoop(): AbstractEventLoop | null {
  return runningLoop;
}

/** @internal Sets the running loop (loops call this on start and end). */
export function _setRunningLoop(loop: AbstractEventLoop | null): void {
  runningLoop = loop;
}

/** The name of this thread, as asyncio's messages show it. */
export function currentThreadName(): string {
  // Deno reports isMainThread=true inside Web Workers; Bun has no
  // WorkerGlobalScope: ask both.
  const scope = globalThis as { WorkerGlobalScope?: unknown; name?: unknown };
  const inWorker = !isMainThread ||
    (typeof scope.WorkerGlobalScope === "function" &&
      globalThis instanceof (scope.WorkerGlobalScope as typeof Object));
  if (!inWorker) return "MainThread";
  return typeof scope.name === "string" && scope.name !== ""
    ? scope.name
    : `Worker-${threadId}`;
}

// ---------------------------------------------------------------------------
// Policy.

/** The loop policy interface (asyncio.AbstractEventLoopPolicy). */
export abstract class AbstractEventLoopPolicy {
  /** The current loop of this thread. */
  getEventLoop(): AbstractEventLoop {
    return notImplemented("getEventLoop");
  }
  /** Sets the current loop of this thread (null: none). */
  setEventLoop(_loop: AbstractEventLoop | null): void {
    notImplemented("setEventLoop");
  }
  /** Creates a new loop. */
  newEventLoop(): AbstractEventLoop {
    return notImplemented("newEventLoop");
  }
}

/**
 * A policy with one current loop per thread, created on first use
 * (asyncio.BaseDefaultEventLoopPolicy); subclasses say how to make a loop.
 */
export abstract class BaseDefaultEventLoopPolicy
  extends AbstractEventLoopPolicy {
  private _loop: AbstractEventLoop | null = null;
  private _setCalled = false;

  /** Makes a new loop of the policy's kind. */
  protected abstract _loopFactory(): AbstractEventLoop;

  /**
   * The current loop; the first call in a thread that never called
   * setEventLoop() creates and sets one. After setEventLoop(null) it
   * throws RuntimeError.
   */
  override getEventLoop(): AbstractEventLoop {
    if (this._loop === null && !this._setCalled) {
      this.setEventLoop(this.newEventLoop());
    }
    if (this._loop === null) {
      throw new RuntimeError(
        `There is no current event loop in thread '${currentThreadName()}'.`,
      );
    }
    return this._loop;
  }

  /** Sets this thread's current loop (null: none, and getEventLoop() then throws). */
  override setEventLoop(loop: AbstractEventLoop | null): void {
    this._setCalled = true;
    if (loop !== null && !(loop instanceof AbstractEventLoop)) {
      throw new TypeError(
        `loop must be an instance of AbstractEventLoop or None, not '${
          typeName(loop)
        }'`,
      );
    }
    this._loop = loop;
  }

  /** Creates a loop of the policy's kind; it is not made current. */
  override newEventLoop(): AbstractEventLoop {
    return this._loopFactory();
  }
}

/** The type name asyncio's messages show for a value. */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    return (value as object).constructor?.name ?? "object";
  }
  return typeof value;
}

let policy: AbstractEventLoopPolicy | null = null;
let defaultPolicyFactory: (() => AbstractEventLoopPolicy) | null = null;

/** @internal Registers how to make the default policy. */
export function _setDefaultPolicyFactory(
  factory: () => AbstractEventLoopPolicy,
): void {
  defaultPolicyFactory = factory;
}

/** The current policy, creating the default one on first use. */
export function getEventLoopPolicy(): AbstractEventLoopPolicy {
  if (policy === null) {
    if (defaultPolicyFactory === null) {
      throw new RuntimeError("no default event loop policy is registered");
    }
    policy = defaultPolicyFactory();
  }
  return policy;
}

/** Sets the policy; null restores a fresh default one. */
export function setEventLoopPolicy(next: AbstractEventLoopPolicy | null): void {
  if (next !== null && !(next instanceof AbstractEventLoopPolicy)) {
    throw new TypeError(
      `policy must be an instance of AbstractEventLoopPolicy or None, not '${
        typeName(next)
      }'`,
    );
  }
  policy = next;
}

/** The running loop if there is one, else the policy's current loop. */
export function getEventLoop(): AbstractEventLoop {
  return runningLoop ?? getEventLoopPolicy().getEventLoop();
}

/** Sets the current loop of this thread through the policy. */
export function setEventLoop(loop: AbstractEventLoop | null): void {
  getEventLoopPolicy().setEventLoop(loop);
}

/** Creates a new loop through the policy (it is not made current). */
export function newEventLoop(): AbstractEventLoop {
  return getEventLoopPolicy().newEventLoop();
}
