/**
 * The portable waker: a non-blocking self-pipe (asyncio's self-pipe, mio's
 * `Waker` where there is no eventfd), and the one way any thread signals a
 * waker descriptor.
 *
 * C API used (POSIX):
 * ```c
 * int pipe2(int pipefd[2], int flags);    // or pipe() + fcntl() (macOS)
 * ssize_t read(int fd, void *buf, size_t count);
 * ssize_t write(int fd, const void *buf, size_t count);
 * ```
 *
 * @module
 */
import type { Waker } from "../../selector.ts";
import { libc, nonBlockingPipe } from "../../libc.ts";

/**
 * What a signal writes: 8 bytes, a u64 of 1. An eventfd needs exactly 8
 * bytes (the counter); a pipe takes them as they are.
 */
export const WAKE_BYTES: Uint8Array = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

/**
 * Makes a waker readable from any thread: writes to its `wakeFd` (the
 * eventfd, or the pipe's write end). A full pipe already wakes its reader,
 * so EAGAIN is ignored.
 */
export function signalFd(wakeFd: number): void {
  libc.write(wakeFd, WAKE_BYTES, WAKE_BYTES.length);
}

/** The portable waker: a non-blocking, close-on-exec self-pipe. */
export class PipeWaker implements Waker {
  /** The read end, which the selector watches. */
  readonly fd: number;
  /** The write end: what other threads signal. */
  readonly wakeFd: number;
  private readonly buf = new Uint8Array(4096);
  private closed = false;

  /** Creates the pipe. */
  constructor() {
    [this.fd, this.wakeFd] = nonBlockingPipe();
  }

  notify(): void {
    if (!this.closed) signalFd(this.wakeFd);
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
    libc.close(this.wakeFd);
  }
}
