/**
 * Socket transports over the selector loop (asyncio's
 * `_SelectorSocketTransport` and `_SelectorDatagramTransport`).
 *
 * A stream transport reads when its fd is readable (up to 256 KiB per
 * event, or into a BufferedProtocol's buffer), sends at once on write()
 * and buffers only what the kernel did not take, then watches for
 * writability until the buffer is empty. Flow control calls the
 * protocol's pauseWriting()/resumeWriting() at the water marks. After
 * connectionLost() no protocol method is called again.
 *
 * @module
 */
import type { Socket } from "../ffi/socket.ts";
import { bytesOf } from "../ffi/validate.ts";
import {
  type Address,
  AF_INET,
  AF_INET6,
  formatAddress,
  IPPROTO_TCP,
  SHUT_WR,
  SOCK_STREAM,
  TCP_NODELAY,
} from "../ffi/sys/sockaddr.ts";
import { concatBytes, copyBytes } from "./bytes.ts";
import type { AbstractEventLoop, Handle } from "./events.ts";
import { ConnectionError, OSError, RuntimeError } from "./exceptions.ts";
import type { Future } from "./futures.ts";
import { FlowControl } from "./flow_control.ts";
import { logger } from "./log.ts";
import type { FdWatchHooks } from "./sock_ops.ts";
import {
  type BaseProtocol,
  BufferedProtocol,
  type DatagramProtocol,
  type Protocol,
} from "./protocols.ts";
import {
  type BaseTransport,
  DatagramTransport,
  Transport,
} from "./transports.ts";

/** Bytes read per readable event (asyncio's max_size). */
export const MAX_READ_SIZE = 256 * 1024;
/** After this many writes to a lost connection, each write is logged. */
export const LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5;

/** What transports need from the loop. */
export interface TransportLoop extends AbstractEventLoop, FdWatchHooks {
  /** Registers a transport as the owner of its fd. */
  _transports: Map<number, BaseSocketTransport>;
  /** Sockets the loop closes at close() until a transport takes them. */
  _openSockets: Set<Socket>;
}

/** A server that counts its connections (see Server). */
export interface TransportServer {
  /** A transport of this server was created. */
  _attach(transport: BaseSocketTransport): void;
  /** A transport of this server was closed. */
  _detach(transport: BaseSocketTransport): void;
}

function isConnectionError(error: unknown): boolean {
  return error instanceof OSError &&
    (error.code === "EPIPE" || error.code === "ECONNRESET" ||
      error.code === "ECONNABORTED" || error.code === "ESHUTDOWN" ||
      error.code === "ECONNREFUSED" || error.code === "ETIMEDOUT" ||
      error.code === "ENOTCONN");
}

/**
 * What every socket transport shares: closing, extra info, flow control,
 * and the watchers on its socket.
 *
 * A transport watches its fd only through {@link _watchReading} /
 * {@link _watchWriting}, which keep the registration's token, and
 * removes only that token. Once the socket is closed (connectionLost, or
 * the loop's close) the transport never registers, removes or unmaps
 * anything for that fd number again: the kernel hands the number to the
 * next socket at once.
 */
export abstract class BaseSocketTransport extends Transport {
  protected _loop: TransportLoop;
  /** The socket (closed, fd -1, once the connection is lost). */
  protected _sock: Socket;
  protected readonly _sockFd: number;
  protected _protocol: BaseProtocol | null;
  protected _server: TransportServer | null;
  protected _closing = false;
  protected _connLost = 0;
  /** Water marks and pauseWriting()/resumeWriting() for the buffer. */
  protected readonly _flow: FlowControl;
  private readonly _extra: Record<string, unknown>;
  private _readToken: Handle | null = null;
  private _writeToken: Handle | null = null;

