/**
 * A small socket type of our own over the BSD socket calls (Python's
 * `socket.socket`, non-blocking only). It owns its descriptor; its I/O
 * methods (`recvInto`, `send`, `accept`, `recvfromInto`, `sendto`,
 * `sendfile`) never block: they return null when the call would block
 * (EAGAIN), retry on EINTR, and throw {@link OSError} otherwise. Every
 * argument is checked (ffi/validate.ts) before it reaches C.
 *
 * C API used (`<sys/socket.h>`; the same signatures on every OS here):
 * ```c
 * int socket(int domain, int type, int protocol);  // NetBSD: __socket30
 * int socketpair(int domain, int type, int protocol, int sv[2]);
 * int bind(int fd, const struct sockaddr *addr, socklen_t len);
 * int listen(int fd, int backlog);
 * int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
 *   // Linux, FreeBSD 10+, OpenBSD 5.7+, NetBSD 8+
 * int accept(int fd, struct sockaddr *addr, socklen_t *len);  // macOS
 * int connect(int fd, const struct sockaddr *addr, socklen_t len);
 * ssize_t recv(int fd, void *buf, size_t len, int flags);
 * ssize_t send(int fd, const void *buf, size_t len, int flags);
 * ssize_t recvfrom(int fd, void *buf, size_t len, int flags,
 *                  struct sockaddr *src, socklen_t *srclen);
 * ssize_t sendto(int fd, const void *buf, size_t len, int flags,
 *                const struct sockaddr *dst, socklen_t dstlen);
 * int getsockname(int fd, struct sockaddr *addr, socklen_t *len);
 * int getpeername(int fd, struct sockaddr *addr, socklen_t *len);
 * int setsockopt(int fd, int level, int name, const void *val, socklen_t len);
 * int getsockopt(int fd, int level, int name, void *val, socklen_t *len);
 * int shutdown(int fd, int how);
 * // Linux <sys/sendfile.h> only:
 * ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count);
 * ```
 * sendfile(2) is bound on Linux only. macOS
 * (`int sendfile(int fd, int s, off_t offset, off_t *len, struct sf_hdtr *,
 * int flags)`) and FreeBSD (`int sendfile(int fd, int s, off_t offset,
 * size_t nbytes, struct sf_hdtr *, off_t *sbytes, int flags)`) have other
 * signatures, OpenBSD and NetBSD none: there {@link Socket.sendfile}
 * throws OSError ENOSYS and the loop's sendfile reads and sends instead.
 *
 * Where socket() takes no SOCK_NONBLOCK/SOCK_CLOEXEC and there is no
 * accept4 (macOS), every new socket gets O_NONBLOCK and FD_CLOEXEC with
 * fcntl. Where send() takes no MSG_NOSIGNAL (we do not rely on macOS 11's),
 * every socket gets SO_NOSIGPIPE, so a write to a closed peer is EPIPE,
 * not a signal.
 *
 * The byte counts are bound as `i32` results: every call here passes a
 * length below 2^31 (capped by {@link MAX_IO}), so the `ssize_t` fits, and
 * the low half of the return register is the value on x86-64 and aarch64.
 * Deno would return an `i64` as a BigInt, which costs a conversion per call.
 *
 * Every buffer handed to these calls is used by the kernel only during the
 * call (the socket is non-blocking), so JS memory is safe to pass.
 *
 * @module
 */
import { RuntimeError } from "./errors.ts";
import {
  check,
  errno,
  libc,
  libcPath,
  osError,
  setNonBlockingCloexec,
} from "./libc.ts";
import { openLibrary, type SymbolSpec } from "./runtime.ts";
import {
  bytesOf,
  checkByteCount,
  checkFd,
  checkInt,
  checkInt32,
  checkOffset,
  MAX_IO,
} from "./validate.ts";
import {
  forgetTakenSocketError,
  kqueueSocketErrorsPending,
  takeKqueueSocketError,
} from "./sys/bsd/kevent.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  EAGAIN,
  EBADF,
  EINPROGRESS,
  EINTR,
  ENOSYS,
  F_GETFL,
  F_SETFL,
  hostTable,
  O_NONBLOCK,
  type PlatformTable,
  SO_ERROR,
  SO_NOSIGPIPE,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  SOMAXCONN,
} from "./sys/platform.ts";
import {
  type Address,
  decodeSockaddr,
  encodeSockaddr,
  familyName,
  formatAddress,
  SOCKADDR_STORAGE_SIZE,
  socketsAvailable,
} from "./sys/sockaddr.ts";

