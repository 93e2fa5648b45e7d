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
import {
  type AddrInfo,
  addrInfoRequest,
  createResolver,
  nameInfoRequest,
  type Resolver,
} from "../ffi/dns.ts";
import { pread, seek } from "../ffi/os.ts";
import type { Socket } from "../ffi/socket.ts";
import {
  type Address,
  AF_INET6,
  formatAddress,
  ipFamily,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SHUT_RD,
  SOCK_DGRAM,
  SOCK_STREAM,
} from "../ffi/sys/sockaddr.ts";
import { BaseEventLoop } from "./base_events.ts";
import { RuntimeError } from "./exceptions.ts";
import type { Future } from "./futures.ts";
import * as net from "./net.ts";
import type { BaseProtocol, DatagramProtocol, Protocol } from "./protocols.ts";
import {
  type BaseSocketTransport,
  MAX_READ_SIZE,
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
  /**
   * @internal Sockets that calls in progress made or took (connects,
   * servers) and no transport owns yet: close() closes them.
   */
  readonly _openSockets: Set<Socket> = new Set();
  /** Listening sockets being served, with their reader's token. */
  private readonly _listening = new Map<Socket, Handle | null>();
  private _resolver: Resolver | null = null;

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

  /**
   * Sends `count` bytes (null: to the end) of `file` (an fd or an object
   * with fileno()) from `offset` over `sock` with sendfile(2), or by
   * reading and sending when the kernel cannot (unless `fallback: false`).
   */
  override sockSendfile(
    sock: Socket,
    file: FileLike,
    offset = 0,
    count: number | null = null,
    options: net.SendfileOptions = {},
  ): Promise<number> {
    return this._spawn(() => {
      ops.checkSocket(sock, "sockSendfile");
      this._ensureFdNoTransport(sock.fileno());
      return net.sockSendfile(
        this,
        sock,
        file,
        offset,
        count,
        options,
        pread,
        seek,
      );
    });
  }

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
    options: net.GetaddrinfoOptions = {},
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
    this._resolver ??= createResolver();
    // A cancel reaches the resolver: a lookup not started yet is dropped.
    const abort = new AbortController();
    fut.addDoneCallback(() => {
      if (fut.cancelled()) abort.abort();
    });
    this._resolver.getaddrinfo(req, abort.signal).then(
      (infos) => {
        if (!fut.done() && !this.isClosed()) fut.setResult(infos);
      },
      (error) => {
        if (!fut.done() && !this.isClosed()) fut.setException(error);
      },
    );
    return fut;
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
    this._resolver ??= createResolver();
    // A cancel reaches the resolver: a lookup not started yet is dropped.
    const abort = new AbortController();
    fut.addDoneCallback(() => {
      if (fut.cancelled()) abort.abort();
    });
    this._resolver.getnameinfo(req, abort.signal).then(
      (value) => {
        if (!fut.done() && !this.isClosed()) fut.setResult(value);
      },
      (error) => {
        if (!fut.done() && !this.isClosed()) fut.setException(error);
      },
    );
    return fut;
  }

  // -- connections and servers ---------------------------------------------

  /**
   * Connects to `host`:`port` (or wraps `options.sock`) and makes a
   * protocol from `protocolFactory`: resolves with `[transport, protocol]`
   * once connectionMade() ran.
   */
  override createConnection<P extends BaseProtocol>(
    protocolFactory: () => P,
    host?: string | null,
    port?: number | string | null,
    options?: net.CreateConnectionOptions,
  ): Promise<[Transport, P]> {
    return this._spawn(() =>
      net.createConnection(
        this,
        protocolFactory,
        host,
        port,
        options,
      )
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
    options?: net.CreateServerOptions,
  ): Promise<Server> {
    return this._spawn(() =>
      net.createServer(this, protocolFactory, host, port, options)
    );
  }

  /** Connects to a Unix socket at `path` (or wraps `options.sock`). */
  override createUnixConnection<P extends BaseProtocol>(
    protocolFactory: () => P,
    path?: string | null,
    options?: { sock?: Socket },
  ): Promise<[Transport, P]> {
    return this._spawn(() =>
      net.createUnixConnection(this, protocolFactory, path, options)
    );
  }

  /** Listens on a Unix socket at `path` ("\0name": abstract namespace). */
  override createUnixServer(
    protocolFactory: () => BaseProtocol,
    path?: string | null,
    options?: net.CreateUnixServerOptions,
  ): Promise<Server> {
    return this._spawn(() =>
      net.createUnixServer(this, protocolFactory, path, options)
    );
  }

  /** Wraps a socket accepted elsewhere in a transport. */
  override connectAcceptedSocket<P extends BaseProtocol>(
    protocolFactory: () => P,
    sock: Socket,
  ): Promise<[Transport, P]> {
    return this._spawn(() =>
      net.connectAcceptedSocket(this, protocolFactory, sock)
    );
  }

  /** Creates a UDP (or Unix datagram) endpoint. */
  override createDatagramEndpoint<P extends DatagramProtocol>(
    protocolFactory: () => P,
    options?: net.DatagramEndpointOptions,
  ): Promise<[DatagramTransport, P]> {
    return this._spawn(() =>
      net.createDatagramEndpoint(this, protocolFactory, options)
    );
  }

  /**
   * Sends a file over a stream transport with sendfile(2) (or reading and
   * writing, unless `fallback: false`); resolves with the bytes sent.
   */
  override sendfile(
    transport: Transport,
    file: FileLike,
    offset = 0,
    count: number | null = null,
    options: net.SendfileOptions = {},
  ): Promise<number> {
    return this._spawn(() =>
      net.transportSendfile(
        transport,
        file,
        offset,
        count,
        options,
        pread,
        seek,
      )
    );
  }

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
      protocol = net.makeProtocol(protocolFactory, "stream");
    } catch (error) {
      conn.close();
      this.callExceptionHandler({
        message: "Error on transport creation for incoming connection",
        exception: error,
        socket: conn,
      });
      return;
    }
    new SocketTransport(
      this,
      conn,
      protocol as Protocol,
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
    for (const sock of this._openSockets) sock.close();
    this._openSockets.clear();
    this._resolver?.close();
    this._resolver = null;
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
