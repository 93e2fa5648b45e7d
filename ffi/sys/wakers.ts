/**
 * Wakers: a descriptor that any thread can make readable, so that a poller
 * waiting on it returns. eventfd on Linux, a non-blocking self-pipe
 * elsewhere (mio's `Waker`, asyncio's self-pipe).
 *
 * C API used:
 * ```c
 * int eventfd(unsigned int initval, int flags);  // Linux
 * int pipe2(int pipefd[2], int flags);           // Linux, BSD
 * ssize_t read(int fd, void *buf, size_t count);
 * ssize_t write(int fd, const void *buf, size_t count);
 * ```
 * An eventfd is written and read 8 bytes at a time: a little-endian u64
 * counter.
 *
 * @module
 */
import type { Waker } from "../selector.ts";
import { check, libc, libcPath } from "../libc.ts";
import { openLibrary, platform } from "../runtime.ts";

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const O_NONBLOCK = platform === "linux" ? 0o4000 : 0x0004;
const O_CLOEXEC = platform === "linux" ? 0o2000000 : 0x01000000;

const ONE = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

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

/** Makes an eventfd (or the write end of a pipe) readable. Any thread. */
export function signalFd(fd: number): void {
  libc.write(fd, ONE, platform === "linux" ? 8 : 1);
}

/** The Linux waker: one eventfd, written and read as a counter. */
export class EventFdWaker implements Waker {
  /** The eventfd. */
  readonly fd: number;
  private readonly buf = new Uint8Array(8);
  private closed = false;

  /** Creates the eventfd. */
  constructor() {
    this.fd = createEventFd();
  }

  notify(): void {
    if (!this.closed) libc.write(this.fd, ONE, 8);
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

/** The portable waker: a non-blocking self-pipe. */
export class PipeWaker implements Waker {
  /** The read end, which the selector watches. */
  readonly fd: number;
  /** The write end. */
  readonly writeFd: number;
  private readonly buf = new Uint8Array(4096);
  private closed = false;

  /** Creates the pipe. */
  constructor() {
    const fds = new Int32Array(2);
    check(libc.pipe2(fds, O_NONBLOCK | O_CLOEXEC), "pipe2");
    this.fd = fds[0];
    this.writeFd = fds[1];
  }

  notify(): void {
    // A full pipe already wakes the reader: EAGAIN is fine to ignore.
    if (!this.closed) libc.write(this.writeFd, ONE, 1);
  }

  drain(): void {
    while (!this.closed && libc.read(this.fd, this.buf, this.buf.length) > 0) {
      // keep reading until EAGAIN
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
    libc.close(this.writeFd);
  }
}

/** The best waker for this OS. */
export function createWaker(): Waker {
  return platform === "linux" ? new EventFdWaker() : new PipeWaker();
}