/**
 * The socket symbols bound on `table`'s OS, by C name (see the module
 * comment for their signatures): accept4 or accept, socket under its C
 * name, and sendfile only where it has Linux's signature.
 */
export function socketSymbols(
  table: PlatformTable,
): Record<string, SymbolSpec> {
  const has = table.symbols;
  const specs: Record<string, SymbolSpec> = {
    [has.socket]: { parameters: ["i32", "i32", "i32"], result: "i32" },
    socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
    bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    listen: { parameters: ["i32", "i32"], result: "i32" },
    connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    recv: { parameters: ["i32", "buffer", "u64", "i32"], result: "i32" },
    send: { parameters: ["i32", "buffer", "u64", "i32"], result: "i32" },
    recvfrom: {
      parameters: ["i32", "buffer", "u64", "i32", "buffer", "buffer"],
      result: "i32",
    },
    sendto: {
      parameters: ["i32", "buffer", "u64", "i32", "buffer", "u32"],
      result: "i32",
    },
    getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
    getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
    setsockopt: {
      parameters: ["i32", "i32", "i32", "buffer", "u32"],
      result: "i32",
    },
    getsockopt: {
      parameters: ["i32", "i32", "i32", "buffer", "buffer"],
      result: "i32",
    },
    shutdown: { parameters: ["i32", "i32"], result: "i32" },
  };
  if (has.accept4) {
    specs.accept4 = {
      parameters: ["i32", "buffer", "buffer", "i32"],
      result: "i32",
    };
  } else {
    specs.accept = { parameters: ["i32", "buffer", "buffer"], result: "i32" };
  }
  if (has.sendfile === "linux") {
    specs.sendfile = {
      parameters: ["i32", "i32", "buffer", "u64"],
      result: "i32",
    };
  }
  return specs;
}

type SocketSymbols = {
  socket(domain: number, type: number, protocol: number): number;
  socketpair(
    domain: number,
    type: number,
    protocol: number,
    sv: Int32Array,
  ): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  listen(fd: number, backlog: number): number;
  accept4?(
    fd: number,
    addr: Uint8Array,
    len: Uint32Array,
    flags: number,
  ): number;
  accept?(fd: number, addr: Uint8Array, len: Uint32Array): number;
  connect(fd: number, addr: Uint8Array, len: number): number;
  recv(fd: number, buf: Uint8Array, len: number, flags: number): number;
  send(fd: number, buf: Uint8Array, len: number, flags: number): number;
  recvfrom(
    fd: number,
    buf: Uint8Array,
    len: number,
    flags: number,
    addr: Uint8Array,
    addrlen: Uint32Array,
  ): number;
  sendto(
    fd: number,
    buf: Uint8Array,
    len: number,
    flags: number,
    addr: Uint8Array,
    addrlen: number,
  ): number;
  getsockname(fd: number, addr: Uint8Array, len: Uint32Array): number;
  getpeername(fd: number, addr: Uint8Array, len: Uint32Array): number;
  setsockopt(
    fd: number,
    level: number,
    name: number,
    val: Uint8Array,
    len: number,
  ): number;
  getsockopt(
    fd: number,
    level: number,
    name: number,
    val: Uint8Array,
    len: Uint32Array,
  ): number;
  shutdown(fd: number, how: number): number;
  sendfile?(
    out: number,
    inFd: number,
    offset: BigInt64Array,
    count: number,
  ): number;
};

