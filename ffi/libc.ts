/**
 * The libc calls the loop needs, bound once per thread, with errno access.
 *
 * Each binding states its C signature. Calls that fail return -1 and set
 * errno; {@link check} turns that into an {@link OSError}. Only symbols the
 * OS has are bound ({@link libcSymbols}): the errno cell comes from
 * `__errno_location` (glibc), `__error` (macOS, FreeBSD) or `__errno`
 * (OpenBSD, NetBSD), and pipes from pipe2 where it exists, else from pipe
 * and fcntl (macOS).
 *
 * @module
 */
import { type OSError, osErrorClass } from "./errors.ts";
import {
  arch,
  type NativeFunction,
  type NativeMemory,
  type NativeType,
  openLibrary,
  type Pointer,
  pointerAddress,
  type SymbolSpec,
  viewNative,
} from "./runtime.ts";
import { errnoName, hostTable, type PlatformTable } from "./sys/posix/table.ts";

/**
 * Apple's arm64 ABI passes variadic arguments on the stack, where named
 * ones of the same type go in registers x0-x7. An FFI call knows no
 * variadics, so on macOS arm64 the variadic argument of fcntl and open is
 * bound as a 9th parameter (the first stack slot, where the callee's
 * va_arg reads it) after padding x2-x7. Everywhere else (System V x86-64,
 * AAPCS64 on Linux and the BSDs) a variadic int travels like a named one.
 */
export function variadicOnStack(table: PlatformTable, cpu: string): boolean {
  return table.os === "darwin" && cpu === "arm64";
}

const PAD: NativeType[] = ["i64", "i64", "i64", "i64", "i64", "i64"];

/**
 * The libc symbols bound on `table`'s OS and `cpu`, by C name. The same C
 * signature on every OS here (LP64: `size_t`, `ssize_t` and `off_t` are
 * 64-bit):
 * ```c
 * int close(int fd);
 * ssize_t read(int fd, void *buf, size_t count);
 * ssize_t write(int fd, const void *buf, size_t count);
 * int pipe(int fds[2]);                  // POSIX, everywhere
 * int pipe2(int fds[2], int flags);      // Linux, FreeBSD 10+, OpenBSD, NetBSD
 * int fcntl(int fd, int cmd, ...);       // one int after cmd
 * int *__errno_location(void);  // glibc <bits/errno.h>
 * int *__error(void);           // macOS, FreeBSD <sys/errno.h>
 * int *__errno(void);           // OpenBSD, NetBSD <sys/errno.h>
 * char *strerror(int errnum);
 * void *malloc(size_t size);
 * void free(void *ptr);
 * int open(const char *path, int flags, ...);  // mode_t mode, as an int
 * ssize_t pread(int fd, void *buf, size_t count, off_t offset);
 *   // result read as int: counts stay below 2^31
 * off_t lseek(int fd, off_t offset, int whence);
 * ```
 * On macOS arm64 fcntl and open take the padding of
 * {@link variadicOnStack}.
 */
export function libcSymbols(
  table: PlatformTable,
  cpu: string = arch,
): Record<string, SymbolSpec> {
  const has = table.symbols;
  const stack = variadicOnStack(table, cpu);
  const specs: Record<string, SymbolSpec> = {
    close: { parameters: ["i32"], result: "i32" },
    read: { parameters: ["i32", "buffer", "u64"], result: "i64" },
    write: { parameters: ["i32", "buffer", "u64"], result: "i64" },
    pipe: { parameters: ["buffer"], result: "i32" },
    fcntl: {
      parameters: stack ? ["i32", "i32", ...PAD, "i64"] : ["i32", "i32", "i32"],
      result: "i32",
    },
    [has.errnoLocation]: { parameters: [], result: "pointer" },
    strerror: { parameters: ["i32"], result: "pointer" },
    malloc: { parameters: ["u64"], result: "pointer" },
    free: { parameters: ["pointer"], result: "void" },
    open: {
      parameters: stack ? ["buffer", "i32", ...PAD, "i64"] : [
        "buffer",
        "i32",
        "u32",
      ],
      result: "i32",
    },
    pread: { parameters: ["i32", "buffer", "u64", "i64"], result: "i32" },
    lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  };
  if (has.pipe2) specs.pipe2 = { parameters: ["buffer", "i32"], result: "i32" };
  return specs;
}

const lib = openLibrary(hostTable.libc, libcSymbols(hostTable));
const raw = lib.symbols as Record<string, NativeFunction>;
const STACK_VARIADIC = variadicOnStack(hostTable, arch);

/** The libc calls everyone uses, numbers in and numbers out. */
export interface LibcCalls {
  /** `int close(int fd)`. */
  close(fd: number): number;
  /** `ssize_t read(int fd, void *buf, size_t count)`. */
  read(fd: number, buf: Uint8Array, count: number): number;
  /** `ssize_t write(int fd, const void *buf, size_t count)`. */
  write(fd: number, buf: Uint8Array, count: number): number;
  /** `int fcntl(int fd, int cmd, int arg)`. */
  fcntl(fd: number, cmd: number, arg: number): number;
  /** `char *strerror(int errnum)`. */
  strerror(errnum: number): Pointer;
  /** `void *malloc(size_t size)`. */
  malloc(size: number): Pointer;
  /** `void free(void *ptr)`. */
  free(p: Pointer): void;
  /** `int open(const char *path, int flags, mode_t mode)`. */
  open(path: Uint8Array, flags: number, mode: number): number;
  /** `ssize_t pread(int fd, void *buf, size_t count, off_t offset)`. */
  pread(fd: number, buf: Uint8Array, count: number, offset: number): number;
  /** `off_t lseek(int fd, off_t offset, int whence)`. */
  lseek(fd: number, offset: number, whence: number): number;
}

