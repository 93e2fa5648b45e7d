/**
 * Small descriptor helpers for code that watches fds with `addReader` /
 * `addWriter` (Python's `os.pipe`, `os.read`, ... for non-blocking fds).
 * Failures throw {@link OSError} with the errno name in `code`; a read or
 * write that would block returns null.
 *
 * @module
 */
import { check, errno, libc, nonBlockingPipe, osError } from "./libc.ts";
import { socketpair as socketPair } from "./socket.ts";
import {
  AF_UNIX,
  EAGAIN,
  EINTR,
  O_CLOEXEC,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  SEEK_SET,
  SOCK_STREAM,
} from "./sys/platform.ts";
import {
  bytesOf,
  checkByteCount,
  checkFd,
  checkInt,
  checkInt32,
  checkOffset,
  MAX_IO,
} from "./validate.ts";

/**
 * A non-blocking, close-on-exec pipe: `[readFd, writeFd]` (pipe2, or pipe
 * and fcntl where there is no pipe2).
 */
export function pipe(): [number, number] {
  return nonBlockingPipe();
}

/**
 * A non-blocking, close-on-exec AF_UNIX stream socket pair (with
 * SO_NOSIGPIPE where sends cannot ask for no SIGPIPE), as bare fds.
 */
export function socketpair(): [number, number] {
  const [a, b] = socketPair(AF_UNIX, SOCK_STREAM);
  return [a.detach(), b.detach()];
}

/**
 * Reads up to `n` bytes. Returns the bytes (empty at end of file), or null
 * when nothing is available yet (EAGAIN).
 */
export function read(fd: number, n = 65536): Uint8Array | null {
  checkFd(fd);
  const buf = new Uint8Array(checkInt(n, "n", 0, MAX_IO));
  const got = libc.read(fd, buf, n);
  if (got < 0) {
    const code = errno();
    if (code === EAGAIN) return null;
    throw osError(code, "read", `fd ${fd}`);
  }
  return buf.subarray(0, got);
}

/**
 * Writes `data` (bytes or text). Returns how many bytes were written, or
 * null when the descriptor is full (EAGAIN).
 */
export function write(
  fd: number,
  data: ArrayBufferView | ArrayBuffer | string,
): number | null {
  checkFd(fd);
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : bytesOf(data);
  const sent = libc.write(fd, bytes, checkByteCount(bytes, undefined));
  if (sent < 0) {
    const code = errno();
    if (code === EAGAIN) return null;
    throw osError(code, "write", `fd ${fd}`);
  }
  return sent;
}

/** Closes a descriptor; OSError (EBADF) if it is not open. */
export function close(fd: number): void {
  checkFd(fd);
  check(libc.close(fd), "close", `fd ${fd}`);
}

/** open(2) flags of this OS (O_CREAT is 0o100 on Linux, 0x200 elsewhere). */
export { O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY };

/**
 * Opens a file and returns its descriptor (close-on-exec). The descriptor
 * is an OS fd, usable with sendfile() and sockSendfile().
 */
export function open(path: string, flags = O_RDONLY, mode = 0o666): number {
  if (typeof path !== "string") {
    throw new TypeError(`path must be a string, got ${typeof path}`);
  }
  if (path.includes("\0")) throw new RangeError("path must not contain NUL");
  checkInt32(flags, "flags");
  checkInt(mode, "mode", 0, 0o7777);
  const bytes = new TextEncoder().encode(path + "\0");
  return check(libc.open(bytes, flags | O_CLOEXEC, mode), "open", path);
}

/** Reads up to `buf.length` bytes at `position` (pread): the count, 0 at EOF. */
export function pread(
  fd: number,
  buf: ArrayBufferView | ArrayBuffer,
  position: number,
): number {
  checkFd(fd);
  const bytes = bytesOf(buf, "buf");
  const count = checkByteCount(bytes, undefined);
  checkOffset(position, "position");
  for (;;) {
    const n = libc.pread(fd, bytes, count, position);
    if (n >= 0) return n;
    if (errno() !== EINTR) throw osError(errno(), "pread", `fd ${fd}`);
  }
}

/** Sets the file position (lseek SEEK_SET); returns it. */
export function seek(fd: number, position: number): number {
  checkFd(fd);
  checkOffset(position, "position");
  return check(libc.lseek(fd, position, SEEK_SET), "lseek", `fd ${fd}`);
}