/** How this OS makes sockets: what the table says, read once per binding. */
interface SocketWays {
  /** The bound calls. */
  calls: SocketSymbols;
  /** SOCK_NONBLOCK | SOCK_CLOEXEC for socket()/socketpair()/accept4(), or 0. */
  typeFlags: number;
  /** Whether accepted sockets come out non-blocking and close-on-exec. */
  acceptAtomic: boolean;
  /** The send flags: MSG_NOSIGNAL, or 0 where sockets have SO_NOSIGPIPE. */
  sendFlags: number;
  /** Whether every new socket needs SO_NOSIGPIPE. */
  soNosigpipe: boolean;
}

let table: PlatformTable = hostTable;
let ways: SocketWays | undefined;

function sockets(): SocketWays {
  if (ways) return ways;
  if (!socketsAvailable) {
    throw new RuntimeError(
      `sockets are not available on ${hostTable.os} in this build of aioloop ` +
        "(Linux, macOS, FreeBSD, OpenBSD and NetBSD have them)",
    );
  }
  const lib = openLibrary(libcPath, socketSymbols(table)).symbols as Record<
    string,
    unknown
  >;
  const c = table.constants;
  const typeFlags = c.SOCK_NONBLOCK | c.SOCK_CLOEXEC;
  // NetBSD names socket() __socket30. Alias it on the bound object itself:
  // a spread copy of the symbols made every Deno send/recv ~400 ns slower.
  lib.socket = lib[table.symbols.socket];
  ways = {
    calls: lib as unknown as SocketSymbols,
    typeFlags,
    acceptAtomic: table.symbols.accept4 && typeFlags !== 0,
    sendFlags: table.noSigpipe === "MSG_NOSIGNAL" ? c.MSG_NOSIGNAL : 0,
    soNosigpipe: table.noSigpipe === "SO_NOSIGPIPE",
  };
  return ways;
}

/**
 * Test hook: make sockets the way `other` says (null: this OS's table).
 * With a copy of this OS's table that lacks SOCK_NONBLOCK, accept4 and
 * sendfile, Linux runs the code paths of macOS. Only the symbol and flag
 * facts of `other` are used; its numbers must be this OS's.
 */
export function _useSocketTable(other: PlatformTable | null): void {
  table = other ?? hostTable;
  ways = undefined;
}

/**
 * Finishes a descriptor fresh from socket()/accept()/socketpair(): O_NONBLOCK
 * and FD_CLOEXEC where the call could not set them, SO_NOSIGPIPE where
 * sends cannot ask for no SIGPIPE. Closes `fd` and throws on failure.
 */
function prepare(fd: number, flagsSet: boolean): number {
  // A new descriptor: an error libkqueue took from a closed socket that had
  // this number is not its error.
  forgetTakenError(fd);
  const w = sockets();
  try {
    if (!flagsSet) setNonBlockingCloexec(fd);
    if (w.soNosigpipe) setIntOption(fd, SOL_SOCKET, SO_NOSIGPIPE, 1);
  } catch (e) {
    libc.close(fd);
    throw e;
  }
  return fd;
}

// Scratch space for addresses the kernel fills in (one JS thread).
const addrBuf = new Uint8Array(SOCKADDR_STORAGE_SIZE);
const addrLen = new Uint32Array(1);
const optBuf = new Uint8Array(8);
const optLen = new Uint32Array(1);

/** Whether `value` is a supported address family. */
function checkFamily(family: number): void {
  if (family !== AF_INET && family !== AF_INET6 && family !== AF_UNIX) {
    throw new RangeError(
      `unsupported address family ${family} (use AF_INET, AF_INET6 or AF_UNIX)`,
    );
  }
}

function checkType(type: number): void {
  if (type !== SOCK_STREAM && type !== SOCK_DGRAM) {
    throw new RangeError(
      `unsupported socket type ${type} (use SOCK_STREAM or SOCK_DGRAM)`,
    );
  }
}

/**
 * A non-blocking, close-on-exec socket that owns its descriptor.
 *
 * ```ts
 * const sock = new Socket(AF_INET, SOCK_STREAM);
 * sock.bind(["127.0.0.1", 0]);
 * sock.listen();
 * console.log(sock.getsockname()); // ["127.0.0.1", 40123]
 * sock.close();
 * ```
 */