const call = raw as unknown as LibcCalls;

/**
 * The bound libc functions (numbers in, numbers out): the bound symbols
 * themselves (not a spread copy, which made Deno's FFI calls slower), with
 * fcntl and open wrapped where variadic arguments go on the stack.
 */
export const libc: LibcCalls = call;
if (STACK_VARIADIC) padVariadicCalls(call);

/**
 * Replaces `calls.fcntl` and `calls.open`, bound with six padding
 * registers before their variadic argument ({@link libcSymbols} on a
 * {@link variadicOnStack} ABI), by wrappers with the C signature that
 * fill the padding. The bound functions are taken first: `calls` is the
 * bound symbol object itself, so a wrapper that looked them up on it at
 * call time would call itself.
 */
export function padVariadicCalls(
  calls: Pick<LibcCalls, "fcntl" | "open">,
): void {
  const fcntl = calls.fcntl as unknown as NativeFunction;
  const open = calls.open as unknown as NativeFunction;
  calls.fcntl = (fd, cmd, arg) =>
    fcntl(fd, cmd, 0, 0, 0, 0, 0, 0, arg) as number;
  calls.open = (path, flags, mode) =>
    open(path, flags, 0, 0, 0, 0, 0, 0, mode) as number;
}

const pipeCalls = lib.symbols as unknown as {
  pipe(fds: Int32Array): number;
  pipe2?(fds: Int32Array, flags: number): number;
};

/** The path of the C library this thread loaded. */
export const libcPath: string = hostTable.libc;

// errno is thread-local; its address is fixed for the life of this thread.
const errnoCell = new Int32Array(
  viewNative(
    raw[hostTable.symbols.errnoLocation]() as Pointer,
    4,
  ),
);

/** The current thread's errno. */
export function errno(): number {
  return errnoCell[0];
}

/** The C library's text for an errno value. */
export function strerror(code: number): string {
  const p = libc.strerror(code);
  if (pointerAddress(p) === 0) return `Unknown error ${code}`;
  const bytes = new Uint8Array(viewNative(p, 256));
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(bytes.subarray(0, end < 0 ? 256 : end));
}

/** Builds the {@link OSError} for an errno value. */
export function osError(
  code: number,
  syscall: string,
  detail?: string,
): OSError {
  const name = errnoName(code);
  const ErrorClass = osErrorClass(name);
  return new ErrorClass(code, name, strerror(code), syscall, detail);
}

/** Returns `result`, or throws the OSError for errno when it is negative. */
export function check(
  result: number,
  syscall: string,
  detail?: string,
): number {
  if (result < 0) throw osError(errno(), syscall, detail);
  return result;
}

/** Allocates `size` bytes with malloc; zero-filled. */
export function allocate(size: number): NativeMemory {
  const pointer = libc.malloc(size);
  const address = pointerAddress(pointer);
  if (address === 0) throw new RangeError(`malloc(${size}) failed`);
  const bytes = new Uint8Array(viewNative(pointer, size));
  bytes.fill(0);
  let freed = false;
  return {
    pointer,
    address,
    bytes,
    free() {
      if (freed) return;
      freed = true;
      libc.free(pointer);
    },
  };
}

const {
  F_GETFD,
  F_SETFD,
  F_GETFL,
  F_SETFL,
  FD_CLOEXEC,
  O_CLOEXEC,
  O_NONBLOCK,
} = hostTable.constants;

/** Whether `fd` is an open descriptor of this process. */
export function isOpenFd(fd: number): boolean {
  return libc.fcntl(fd, F_GETFD, 0) >= 0;
}

/**
 * Makes `fd` non-blocking (O_NONBLOCK) and close-on-exec (FD_CLOEXEC) with
 * fcntl, for systems whose calls cannot set them atomically (macOS).
 */
export function setNonBlockingCloexec(fd: number): void {
  const flags = check(libc.fcntl(fd, F_GETFL, 0), "fcntl", `fd ${fd}`);
  if (!(flags & O_NONBLOCK)) {
    check(libc.fcntl(fd, F_SETFL, flags | O_NONBLOCK), "fcntl", `fd ${fd}`);
  }
  const fdFlags = check(libc.fcntl(fd, F_GETFD, 0), "fcntl", `fd ${fd}`);
  if (!(fdFlags & FD_CLOEXEC)) {
    check(libc.fcntl(fd, F_SETFD, fdFlags | FD_CLOEXEC), "fcntl", `fd ${fd}`);
  }
}

/**
 * A non-blocking, close-on-exec pipe: `[readFd, writeFd]`. pipe2 sets both
 * flags atomically where it exists; elsewhere (macOS) pipe() then fcntl()
 * on each end. `atomic` false takes the fcntl path on any OS (tests).
 */
export function nonBlockingPipe(
  atomic: boolean = pipeCalls.pipe2 !== undefined,
): [number, number] {
  const fds = new Int32Array(2);
  if (atomic) {
    check(pipeCalls.pipe2!(fds, O_NONBLOCK | O_CLOEXEC), "pipe2");
    return [fds[0], fds[1]];
  }
  check(pipeCalls.pipe(fds), "pipe");
  try {
    setNonBlockingCloexec(fds[0]);
    setNonBlockingCloexec(fds[1]);
  } catch (e) {
    libc.close(fds[0]);
    libc.close(fds[1]);
    throw e;
  }
  return [fds[0], fds[1]];
}

/** Closes `fd`, throwing an OSError on failure. */
export function closeFd(fd: number): void {
  check(libc.close(fd), "close", `fd ${fd}`);
}
