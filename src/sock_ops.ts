/**
 * The loop's low-level socket operations (asyncio's `sock_recv`,
 * `sock_sendall`, ...): try the non-blocking call at once; if it would
 * block, watch the fd and retry when it is ready. Each returns a loop
 * Future; cancelling it removes the watcher.
 *
 * @module
 */
import type { Socket } from "../ffi/socket.ts";
import { bytesOf, checkByteCount, checkInt, MAX_IO } from "../ffi/validate.ts";
import {
  type Address,
  AF_INET,
  AF_INET6,
  formatAddress,
  parseIp,
} from "../ffi/sys/sockaddr.ts";
import { osError } from "../ffi/libc.ts";
import { copyBytes } from "./bytes.ts";
import type { Future } from "./futures.ts";
import type { AbstractEventLoop, Handle } from "./events.ts";

/**
 * The selector loop's fd-watching hooks, shared by the sock_* operations
 * here and the selector transports: registrations that skip the
 * transport-ownership check and hand back a token, so that only the
 * registration's owner can remove it (a closed owner's late removal cannot
 * touch a new registration on a reused fd number).
 */
export interface FdWatchHooks {
  /** addReader without the ownership check; returns the token. */
  _addReader(fd: number, callback: () => void): Handle;
  /** addWriter without the ownership check; returns the token. */
  _addWriter(fd: number, callback: () => void): Handle;
  /** Removes the reader of `fd` if it is still `token`. */
  _removeReader(fd: number, token: Handle | null): boolean;
  /** Removes the writer of `fd` if it is still `token`. */
  _removeWriter(fd: number, token: Handle | null): boolean;
  /** A scratch buffer for reads (one JS thread). */
  _readBuffer: Uint8Array;
}

/** What the sock_* operations need of their loop. */
export interface SockOpsLoop extends AbstractEventLoop, FdWatchHooks {
  /** Throws if a transport owns `fd`. */
  _ensureFdNoTransport(fd: number): void;
  /** Resolves a host name in `address` for `sock`'s family. */
  _ensureResolved(sock: Socket, address: Address): Promise<Address>;
}

/** TypeError unless `sock` is one of our sockets, open. */
export function checkSocket(sock: unknown, method: string): Socket {
  const s = sock as Socket | null;
  if (
    s === null || typeof s !== "object" ||
    typeof (s as Partial<Socket>).recvInto !== "function"
  ) {
    throw new TypeError(
      `${method}() expects a Socket (from aioloop), got ${String(sock)}`,
    );
  }
  if (s.fileno() < 0) {
    throw new RangeError(`${method}(): the socket is closed`);
  }
  return s;
}

/** A future with `error` set. */
function failed<T>(loop: AbstractEventLoop, error: unknown): Future<T> {
  const fut = loop.createFuture<T>();
  fut.setException(error);
  return fut;
}

function resolved<T>(loop: AbstractEventLoop, value: T): Future<T> {
  const fut = loop.createFuture<T>();
  fut.setResult(value);
  return fut;
}

/**
 * Runs `attempt` now and, while it returns null, again each time `fd` is
 * readable (or writable); the future settles with its first non-null
 * result or error.
 */
function whenReady<T>(
  loop: SockOpsLoop,
  sock: Socket,
  method: string,
  write: boolean,
  attempt: () => T | null,
): Future<T> {
  let fd: number;
  try {
    fd = checkSocket(sock, method).fileno();
    loop._ensureFdNoTransport(fd);
    const first = attempt();
    if (first !== null) return resolved(loop, first);
  } catch (error) {
    return failed(loop, error);
  }
  const fut = loop.createFuture<T>();
  // The watcher goes as soon as the op is over (the caller may close the
  // socket right after); only this op's own registration (its token) is
  // removed, never a later op's on the same fd number.
  const unwatch = () => {
    if (write) loop._removeWriter(fd, handle);
    else loop._removeReader(fd, handle);
  };
  const retry = () => {
    if (fut.done()) return;
    try {
      const value = attempt();
      if (value === null) return;
      unwatch();
      fut.setResult(value);
    } catch (error) {
      unwatch();
      fut.setException(error);
    }
  };
  const handle = write
    ? loop._addWriter(fd, retry)
    : loop._addReader(fd, retry);
  // A cancelled op: the watcher goes on the next iteration.
  fut.addDoneCallback(unwatch);
  return fut;
}

/** Receives up to `nbytes` bytes; an empty array at EOF. */
export function sockRecv(
  loop: SockOpsLoop,
  sock: Socket,
  nbytes: number,
): Future<Uint8Array> {
  try {
    checkInt(nbytes, "nbytes", 0, MAX_IO);
  } catch (error) {
    return failed(loop, error);
  }
  // Reads go through the loop's scratch buffer (attempts are synchronous).
  const shared = nbytes <= loop._readBuffer.length;
  const buf = shared ? loop._readBuffer : new Uint8Array(nbytes);
  return whenReady(loop, sock, "sockRecv", false, () => {
    const n = sock.recvInto(buf, nbytes);
    return n === null ? null : shared ? copyBytes(buf, n) : buf.slice(0, n);
  });
}

