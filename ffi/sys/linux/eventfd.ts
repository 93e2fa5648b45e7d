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
import { RuntimeError } from "../../errors.ts";
import type { Waker } from "../../selector.ts";
import { check, libc, libcPath } from "../../libc.ts";
import { openLibrary, type SymbolSpec } from "../../runtime.ts";
import { WAKE_BYTES } from "../posix/waker.ts";
import { hostTable, type PlatformTable } from "../posix/table.ts";
import { LINUX } from "./constants.ts";

/** EFD_CLOEXEC (`<sys/eventfd.h>`: = O_CLOEXEC). */
const EFD_CLOEXEC = LINUX.constants.O_CLOEXEC;
/** EFD_NONBLOCK (`<sys/eventfd.h>`: = O_NONBLOCK). */
const EFD_NONBLOCK = LINUX.constants.O_NONBLOCK;

/** The eventfd symbol where `table`'s OS has one (Linux), else none. */
export function eventfdSymbols(
  table: PlatformTable,
): Record<string, SymbolSpec> {
  return table.symbols.eventfd
    ? { eventfd: { parameters: ["u32", "i32"], result: "i32" } }
    : {};
}

let eventfdSymbolsBound:
  | { eventfd(init: number, flags: number): number }
  | undefined;

/** Creates a non-blocking, close-on-exec eventfd. */
export function createEventFd(): number {
  if (!hostTable.symbols.eventfd) {
    throw new RuntimeError(`eventfd is not available on ${hostTable.os}`);
  }
  eventfdSymbolsBound ??= openLibrary(libcPath, eventfdSymbols(hostTable))
    .symbols as unknown as typeof eventfdSymbolsBound;
  return check(
    eventfdSymbolsBound!.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
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
