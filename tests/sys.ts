// Test-side OS helpers: pipes, socketpairs and eventfds made through the
// same libc binding the loop uses, and small read/write wrappers.
import { check, libc } from "../ffi/libc.ts";
import { createEventFd } from "../ffi/sys/wakers.ts";

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const AF_UNIX = 1;
const SOCK_STREAM = 1;

/** A non-blocking pipe: [readFd, writeFd]. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check(libc.pipe2(fds, O_NONBLOCK | O_CLOEXEC), "pipe2");
  return [fds[0], fds[1]];
}

/** A non-blocking AF_UNIX stream socketpair. */
export function socketpair(): [number, number] {
  const fds = new Int32Array(2);
  check(
    libc.socketpair(AF_UNIX, SOCK_STREAM | O_NONBLOCK | O_CLOEXEC, 0, fds),
    "socketpair",
  );
  return [fds[0], fds[1]];
}

/** A non-blocking eventfd. */
export function eventfd(): number {
  return createEventFd();
}

/** Writes a string; returns the bytes written (or -1). */
export function writeStr(fd: number, text: string): number {
  const data = new TextEncoder().encode(text);
  return libc.write(fd, data, data.length);
}

/** Reads up to `n` bytes as text; "" at EOF, null when it would block. */
export function readStr(fd: number, n = 4096): string | null {
  const buf = new Uint8Array(n);
  const got = libc.read(fd, buf, n);
  if (got < 0) return null;
  return new TextDecoder().decode(buf.subarray(0, got));
}

/** Closes fds, ignoring errors. */
export function closeAll(...fds: number[]): void {
  for (const fd of fds) libc.close(fd);
}