  constructor(
    loop: TransportLoop,
    sock: Socket,
    protocol: BaseProtocol,
    extra: Record<string, unknown> | undefined,
    server: TransportServer | null,
  ) {
    super();
    this._loop = loop;
    this._flow = new FlowControl({
      loop,
      transport: () => this._publicTransport(),
      protocol: () => this._protocol,
      bufferSize: () => this.getWriteBufferSize(),
    });
    this._sock = sock;
    this._sockFd = sock.fileno();
    this._protocol = protocol;
    this._server = server;
    this._extra = { ...extra, socket: sock };
    if (!("sockname" in this._extra)) {
      try {
        this._extra.sockname = sock.getsockname();
      } catch {
        this._extra.sockname = null;
      }
    }
    if (!("peername" in this._extra)) {
      try {
        this._extra.peername = sock.getpeername();
      } catch {
        this._extra.peername = null;
      }
    }
    loop._openSockets.delete(sock);
    loop._transports.set(this._sockFd, this);
    server?._attach(this);
  }

  /** "peername", "sockname", "socket", or what the creator added. */
  override getExtraInfo(name: string, defaultValue?: unknown): unknown {
    return name in this._extra ? this._extra[name] : defaultValue;
  }

  override isClosing(): boolean {
    return this._closing;
  }

  override setProtocol(protocol: BaseProtocol): void {
    this._protocol = protocol;
  }

  override getProtocol(): BaseProtocol {
    return this._protocol!;
  }

  /** Bytes waiting to be sent. */
  abstract override getWriteBufferSize(): number;

  override setWriteBufferLimits(
    high?: number | null,
    low?: number | null,
  ): void {
    this._flow.setLimits(high, low);
  }

  override getWriteBufferLimits(): [number, number] {
    return this._flow.limits();
  }

  /** @internal Whether the protocol is paused by flow control. */
  _isProtocolPaused(): boolean {
    return this._flow.paused;
  }

  /** The object users know as the transport (exception contexts). */
  protected _publicTransport(): BaseTransport {
    return this;
  }

  /** Watches the socket for reading (no-op once the socket is closed). */
  protected _watchReading(callback: () => void): void {
    if (this._sock.closed || this._readToken !== null) return;
    this._readToken = this._loop._addReader(this._sockFd, callback);
  }

  /** Stops this transport's reader (never another owner's). */
  protected _unwatchReading(): void {
    const token = this._readToken;
    this._readToken = null;
    this._loop._removeReader(this._sockFd, token);
  }

  /** Watches the socket for writing (no-op once the socket is closed). */
  protected _watchWriting(callback: () => void): void {
    if (this._sock.closed || this._writeToken !== null) return;
    this._writeToken = this._loop._addWriter(this._sockFd, callback);
  }

  /** Stops this transport's writer (never another owner's). */
  protected _unwatchWriting(): void {
    const token = this._writeToken;
    this._writeToken = null;
    this._loop._removeWriter(this._sockFd, token);
  }

  /** Closes at once, dropping buffered data. */
  override abort(): void {
    this._forceClose(null);
  }

  /** An error in I/O: reported (unless a plain connection error), then closed. */
  protected _fatalError(error: unknown, message: string): void {
    if (isConnectionError(error)) {
      if (this._loop.getDebug()) {
        logger.warning(`${this}: ${message}: ${error}`);
      }
    } else {
      this._loop.callExceptionHandler({
        message,
        exception: error,
        transport: this._publicTransport(),
        protocol: this._protocol,
      });
    }
    this._forceClose(error as Error);
  }

  /** Drops the buffer and watchers; connectionLost(error) comes next. */
  protected _forceClose(error: Error | null): void {
    if (this._connLost) return;
    this._clearBuffer();
    this._unwatchWriting();
    if (!this._closing) {
      this._closing = true;
      this._unwatchReading();
    }
    this._connLost++;
    this._loop.callSoon(() => this._callConnectionLost(error));
  }

  /** Empties the write buffer. */
  protected abstract _clearBuffer(): void;

  /** @internal Whether connectionLost() has run (the fd may be reused). */
  _isLost(): boolean {
    return this._sock.closed;
  }

