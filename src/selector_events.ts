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
import { seek } from "../ffi/os.ts";
import type { Socket } from "../ffi/socket.ts";
import { type Address, SHUT_RD } from "../ffi/sys/sockaddr.ts";
import { BaseEventLoop } from "./base_events.ts";
import {
  OSError,
  RuntimeError,
  SendfileNotAvailableError,
} from "./exceptions.ts";
import type { Future } from "./futures.ts";
import {
  type BaseProtocol,
  type DatagramProtocol,
  makeProtocol,
  type Protocol,
} from "./protocols.ts";
import {
  type BaseSocketTransport,
  MAX_READ_SIZE,
  SocketDatagramTransport,
  SocketTransport,
} from "./selector_transports.ts";
import type { Server } from "./server.ts";
import * as ops from "./sock_ops.ts";
import type { DatagramTransport, Transport } from "./transports.ts";
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
} from "../ffi/selector.ts";

type Watchers = [reader: Handle | null, writer: Handle | null];

/** After running out of descriptors, accepting resumes this many ms later. */
export const ACCEPT_RETRY_DELAY = 1000;

const RESOURCE_ERRORS = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/** The bytes of one RemoteCallback queue, unless told otherwise. */
export const REMOTE_QUEUE_BYTES = 64 * 1024;