export class Socket {
  /** AF_INET, AF_INET6 or AF_UNIX. */
  readonly family: number;
  /** SOCK_STREAM or SOCK_DGRAM. */
  readonly type: number;
  /** The protocol number (0: the default for the type). */
  readonly proto: number;
  private fd: number;

  /**
   * Creates a socket, or adopts `fileno` (an open socket descriptor of
   * that family and type; it is made non-blocking and owned from now on).
   */
  constructor(
    family: number = AF_INET,
    type: number = SOCK_STREAM,
    proto = 0,
    fileno?: number,
  ) {
    checkFamily(family);
    checkType(type);
    checkInt32(proto, "proto");
    this.family = family;
    this.type = type;
    this.proto = proto;
    if (fileno === undefined) {
      const w = sockets();
      this.fd = prepare(
        check(
          w.calls.socket(family, type | w.typeFlags, proto),
          "socket",
          familyName(family),
        ),
        w.typeFlags !== 0,
      );
    } else {
      this.fd = checkFd(fileno, "fileno");
      setNonBlocking(fileno);
      if (sockets().soNosigpipe) {
        setIntOption(fileno, SOL_SOCKET, SO_NOSIGPIPE, 1);
      }
    }
  }

  /** The descriptor, or -1 once closed or detached. */
  fileno(): number {
    return this.fd;
  }

  /** Whether close() or detach() was called. */
  get closed(): boolean {
    return this.fd < 0;
  }