  /** @internal The loop is closing: release the socket, call nothing. */
  _closeOnLoopClose(): void {
    this._closing = true;
    this._clearBuffer();
    this._releaseSocket();
  }

  /** Tells the protocol, closes the socket, leaves the server. */
  protected _callConnectionLost(error: Error | null): void {
    if (this._sock.closed) return;
    try {
      this._protocol?.connectionLost(error);
    } finally {
      this._releaseSocket();
    }
  }

  /**
   * Gives up the socket, once: its watchers (by token), the loop's map
   * entry (only if it is still ours), the descriptor, the protocol and
   * the server. From here on every write is dropped as "connection lost".
   */
  private _releaseSocket(): void {
    if (this._sock.closed) return;
    this._unwatchReading();
    this._unwatchWriting();
    if (this._loop._transports.get(this._sockFd) === this) {
      this._loop._transports.delete(this._sockFd);
    }
    this._sock.close();
    if (this._connLost === 0) this._connLost = 1;
    this._protocol = null;
    const server = this._server;
    this._server = null;
    server?._detach(this);
  }

  override toString(): string {
    const state = this._sock.closed
      ? "closed"
      : this._closing
      ? "closing"
      : "open";
    const peer = this._extra.peername as Address | null;
    return `<${this._publicTransport().constructor.name} fd=${this._sockFd} ${state}${
      peer ? ` peer=${formatAddress(peer)}` : ""
    }>`;
  }
}

/** Disables Nagle on TCP sockets, as asyncio does. */
function setNoDelay(sock: Socket): void {
  if (
    (sock.family === AF_INET || sock.family === AF_INET6) &&
    sock.type === SOCK_STREAM
  ) {
    try {
      sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    } catch {
      // Not every stream socket is TCP (SCTP); ignore.
    }
  }
}

/** A TCP or Unix stream connection. */
export class SocketTransport extends BaseSocketTransport {
  private _chunks: Uint8Array[] = [];
  private _head = 0;
  private _bufferSize = 0;
  private _eof = false;
  private _paused = false;
  /** @internal loop.sendfile() may use sendfile(2) on its socket. */
  readonly _sendfileCompatible = "native" as const;
  private _emptyWaiter: Future<void> | null = null;
  private _sendfileWait: Future<void> | null = null;
  private _buffered: boolean;

  /**
   * Wraps a connected socket; connectionMade() runs on the next
   * iteration, then reading starts, then `waiter` resolves.
   */
  constructor(
    loop: TransportLoop,
    sock: Socket,
    protocol: Protocol | BufferedProtocol,
    waiter: Future<void> | null,
    extra?: Record<string, unknown>,
    server: TransportServer | null = null,
  ) {
    super(loop, sock, protocol, extra, server);
    this._buffered = protocol instanceof BufferedProtocol;
    setNoDelay(sock);
    loop.callSoon(() => this._start(waiter));
  }

  /**
   * connectionMade(), then reading, then the waiter, as asyncio schedules
   * them. A connectionMade() that throws is reported to the exception
   * handler like any callback error; the connection goes on.
   */
  private _start(waiter: Future<void> | null): void {
    if (this._connLost) {
      if (waiter && !waiter.done()) waiter.setResult(undefined);
      return;
    }
    callProtocol(this._loop, this, this._protocol!, "connectionMade");
    if (!this._closing && !this._paused) this._watchReading(this._readReady);
    if (waiter && !waiter.done()) waiter.setResult(undefined);
  }

  override setProtocol(protocol: BaseProtocol): void {
    this._buffered = protocol instanceof BufferedProtocol;
    super.setProtocol(protocol);
  }

  override isReading(): boolean {
    return !this._paused && !this._closing;
  }

  override pauseReading(): void {
    if (this._closing || this._paused) return;
    this._paused = true;
    this._unwatchReading();
  }

  override resumeReading(): void {
    if (this._closing || !this._paused) return;
    this._paused = false;
    this._watchReading(this._readReady);
  }

