// Test-side OS helpers, on top of the public `os` module: pipes,
// socketpairs and eventfds, and string read/write wrappers.
import { os } from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { createEventFd } from "../ffi/sys/linux/eventfd.ts";

/** A non-blocking pipe: [readFd, writeFd]. */
export const pipe: () => [number, number] = os.pipe;

/** A non-blocking AF_UNIX stream socketpair. */
export const socketpair: () => [number, number] = os.socketpair;

/** A non-blocking eventfd. */
export function eventfd(): number {
  return createEventFd();
}

/** Writes a string; returns the bytes written (-1 when it would block). */
export function writeStr(fd: number, text: string): number {
  return os.write(fd, text) ?? -1;
}

/** Reads up to `n` bytes as text; "" at EOF, null when it would block. */
export function readStr(fd: number, n = 4096): string | null {
  const data = os.read(fd, n);
  return data === null ? null : new TextDecoder().decode(data);
}

/** Closes fds, ignoring errors (some tests close already-closed fds). */
export function closeAll(...fds: number[]): void {
  for (const fd of fds) libc.close(fd);
}