  /** Closes the descriptor. Idempotent. */
  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    forgetTakenError(fd);
    libc.close(fd);
  }

  /** Gives up the descriptor without closing it; returns it. */
  detach(): number {
    const fd = this.fd;
    this.fd = -1;
    return fd;
  }

  /** Closes the socket (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The open descriptor; OSError (EBADF) once closed. */
  private open(syscall: string): number {
    if (this.fd < 0) {
      throw osError(EBADF, syscall, "socket is closed");
    }
    return this.fd;
  }

  /** Binds to `address` (a numeric host, "" for any, or a path). */
  bind(address: Address): void {
    const fd = this.open("bind");
    const sa = encodeSockaddr(this.family, address);
    check(
      sockets().calls.bind(fd, sa.bytes, sa.length),
      "bind",
      formatAddress(address),
    );
  }

  /** Starts listening; `backlog` defaults to SOMAXCONN. */
  listen(backlog: number = SOMAXCONN): void {
    // Like CPython: a negative backlog means 0, a huge one is the kernel's cap.
    checkInt32(backlog, "backlog");
    const fd = this.open("listen");
    check(sockets().calls.listen(fd, Math.max(0, backlog)), "listen");
  }

  /** The local address. */
  getsockname(): Address {
    const fd = this.open("getsockname");
    addrLen[0] = SOCKADDR_STORAGE_SIZE;
    addrBuf.fill(0, 0, 2);
    check(sockets().calls.getsockname(fd, addrBuf, addrLen), "getsockname");
    return decodeSockaddr(addrBuf, addrLen[0]);
  }

  /** The peer's address; OSError (ENOTCONN) when not connected. */
  getpeername(): Address {
    const fd = this.open("getpeername");
    addrLen[0] = SOCKADDR_STORAGE_SIZE;
    addrBuf.fill(0, 0, 2);
    check(sockets().calls.getpeername(fd, addrBuf, addrLen), "getpeername");
    return decodeSockaddr(addrBuf, addrLen[0]);
  }

  /** Sets an option: an int `value`, or raw bytes. */
  setsockopt(level: number, optname: number, value: number | Uint8Array): void {
    checkInt32(level, "level");
    checkInt32(optname, "optname");
    const fd = this.open("setsockopt");
    let bytes: Uint8Array;
    if (typeof value === "number") {
      checkInt32(value, "value");
      new DataView(optBuf.buffer).setInt32(0, value, true);
      bytes = optBuf.subarray(0, 4);
    } else bytes = bytesOf(value, "value");
    check(
      sockets().calls.setsockopt(fd, level, optname, bytes, bytes.length),
      "setsockopt",
      `level ${level}, option ${optname}`,
    );
  }

  /** Reads an int option (or `buflen` raw bytes when given). */
  getsockopt(level: number, optname: number): number;
  /** Reads `buflen` bytes of an option. */
  getsockopt(level: number, optname: number, buflen: number): Uint8Array;
  getsockopt(
    level: number,
    optname: number,
    buflen?: number,
  ): number | Uint8Array {
    checkInt32(level, "level");
    checkInt32(optname, "optname");
    if (buflen !== undefined) checkInt(buflen, "buflen", 1, 1024);
    const fd = this.open("getsockopt");
    const buf = buflen === undefined ? optBuf : new Uint8Array(buflen);
    optLen[0] = buflen === undefined ? 4 : buflen;
    buf.fill(0);
    check(
      sockets().calls.getsockopt(fd, level, optname, buf, optLen),
      "getsockopt",
      `level ${level}, option ${optname}`,
    );
    if (buflen !== undefined) return buf.slice(0, optLen[0]);
    return new DataView(buf.buffer).getInt32(0, true);
  }

  /** Shuts down reading (SHUT_RD), writing (SHUT_WR) or both. */
  shutdown(how: number): void {
    checkInt(how, "how", 0, 2);
    const fd = this.open("shutdown");
    check(sockets().calls.shutdown(fd, how), "shutdown");
  }

  /**
   * Starts connecting: 0 when connected at once, or an errno such as
   * EINPROGRESS (Python's `connect_ex`). Other errors are thrown.
   */
  connectEx(address: Address): number {
    const fd = this.open("connect");
    const sa = encodeSockaddr(this.family, address);
    if (sockets().calls.connect(fd, sa.bytes, sa.length) === 0) return 0;
    const code = errno();
    // An interrupted connect goes on in the background, like one in
    // progress (calling connect again would fail with EALREADY).
    if (code === EINTR) return EINPROGRESS;
    if (code === EINPROGRESS || code === EAGAIN) return code;
    throw osError(code, "connect", formatAddress(address));
  }

  /** Accepts a connection, or returns null when none is pending. */
  accept(): [Socket, Address] | null {
    const fd = this.open("accept");
    for (;;) {
      addrLen[0] = SOCKADDR_STORAGE_SIZE;
      addrBuf.fill(0, 0, 2);
      const w = sockets();
      const conn = w.acceptAtomic
        ? w.calls.accept4!(fd, addrBuf, addrLen, w.typeFlags)
        : w.calls.accept!(fd, addrBuf, addrLen);
      if (conn >= 0) {
        prepare(conn, w.acceptAtomic);
        const address = decodeSockaddr(addrBuf, addrLen[0]);
        return [
          Socket.adopt(conn, this.family, this.type, this.proto),
          address,
        ];
      }
      const code = errno();
      if (code === EINTR) continue;
      if (code === EAGAIN) return null;
      throw osError(code, "accept", formatAddress(safeName(this)));
    }
  }

  /**
   * Receives into `buf` (up to `nbytes`, default: its byte length): the
   * count, 0 at EOF, null if none yet. RangeError when `nbytes` is not an
   * integer in 0..buf.byteLength.
   */
  recvInto(buf: ArrayBufferView | ArrayBuffer, nbytes?: number): number | null {
    const bytes = bytesOf(buf, "buf");
    const n = checkByteCount(bytes, nbytes);
    const fd = this.open("recv");
    for (;;) {
      const got = sockets().calls.recv(fd, bytes, n, 0);
      if (got > 0) return got;
      const code = got === 0 ? 0 : errno();
      if (code === EINTR) continue;
      throwTakenError(this, fd, "recv");
      if (got === 0) return 0;
      if (code === EAGAIN) return null;
      throw osError(code, "recv", peerDetail(this));
    }
  }

  /** Sends what it can of `data`: the count, or null when the buffer is full. */
  send(data: ArrayBufferView | ArrayBuffer): number | null {
    const bytes = bytesOf(data);
    const n = checkByteCount(bytes, undefined);
    const fd = this.open("send");
    const w = sockets();
    for (;;) {
      const sent = w.calls.send(fd, bytes, n, w.sendFlags);
      if (sent >= 0) return sent;
      const code = errno();
      if (code === EINTR) continue;
      throwTakenError(this, fd, "send");
      if (code === EAGAIN) return null;
      throw osError(code, "send", peerDetail(this));
    }
  }

  /** Receives a datagram into `buf`: [count, sender], or null if none. */
  recvfromInto(
    buf: ArrayBufferView | ArrayBuffer,
    nbytes?: number,
  ): [number, Address] | null {
    const bytes = bytesOf(buf, "buf");
    const n = checkByteCount(bytes, nbytes);
    const fd = this.open("recvfrom");
    for (;;) {
      addrLen[0] = SOCKADDR_STORAGE_SIZE;
      addrBuf.fill(0, 0, 2);
      const got = sockets().calls.recvfrom(fd, bytes, n, 0, addrBuf, addrLen);
      // 0 is EOF on a stream socket (an empty datagram otherwise).
      if (got === 0 && n > 0 && this.type === SOCK_STREAM) {
        throwTakenError(this, fd, "recvfrom");
      }
      if (got >= 0) return [got, decodeSockaddr(addrBuf, addrLen[0])];
      const code = errno();
      if (code === EINTR) continue;
      throwTakenError(this, fd, "recvfrom");
      if (code === EAGAIN) return null;
      throw osError(code, "recvfrom", formatAddress(safeName(this)));
    }
  }

  /** Sends a datagram to `address` (or the connected peer when null). */
  sendto(
    data: ArrayBufferView | ArrayBuffer,
    address: Address | null,
  ): number | null {
    const bytes = bytesOf(data);
    const n = checkByteCount(bytes, undefined);
    const sa = address === null ? null : encodeSockaddr(this.family, address);
    const fd = this.open("sendto");
    const { calls, sendFlags } = sockets();
    for (;;) {
      const sent = sa === null
        ? calls.send(fd, bytes, n, sendFlags)
        : calls.sendto(fd, bytes, n, sendFlags, sa.bytes, sa.length);
      if (sent >= 0) return sent;
      const code = errno();
      if (code === EINTR) continue;
      throwTakenError(this, fd, "sendto");
      if (code === EAGAIN) return null;
      throw osError(code, "sendto", formatAddress(address ?? safePeer(this)));
    }
  }

  /** Convenience: up to `n` fresh bytes, empty at EOF, null if none yet. */
  recv(n: number): Uint8Array | null {
    const buf = new Uint8Array(checkInt(n, "n", 0, MAX_IO));
    const got = this.recvInto(buf);
    return got === null ? null : buf.subarray(0, got);
  }

  /**
   * Copies up to `count` bytes from file descriptor `inFd` at `offset` to
   * this socket with sendfile(2): the count (0 at the end of the file), or
   * null when the socket is full. OSError (EINVAL, ENOSYS...) means the
   * file cannot be sent this way: ENOSYS on every OS but Linux, where
   * sendfile(2) is not bound (see the module comment).
   */
  sendfile(inFd: number, offset: number, count: number): number | null {
    checkFd(inFd, "inFd");
    checkOffset(offset);
    const n = Math.min(
      checkInt(count, "count", 0, Number.MAX_SAFE_INTEGER),
      MAX_IO,
    );
    const fd = this.open("sendfile");
    const { sendfile } = sockets().calls;
    if (!sendfile) {
      throw osError(ENOSYS, "sendfile", `not bound on ${table.os}`);
    }
    const off = new BigInt64Array([BigInt(offset)]);
    for (;;) {
      const sent = sendfile(fd, inFd, off, n);
      if (sent >= 0) return sent;
      const code = errno();
      if (code === EINTR) continue;
      if (code === EAGAIN) return null;
      throw osError(code, "sendfile", `fd ${inFd} -> fd ${fd}`);
    }
  }

  /** The pending error of a non-blocking connect (SO_ERROR), cleared. */
  takeError(): number {
    const code = this.getsockopt(SOL_SOCKET, SO_ERROR);
    return code !== 0 ? code : takeKqueueSocketError(this.fd);
  }

  /** Wraps an accepted or inherited descriptor. */
  static adopt(fd: number, family: number, type: number, proto = 0): Socket {
    const sock = Object.create(Socket.prototype) as Socket;
    Object.assign(sock, { family, type, proto, fd });
    return sock;
  }

  /** "<Socket fd=5 AF_INET SOCK_STREAM laddr=127.0.0.1:8000>". */
  toString(): string {
    const parts = [
      `fd=${this.fd}`,
      familyName(this.family),
      this.type === SOCK_STREAM ? "SOCK_STREAM" : "SOCK_DGRAM",
    ];
    if (this.fd >= 0) {
      const local = safeName(this);
      if (local !== null) parts.push(`laddr=${formatAddress(local)}`);
      const peer = safePeer(this);
      if (peer !== null) parts.push(`raddr=${formatAddress(peer)}`);
    }
    return `<Socket ${parts.join(" ")}>`;
  }
}