  // -- reading --------------------------------------------------------------

  private readonly _readReady = (): void => {
    if (this._connLost) return;
    if (this._buffered) this._readIntoProtocolBuffer();
    else this._readToData();
  };

  /**
   * Receives into `buf`: the byte count, or null when there is nothing to
   * hand on (it would block, or EOF and errors were dealt with here).
   */
  private _receive(buf: Uint8Array): number | null {
    let n: number | null;
    try {
      n = this._sock.recvInto(buf);
    } catch (error) {
      this._fatalError(error, "Fatal read error on socket transport");
      return null;
    }
    if (n === 0) {
      this._readReadyEof();
      return null;
    }
    return n;
  }

  /** Reads into the loop's buffer and hands a copy to dataReceived(). */
  private _readToData(): void {
    const buf = this._loop._readBuffer;
    const n = this._receive(buf);
    if (n === null) return;
    const data = copyBytes(buf, n);
    try {
      (this._protocol as Protocol).dataReceived(data);
    } catch (error) {
      this._fatalError(
        error,
        "Fatal error: protocol.dataReceived() call failed.",
      );
    }
  }

  /** Reads straight into a BufferedProtocol's buffer. */
  private _readIntoProtocolBuffer(): void {
    const protocol = this._protocol as BufferedProtocol;
    let buf: Uint8Array;
    try {
      buf = protocol.getBuffer(-1);
      if (!(buf instanceof Uint8Array) || buf.length === 0) {
        throw new RuntimeError("getBuffer() returned an empty buffer");
      }
    } catch (error) {
      this._fatalError(error, "Fatal error: protocol.getBuffer() call failed.");
      return;
    }
    const n = this._receive(buf);
    if (n === null) return;
    try {
      protocol.bufferUpdated(n);
    } catch (error) {
      this._fatalError(
        error,
        "Fatal error: protocol.bufferUpdated() call failed.",
      );
    }
  }

  private _readReadyEof(): void {
    let keepOpen: unknown;
    try {
      keepOpen = (this._protocol as Protocol).eofReceived();
    } catch (error) {
      this._fatalError(
        error,
        "Fatal error: protocol.eofReceived() call failed.",
      );
      return;
    }
    if (keepOpen === true) {
      // Half-closed: stop reading (it would report EOF forever), keep writing.
      this._unwatchReading();
    } else this.close();
  }

  // -- writing --------------------------------------------------------------

  override getWriteBufferSize(): number {
    return this._bufferSize;
  }

  /** Sends `data` now, buffering what the kernel does not take. */
  override write(data: Uint8Array): void {
    const bytes = bytesOf(data);
    if (this._eof) {
      throw new RuntimeError("Cannot call write() after writeEof()");
    }
    if (this._emptyWaiter !== null) {
      throw new RuntimeError("unable to write; sendfile is in progress");
    }
    if (bytes.length === 0) return;
    if (this._connLost) {
      if (this._connLost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
        logger.warning("socket.send() raised exception.");
      }
      this._connLost++;
      return;
    }
    let rest = bytes;
    if (this._bufferSize === 0) {
      let n: number | null;
      try {
        n = this._sock.send(bytes);
      } catch (error) {
        this._fatalError(error, "Fatal write error on socket transport");
        return;
      }
      if (n === bytes.length) return;
      rest = n === null ? bytes : bytes.subarray(n);
      this._watchWriting(this._writeReady);
    }
    // The caller may reuse its array: keep a copy.
    this._chunks.push(rest.slice());
    this._bufferSize += rest.length;
    this._flow.maybePause();
  }

  override writelines(list: Iterable<Uint8Array>): void {
    const parts = [...list].map((data) => bytesOf(data));
    if (parts.length === 1) return this.write(parts[0]);
    this.write(concatBytes(parts));
  }

