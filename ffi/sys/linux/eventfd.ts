/**
 * The Linux waker: an eventfd, a kernel counter that any thread can make
 * readable (mio's `Waker` on Linux).
 *
 * C API used (`<sys/eventfd.h>`, Linux):
 * ```c
 * int eventfd(unsigned int initval, int flags);
 * ssize_t read(int fd, void *buf, size_t count);   // 8 bytes: the counter
 * ssize_t write(int fd, const void *buf, size_t count);  // 8 bytes: += value
 * ```
 * An eventfd is written and read 8 bytes at a time: a native-endian u64
 * counter (little-endian on x86-64 and aarch64).
 *
 * @module
 */
import type { Waker } from "../../selector.ts";
import { check, libc, libcPath } from "../../libc.ts";
import { openLibrary } from "../../runtime.ts";
import { WAKE_BYTES } from "../posix/waker.ts";

/** EFD_CLOEXEC (`<sys/eventfd.h>`, = O_CLOEXEC). */
const EFD_CLOEXEC = 0o2000000;
/** EFD_NONBLOCK (`<sys/eventfd.h>`, = O_NONBLOCK). */
const EFD_NONBLOCK = 0o4000;

let eventfdSymbols:
  | { eventfd(init: number, flags: number): number }
  | undefined;

/** Creates a non-blocking, close-on-exec eventfd. */
export function createEventFd(): number {
  eventfdSymbols ??= openLibrary(libcPath, {
    eventfd: { parameters: ["u32", "i32"], result: "i32" },
  }).symbols as unknown as typeof eventfdSymbols;
  return check(
    eventfdSymbols!.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
    "eventfd",
  );
}

/** The Linux waker: one eventfd, written and read as a counter. */
export class EventFdWaker implements Waker {
  /** The eventfd. */
  readonly fd: number;
  /** Other threads write the eventfd itself. */
  readonly wakeFd: number;
  private readonly buf = new Uint8Array(8);
  private closed = false;

  /** Creates the eventfd. */
  constructor() {
    this.fd = createEventFd();
    this.wakeFd = this.fd;
  }

  notify(): void {
    if (!this.closed) libc.write(this.fd, WAKE_BYTES, 8);
  }

  drain(): void {
    if (!this.closed) libc.read(this.fd, this.buf, 8);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }
}