/** Receives into `buf`; resolves with the count (0 at EOF). */
export function sockRecvInto(
  loop: SockOpsLoop,
  sock: Socket,
  buf: Uint8Array,
): Future<number> {
  let bytes: Uint8Array;
  try {
    bytes = bytesOf(buf, "buf");
  } catch (error) {
    return failed(loop, error);
  }
  return whenReady(
    loop,
    sock,
    "sockRecvInto",
    false,
    () => sock.recvInto(bytes),
  );
}

/** Receives a datagram of up to `bufsize` bytes and its sender. */
export function sockRecvfrom(
  loop: SockOpsLoop,
  sock: Socket,
  bufsize: number,
): Future<[Uint8Array, Address]> {
  try {
    checkInt(bufsize, "bufsize", 0, MAX_IO);
  } catch (error) {
    return failed(loop, error);
  }
  const shared = bufsize <= loop._readBuffer.length;
  const buf = shared ? loop._readBuffer : new Uint8Array(bufsize);
  return whenReady(loop, sock, "sockRecvfrom", false, () => {
    const got = sock.recvfromInto(buf, bufsize);
    return got === null ? null : [copyBytes(buf, got[0]), got[1]];
  });
}

/** Receives a datagram into `buf` (at most `nbytes`, 0: all of it). */
export function sockRecvfromInto(
  loop: SockOpsLoop,
  sock: Socket,
  buf: Uint8Array,
  nbytes = 0,
): Future<[number, Address]> {
  let bytes: Uint8Array;
  try {
    bytes = bytesOf(buf, "buf");
    checkByteCount(bytes, nbytes);
  } catch (error) {
    return failed(loop, error);
  }
  const n = nbytes || bytes.byteLength;
  return whenReady(
    loop,
    sock,
    "sockRecvfromInto",
    false,
    () => sock.recvfromInto(bytes, n),
  );
}

/** Sends all of `data`, waiting for room as often as needed. */
export function sockSendall(
  loop: SockOpsLoop,
  sock: Socket,
  data: Uint8Array,
): Future<void> {
  let rest: Uint8Array;
  try {
    rest = bytesOf(data);
  } catch (error) {
    return failed(loop, error);
  }
  return whenReady<true>(loop, sock, "sockSendall", true, () => {
    while (rest.length > 0) {
      const n = sock.send(rest);
      if (n === null) return null;
      rest = rest.subarray(n);
    }
    return true;
  }) as unknown as Future<void>;
}

/** Sends one datagram to `address`; resolves with the byte count. */
export function sockSendto(
  loop: SockOpsLoop,
  sock: Socket,
  data: Uint8Array,
  address: Address,
): Future<number> {
  let bytes: Uint8Array;
  try {
    bytes = bytesOf(data);
  } catch (error) {
    return failed(loop, error);
  }
  return whenReady(
    loop,
    sock,
    "sockSendto",
    true,
    () => sock.sendto(bytes, address),
  );
}

/** Whether `address` needs name resolution for this socket. */
function needsResolving(sock: Socket, address: Address): boolean {
  if (sock.family !== AF_INET && sock.family !== AF_INET6) return false;
  if (!Array.isArray(address) || typeof address[0] !== "string") return false;
  return !isNumericHost(sock.family, address[0]);
}

function isNumericHost(family: number, host: string): boolean {
  return host === "" || parseIp(family, host) !== null;
}

/**
 * Connects `sock` to `address` (a host name is resolved first); rejects
 * with the OSError of the failed connect, whose message names the address.
 */
export function sockConnect(
  loop: SockOpsLoop,
  sock: Socket,
  address: Address,
): Future<void> {
  try {
    checkSocket(sock, "sockConnect");
  } catch (error) {
    return failed(loop, error);
  }
  if (!needsResolving(sock, address)) {
    return connectResolved(loop, sock, address);
  }
  return loop.createTask(async () => {
    const resolvedAddress = await loop._ensureResolved(sock, address);
    await connectResolved(loop, sock, resolvedAddress);
  }) as unknown as Future<void>;
}

function connectResolved(
  loop: SockOpsLoop,
  sock: Socket,
  address: Address,
): Future<void> {
  let started = false;
  return whenReady<true>(loop, sock, "sockConnect", true, () => {
    if (!started) {
      started = true;
      return sock.connectEx(address) === 0 ? true : null;
    }
    const error = sock.takeError();
    if (error !== 0) throw osError(error, "connect", formatAddress(address));
    return true;
  }) as unknown as Future<void>;
}

/** Accepts a connection: `[socket, address]`. */
export function sockAccept(
  loop: SockOpsLoop,
  sock: Socket,
): Future<[Socket, Address]> {
  return whenReady(loop, sock, "sockAccept", false, () => sock.accept());
}

export { whenReady };