  private readonly _writeReady = (): void => {
    if (this._connLost) return;
    while (this._bufferSize > 0) {
      const chunk = this._nextChunk();
      let n: number | null;
      try {
        n = this._sock.send(chunk);
      } catch (error) {
        this._unwatchWriting();
        this._clearBuffer();
        this._fatalError(error, "Fatal write error on socket transport");
        return;
      }
      if (n === null) break;
      this._consume(n);
      if (n < chunk.length) break;
    }
    this._flow.maybeResume();
    if (this._bufferSize > 0) return;
    this._unwatchWriting();
    if (this._emptyWaiter !== null && !this._emptyWaiter.done()) {
      this._emptyWaiter.setResult(undefined);
    }
    if (this._closing) {
      this._connLost++;
      this._callConnectionLost(null);
    } else if (this._eof) this._shutdownWrite();
  };

  /** The bytes to send next: small chunks are joined into one send. */
  private _nextChunk(): Uint8Array {
    const remaining = this._chunks.length - this._head;
    const first = this._chunks[this._head];
    if (remaining === 1 || first.length >= MAX_READ_SIZE) return first;
    let total = 0;
    let end = this._head;
    while (end < this._chunks.length && total < MAX_READ_SIZE) {
      total += this._chunks[end++].length;
    }
    const joined = concatBytes(this._chunks.slice(this._head, end));
    this._chunks.splice(this._head, end - this._head, joined);
    return joined;
  }

  /** Drops `n` sent bytes from the front of the buffer. */
  private _consume(n: number): void {
    this._bufferSize -= n;
    const chunk = this._chunks[this._head];
    if (n < chunk.length) {
      this._chunks[this._head] = chunk.subarray(n);
      return;
    }
    this._head++;
    if (this._head === this._chunks.length) {
      this._chunks.length = 0;
      this._head = 0;
    } else if (this._head > 64 && this._head * 2 > this._chunks.length) {
      this._chunks = this._chunks.slice(this._head);
      this._head = 0;
    }
  }

  protected _clearBuffer(): void {
    this._chunks = [];
    this._head = 0;
    this._bufferSize = 0;
  }

  private _shutdownWrite(): void {
    try {
      this._sock.shutdown(SHUT_WR);
    } catch (error) {
      this._fatalError(error, "Fatal error on shutdown(SHUT_WR)");
    }
  }

  override canWriteEof(): boolean {
    return true;
  }

  /** Sends EOF once the buffered data is out; reading goes on. */
  override writeEof(): void {
    if (this._closing || this._eof) return;
    this._eof = true;
    if (this._bufferSize === 0) this._shutdownWrite();
  }

  /**
   * Stops reading; sends what is buffered, then closes and calls
   * connectionLost(null) on the next iteration.
   */
  override close(): void {
    if (this._closing) return;
    this._closing = true;
    this._unwatchReading();
    this._failSendfile();
    if (this._bufferSize === 0) {
      this._connLost++;
      this._unwatchWriting();
      this._loop.callSoon(() => this._callConnectionLost(null));
    }
  }

  protected override _forceClose(error: Error | null): void {
    this._failSendfile();
    super._forceClose(error);
  }

  // -- sendfile -------------------------------------------------------------

  /**
   * Starts a sendfile: from now until {@link _resetEmptyWaiter}, write()
   * raises RuntimeError. Resolves when the write buffer is empty; rejects
   * with ConnectionError if the transport is closed first.
   */
  _makeEmptyWaiter(): Future<void> {
    if (this._emptyWaiter !== null) {
      throw new RuntimeError("Empty waiter is already set");
    }
    const waiter = this._loop.createFuture<void>();
    // Nobody may await it after a failure (the sendfile awaits it once).
    waiter.then(undefined, () => {});
    this._emptyWaiter = waiter;
    if (this._bufferSize === 0) waiter.setResult(undefined);
    return waiter;
  }

  /** Ends a sendfile's hold on write(). */
  _resetEmptyWaiter(): void {
    this._emptyWaiter = null;
    this._sendfileWait = null;
  }