/** The local address, or null if it cannot be had. */
function safeName(sock: Socket): Address | null {
  try {
    return sock.getsockname();
  } catch {
    return null;
  }
}

/** The peer address, or null if not connected. */
function safePeer(sock: Socket): Address | null {
  try {
    return sock.getpeername();
  } catch {
    return null;
  }
}

/**
 * libkqueue only: its waiter thread reads and clears SO_ERROR when it
 * reports a socket error (see ffi/sys/bsd/kevent.ts), so the kernel then
 * answers recv with EOF or EAGAIN and send with EPIPE where it would have
 * given the error. The error libkqueue took is thrown here instead. It is
 * asked for only when a call has moved no bytes (EOF, EAGAIN or an error),
 * which also keeps the order the kernel has: queued data first, then the
 * error. Real kqueue and epoll never record one: a map-size check.
 */
function throwTakenError(sock: Socket, fd: number, syscall: string): void {
  if (!kqueueSocketErrorsPending()) return;
  const code = takeKqueueSocketError(fd);
  if (code !== 0) throw osError(code, syscall, peerDetail(sock));
}

/**
 * Drops what libkqueue took from `fd` when the number starts or stops
 * naming one of our sockets (close, and every new descriptor): the kernel
 * reuses the number at once, and the error belongs to the old connection.
 * It is kept while the socket is open, also after the selector stopped
 * watching it, since a paused reader reads again later.
 */