/** Options of the {@link SelectorEventLoop} constructor. */
export interface SelectorEventLoopOptions {
  /**
   * The waker for callSoonThreadsafe() and remote callbacks (default: the
   * best for this OS; the loop closes it). Tests use it to run both kinds.
   */
  waker?: Waker;
}

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
  /** @internal Live transports by fd: their fds are off limits to addReader & co. */
  readonly _transports: Map<number, BaseSocketTransport> = new Map();
  /** @internal One read buffer for every transport of this loop. */
  readonly _readBuffer: Uint8Array = new Uint8Array(MAX_READ_SIZE);
  /** Listening sockets being served, with their reader's token. */
  private readonly _listening = new Map<Socket, Handle | null>();

  /** Creates a loop over `selector` (default: the best one for this OS). */
  constructor(selector?: Selector, options: SelectorEventLoopOptions = {}) {
    super();
    this._selector = (selector ?? new DefaultSelector()) as Selector<Watchers>;
    try {
      this._waker = options.waker ?? loopPlatform.createWaker();
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
      wakeFd: this._waker.wakeFd,
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
    this._ensureFdNoTransport(fd);
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
    this._ensureFdNoTransport(fd);
    this._addWatcher(fd, callback, args, EVENT_WRITE, "addWriter");
  }

  /** Stops watching `fd` for reading; returns whether a reader was removed. */
  override removeReader(fd: FileLike): boolean {
    this._ensureFdNoTransport(fd);
    return this._removeWatcher(fd, EVENT_READ);
  }

  /** Stops watching `fd` for writing; returns whether a writer was removed. */
  override removeWriter(fd: FileLike): boolean {
    this._ensureFdNoTransport(fd);
    return this._removeWatcher(fd, EVENT_WRITE);
  }

  /**
   * @internal addReader for transports and socket ops (no ownership
   * check). The returned handle is the registration's token: only a
   * `_removeReader(fd, token)` with this very handle removes it.
   */
  _addReader(fd: number, callback: Callback): Handle {
    return this._addWatcher(fd, callback, [], EVENT_READ, "addReader");
  }

  /** @internal addWriter for transports; returns the token. */
  _addWriter(fd: number, callback: Callback): Handle {
    return this._addWatcher(fd, callback, [], EVENT_WRITE, "addWriter");
  }

  /**
   * @internal Removes the reader of `fd` if it is still `token`. Owners
   * that hold a token can never remove a later owner's watcher, even
   * when the kernel has given their fd number to a new socket.
   */
  _removeReader(fd: number, token: Handle | null): boolean {
    if (token === null) return false;
    return this._removeWatcher(fd, EVENT_READ, token);
  }

  /** @internal Removes the writer of `fd` if it is still `token`. */
  _removeWriter(fd: number, token: Handle | null): boolean {
    if (token === null) return false;
    return this._removeWatcher(fd, EVENT_WRITE, token);
  }

  /** @internal RuntimeError when a live transport owns `fd`. */
  _ensureFdNoTransport(fileobj: FileLike): void {
    if (this._transports.size === 0) return;
    const fd = fileobjToFd(fileobj);
    const transport = this._transports.get(fd);
    if (transport !== undefined && !transport._isLost()) {
      throw new RuntimeError(
        `File descriptor ${fd} is used by transport ${transport}`,
      );
    }
  }

  /** Adds a reader or writer, sharing the fd's registration. */
  private _addWatcher(
    fileobj: FileLike,
    callback: Callback,
    args: unknown[],
    event: number,
    method: string,
  ): Handle {
    this._checkClosed();
    const fd = fileobjToFd(fileobj);
    if (fd === this._waker.fd) {
      throw new RuntimeError(
        `File descriptor ${fd} is used by the loop itself`,
      );
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
    return handle;
  }

  /**
   * Removes a reader or writer (only `token`, when given); unregisters the
   * fd when nothing is left.
   */
  private _removeWatcher(
    fileobj: FileLike,
    event: number,
    token?: Handle,
  ): boolean {
    if (this.isClosed()) return false;
    const fd = fileobjToFd(fileobj);
    const key = this._selector.get(fd);
    if (key === undefined) return false;
    const [reader, writer] = key.data;
    const old = event === EVENT_READ ? reader : writer;
    if (token !== undefined && old !== token) return false;
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

  // -- socket operations ----------------------------------------------------

  /** Receives up to `nbytes` bytes from `sock` (an empty array at EOF). */
  override sockRecv(sock: Socket, nbytes: number): Future<Uint8Array> {
    this._checkClosed();
    return ops.sockRecv(this, sock, nbytes);
  }

  /** Receives into `buf`; resolves with the count (0 at EOF). */
  override sockRecvInto(sock: Socket, buf: Uint8Array): Future<number> {
    this._checkClosed();
    return ops.sockRecvInto(this, sock, buf);
  }

  /** Receives a datagram of up to `bufsize` bytes: `[data, sender]`. */
  override sockRecvfrom(
    sock: Socket,
    bufsize: number,
  ): Future<[Uint8Array, Address]> {
    this._checkClosed();
    return ops.sockRecvfrom(this, sock, bufsize);
  }

  /** Receives a datagram into `buf`: `[count, sender]`. */
  override sockRecvfromInto(
    sock: Socket,
    buf: Uint8Array,
    nbytes = 0,
  ): Future<[number, Address]> {
    this._checkClosed();
    return ops.sockRecvfromInto(this, sock, buf, nbytes);
  }

  /** Sends all of `data`. */
  override sockSendall(sock: Socket, data: Uint8Array): Future<void> {
    this._checkClosed();
    return ops.sockSendall(this, sock, data);
  }

  /** Sends one datagram to `address`; resolves with the count. */
  override sockSendto(
    sock: Socket,
    data: Uint8Array,
    address: Address,
  ): Future<number> {
    this._checkClosed();
    return ops.sockSendto(this, sock, data, address);
  }

  /** Connects `sock` to `address` (host names are resolved first). */
  override sockConnect(sock: Socket, address: Address): Future<void> {
    this._checkClosed();
    return ops.sockConnect(this, sock, address);
  }

  /** Accepts a connection on a listening `sock`: `[conn, address]`. */
  override sockAccept(sock: Socket): Future<[Socket, Address]> {
    this._checkClosed();
    return ops.sockAccept(this, sock);
  }

  // -- the base loop's hooks -----------------------------------------------

  /** @internal A stream transport over a connected socket. */
  override _makeSocketTransport(
    sock: Socket,
    protocol: BaseProtocol,
    waiter: Future<void> | null,
    extra?: Record<string, unknown>,
    server: Server | null = null,
  ): Transport {
    return new SocketTransport(
      this,
      sock,
      protocol as Protocol,
      waiter,
      extra,
      server,
    );
  }

  /** @internal A datagram transport over a socket. */
  override _makeDatagramTransport(
    sock: Socket,
    protocol: DatagramProtocol,
    address: Address | null,
    waiter: Future<void> | null,
    extra?: Record<string, unknown>,
  ): DatagramTransport {
    return new SocketDatagramTransport(
      this,
      sock,
      protocol,
      address,
      waiter,
      extra,
    );
  }

  /**
   * @internal sendfile(2) from `fd` over `sock`, waiting for room as
   * needed; SendfileNotAvailableError when the kernel cannot send this file.
   */
  override _sockSendfileNative(
    sock: Socket,
    fd: number,
    offset: number,
    count: number | null,
  ): Promise<number> {
    ops.checkSocket(sock, "sockSendfile");
    this._ensureFdNoTransport(sock.fileno());
    return sendfileNative(sock, fd, offset, count, () => writable(this, sock));
  }

  /**
   * @internal sendfile(2) over a socket transport's socket: its buffer is
   * flushed first, reading is paused, and write() raises meanwhile; a
   * close() or abort() rejects with ConnectionError.
   */
  override async _sendfileNative(
    transport: Transport,
    fd: number,
    offset: number,
    count: number | null,
  ): Promise<number> {
    if (!(transport instanceof SocketTransport)) {
      throw new SendfileNotAvailableError(
        `${transport} is not a selector socket transport`,
      );
    }
    const wasReading = transport.isReading();
    if (wasReading) transport.pauseReading();
    try {
      await transport._makeEmptyWaiter();
      return await sendfileNative(
        transport._socket(),
        fd,
        offset,
        count,
        () => transport._waitWritable(),
      );
    } finally {
      transport._resetEmptyWaiter();
      if (wasReading && !transport.isClosing()) transport.resumeReading();
    }
  }

  // -- serving --------------------------------------------------------------

  /** @internal Accepts connections on `sock` for `server`. */
  _startServing(
    protocolFactory: () => BaseProtocol,
    sock: Socket,
    server: Server,
    backlog: number,
  ): void {
    if (sock.fileno() < 0 || this._listening.get(sock)) return;
    this._listening.set(
      sock,
      this._addReader(
        sock.fileno(),
        () => this._acceptConnections(protocolFactory, sock, server, backlog),
      ),
    );
  }

  /** Stops watching a listening socket (its own registration only). */
  private _unwatchListener(sock: Socket): void {
    const token = this._listening.get(sock) ?? null;
    if (token === null) return;
    this._listening.set(sock, null);
    this._removeReader(sock.fileno(), token);
  }

  /** @internal Stops accepting on `sock` and closes it. */
  _stopServing(sock: Socket): void {
    if (sock.fileno() >= 0) {
      this._unwatchListener(sock);
      // A poll in flight on the waiter thread holds a reference to the
      // socket, so close() alone would leave it listening until that poll
      // returns; shutdown() stops the listener now.
      try {
        sock.shutdown(SHUT_RD);
      } catch {
        // Not listening (never started): close() is enough.
      }
    }
    this._listening.delete(sock);
    this._openSockets.delete(sock);
    sock.close();
  }

  /** Accepts up to `backlog` pending connections. */
  private _acceptConnections(
    protocolFactory: () => BaseProtocol,
    sock: Socket,
    server: Server,
    backlog: number,
  ): void {
    for (let i = 0; i < Math.max(1, backlog); i++) {
      let accepted: [Socket, Address] | null;
      try {
        accepted = sock.accept();
      } catch (error) {
        const code = (error as { code?: string }).code ?? "";
        // The peer gave up before we accepted: nothing to report (asyncio
        // ignores ConnectionAbortedError here too).
        if (code === "ECONNABORTED" || code === "EPROTO") continue;
        if (!RESOURCE_ERRORS.has(code)) {
          this.callExceptionHandler({
            message: "socket.accept() failed",
            exception: error,
            socket: sock,
          });
          return;
        }
        this.callExceptionHandler({
          message: "socket.accept() out of system resource",
          exception: error,
          socket: sock,
        });
        this._unwatchListener(sock);
        this.callLater(
          ACCEPT_RETRY_DELAY,
          () => {
            if (server.isServing() && sock.fileno() >= 0) {
              this._startServing(protocolFactory, sock, server, backlog);
            }
          },
        );
        return;
      }
      if (accepted === null) return;
      this._acceptedConnection(
        protocolFactory,
        accepted[0],
        accepted[1],
        server,
      );
    }
  }

  /** Makes the protocol and transport of an accepted connection. */
  private _acceptedConnection(
    protocolFactory: () => BaseProtocol,
    conn: Socket,
    address: Address,
    server: Server,
  ): void {
    let protocol: BaseProtocol;
    try {
      protocol = makeProtocol(protocolFactory, "stream");
    } catch (error) {
      conn.close();
      this.callExceptionHandler({
        message: "Error on transport creation for incoming connection",
        exception: error,
        socket: conn,
      });
      return;
    }
    this._makeSocketTransport(
      conn,
      protocol,
      null,
      { peername: address },
      server,
    );
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
    // Nothing may outlive the loop: drop connections and listeners.
    for (const transport of this._transports.values()) {
      transport._closeOnLoopClose();
    }
    this._transports.clear();
    for (const sock of this._listening.keys()) sock.close();
    this._listening.clear();
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

/** Errors that mean "this file cannot go through sendfile(2)". */
const NOT_SENDFILE_ABLE = new Set(["EINVAL", "ENOSYS", "EOPNOTSUPP", "ESPIPE"]);

/**
 * sendfile(2) from `fd` at `offset` over `sock` until `count` bytes (null:
 * the end of the file) are sent, calling `waitWritable` whenever the
 * socket is full. SendfileNotAvailableError when the first call says this
 * file cannot be sent so. The file's position is left after what was sent.
 */
async function sendfileNative(
  sock: Socket,
  fd: number,
  offset: number,
  count: number | null,
  waitWritable: () => PromiseLike<void>,
): Promise<number> {
  let total = 0;
  try {
    while (count === null || total < count) {
      const want = count === null ? 0x7fff0000 : count - total;
      let n: number | null;
      try {
        n = sock.sendfile(fd, offset + total, want);
      } catch (error) {
        if (
          total === 0 && error instanceof OSError &&
          NOT_SENDFILE_ABLE.has(error.code)
        ) {
          throw new SendfileNotAvailableError(
            `sendfile(2) cannot send fd ${fd}: ${error.message}`,
          );
        }
        throw error;
      }
      if (n === null) {
        await waitWritable();
        continue;
      }
      if (n === 0) break; // end of file
      total += n;
    }
  } finally {
    if (total > 0) seek(fd, offset + total);
  }
  return total;
}

/** Resolves when `sock` is writable (its own registration, by token). */
function writable(loop: SelectorEventLoop, sock: Socket): Promise<void> {
  const fut = loop.createFuture<void>();
  const fd = sock.fileno();
  const handle = loop._addWriter(fd, () => {
    if (!fut.done()) fut.setResult(undefined);
  });
  fut.addDoneCallback(() => loop._removeWriter(fd, handle));
  return fut;
}