  /**
   * For the sendfile in progress: resolves when the socket is writable;
   * rejects with ConnectionError once the transport is closed or closing
   * (close() and abort() end a sendfile to a peer that does not read).
   */
  _waitWritable(): Future<void> {
    const fut = this._loop.createFuture<void>();
    if (this._closing || this._sock.closed) {
      fut.setException(closedError());
      return fut;
    }
    this._sendfileWait = fut;
    this._watchWriting(() => {
      this._unwatchWriting();
      if (!fut.done()) fut.setResult(undefined);
    });
    fut.addDoneCallback(() => {
      if (this._sendfileWait === fut) {
        this._sendfileWait = null;
        this._unwatchWriting();
      }
    });
    return fut;
  }

  /** The transport closes under a sendfile: its wait fails now. */
  private _failSendfile(): void {
    const emptyWaiter = this._emptyWaiter;
    if (emptyWaiter !== null && !emptyWaiter.done()) {
      emptyWaiter.setException(closedError());
    }
    const wait = this._sendfileWait;
    this._sendfileWait = null;
    if (wait !== null && !wait.done()) {
      this._unwatchWriting();
      wait.setException(closedError());
    }
  }

  /** The socket (for sendfile). */
  _socket(): Socket {
    return this._sock;
  }
}

/** The error a sendfile gets when its transport closes under it. */
function closedError(): ConnectionError {
  return new ConnectionError(
    0,
    "ECONNABORTED",
    "Connection is closed",
    "sendfile",
    "the transport was closed during sendfile()",
  );
}

/**
 * Calls `protocol[method](transport)`; an exception goes to the loop's
 * exception handler (as asyncio's call_soon(protocol.connection_made)
 * would report it) and the connection goes on.
 */
function callProtocol(
  loop: TransportLoop,
  transport: Transport | DatagramTransport,
  protocol: BaseProtocol,
  method: "connectionMade",
): void {
  try {
    protocol[method](transport);
  } catch (error) {
    loop.callExceptionHandler({
      message: `Exception in callback ${
        protocol.constructor?.name ?? "protocol"
      }.${method}()`,
      exception: error,
      transport,
      protocol,
    });
  }
}

/** A UDP or Unix datagram endpoint. */
export class SocketDatagramTransport extends DatagramTransport {
  private readonly _base: DatagramCore;

  /** Wraps a datagram socket; `address` is the connected peer, if any. */
  constructor(
    loop: TransportLoop,
    sock: Socket,
    protocol: DatagramProtocol,
    address: Address | null,
    waiter: Future<void> | null,
    extra?: Record<string, unknown>,
  ) {
    super();
    this._base = new DatagramCore(this, loop, sock, protocol, address, extra);
    loop.callSoon(() => this._base.start(waiter));
  }

  override getExtraInfo(name: string, defaultValue?: unknown): unknown {
    return this._base.getExtraInfo(name, defaultValue);
  }
  override isClosing(): boolean {
    return this._base.isClosing();
  }
  override close(): void {
    this._base.close();
  }
  override abort(): void {
    this._base.abort();
  }
  override setProtocol(protocol: BaseProtocol): void {
    this._base.setProtocol(protocol);
  }
  override getProtocol(): BaseProtocol {
    return this._base.getProtocol();
  }
  override getWriteBufferSize(): number {
    return this._base.getWriteBufferSize();
  }
  /** Sets the water marks (see WriteTransport). */
  setWriteBufferLimits(high?: number | null, low?: number | null): void {
    this._base.setWriteBufferLimits(high, low);
  }
  /** `[low, high]`. */
  getWriteBufferLimits(): [number, number] {
    return this._base.getWriteBufferLimits();
  }
  /** Sends a datagram (to `addr`, or the connected peer). */
  override sendto(data: Uint8Array, addr?: Address | null): void {
    this._base.sendto(data, addr ?? null);
  }
  override toString(): string {
    return this._base.toString();
  }
}