function forgetTakenError(fd: number): void {
  if (kqueueSocketErrorsPending()) forgetTakenSocketError(fd);
}

function peerDetail(sock: Socket): string {
  return formatAddress(safePeer(sock) ?? safeName(sock));
}

/** Sets O_NONBLOCK on `fd`. */
function setNonBlocking(fd: number): void {
  const flags = check(libc.fcntl(fd, F_GETFL, 0), "fcntl", `fd ${fd}`);
  if (flags & O_NONBLOCK) return;
  check(libc.fcntl(fd, F_SETFL, flags | O_NONBLOCK), "fcntl", `fd ${fd}`);
}

const intOption = new Uint8Array(4);

/** setsockopt(fd, level, name, &value, 4) on a bare descriptor. */
function setIntOption(
  fd: number,
  level: number,
  name: number,
  value: number,
): void {
  new DataView(intOption.buffer).setInt32(0, value, true);
  check(
    sockets().calls.setsockopt(fd, level, name, intOption, 4),
    "setsockopt",
    `level ${level}, option ${name}`,
  );
}

/** A connected pair of non-blocking sockets (AF_UNIX by default). */
export function socketpair(
  family: number = AF_UNIX,
  type: number = SOCK_STREAM,
  proto = 0,
): [Socket, Socket] {
  checkFamily(family);
  checkType(type);
  checkInt32(proto, "proto");
  const fds = new Int32Array(2);
  const w = sockets();
  check(
    w.calls.socketpair(family, type | w.typeFlags, proto, fds),
    "socketpair",
  );
  for (const [i, other] of [[0, 1], [1, 0]]) {
    try {
      prepare(fds[i], w.typeFlags !== 0);
    } catch (e) {
      libc.close(fds[other]); // prepare() closed fds[i]
      throw e;
    }
  }
  return [
    Socket.adopt(fds[0], family, type, proto),
    Socket.adopt(fds[1], family, type, proto),
  ];
}