/** The datagram transport's machinery, on the shared socket-transport base. */
class DatagramCore extends BaseSocketTransport {
  private _queue: [Uint8Array, Address | null][] = [];
  private _bufferSize = 0;

  constructor(
    private readonly _outer: SocketDatagramTransport,
    loop: TransportLoop,
    sock: Socket,
    protocol: DatagramProtocol,
    private readonly _address: Address | null,
    extra?: Record<string, unknown>,
  ) {
    super(loop, sock, protocol, extra, null);
  }

  protected override _publicTransport(): BaseTransport {
    return this._outer;
  }

  start(waiter: Future<void> | null): void {
    if (this._connLost) {
      if (waiter && !waiter.done()) waiter.setResult(undefined);
      return;
    }
    callProtocol(this._loop, this._outer, this._protocol!, "connectionMade");
    if (!this._closing) this._watchReading(this._readReady);
    if (waiter && !waiter.done()) waiter.setResult(undefined);
  }

  override getWriteBufferSize(): number {
    return this._bufferSize;
  }

  private readonly _readReady = (): void => {
    if (this._connLost) return;
    const buf = this._loop._readBuffer;
    let got: [number, Address] | null;
    try {
      got = this._sock.recvfromInto(buf);
    } catch (error) {
      if (error instanceof OSError) {
        (this._protocol as DatagramProtocol).errorReceived(error);
      } else this._fatalError(error, "Fatal read error on datagram transport");
      return;
    }
    if (got === null) return;
    try {
      (this._protocol as DatagramProtocol).datagramReceived(
        copyBytes(buf, got[0]),
        got[1],
      );
    } catch (error) {
      this._fatalError(
        error,
        "Fatal error: protocol.datagramReceived() call failed.",
      );
    }
  };

  sendto(data: Uint8Array, addr: Address | null): void {
    const bytes = bytesOf(data);
    if (this._address !== null && addr !== null) {
      if (formatAddress(addr) !== formatAddress(this._address)) {
        throw new RangeError(
          `Invalid address: must be null or ${formatAddress(this._address)}`,
        );
      }
      addr = null;
    }
    if (this._connLost && this._address !== null) {
      if (this._connLost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
        logger.warning("socket.sendto() raised exception.");
      }
      this._connLost++;
      return;
    }
    if (this._closing) return;
    if (this._bufferSize === 0) {
      try {
        if (this._sock.sendto(bytes, addr) !== null) return;
      } catch (error) {
        if (error instanceof OSError) {
          (this._protocol as DatagramProtocol).errorReceived(error);
          return;
        }
        this._fatalError(error, "Fatal write error on datagram transport");
        return;
      }
      this._watchWriting(this._writeReady);
    }
    this._queue.push([bytes.slice(), addr]);
    this._bufferSize += bytes.length;
    this._flow.maybePause();
  }

  private readonly _writeReady = (): void => {
    while (this._queue.length > 0) {
      const [data, addr] = this._queue[0];
      try {
        if (this._sock.sendto(data, addr) === null) break;
      } catch (error) {
        this._queue.shift();
        this._bufferSize -= data.length;
        if (error instanceof OSError) {
          (this._protocol as DatagramProtocol).errorReceived(error);
        } else {
          this._fatalError(error, "Fatal write error on datagram transport");
          return;
        }
        continue;
      }
      this._queue.shift();
      this._bufferSize -= data.length;
    }
    this._flow.maybeResume();
    if (this._queue.length > 0) return;
    this._unwatchWriting();
    if (this._closing) {
      this._connLost++;
      this._callConnectionLost(null);
    }
  };

  protected _clearBuffer(): void {
    this._queue = [];
    this._bufferSize = 0;
  }

  override close(): void {
    if (this._closing) return;
    this._closing = true;
    this._unwatchReading();
    if (this._bufferSize === 0) {
      this._connLost++;
      this._unwatchWriting();
      this._loop.callSoon(() => this._callConnectionLost(null));
    }
  }

  override canWriteEof(): boolean {
    return false;
  }
}
