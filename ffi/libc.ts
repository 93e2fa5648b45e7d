/**
 * The libc calls the loop needs, bound once per thread, with errno access.
 *
 * Each binding states its C signature. Calls that fail return -1 and set
 * errno; {@link check} turns that into an {@link OSError}.
 *
 * @module
 */
import { type OSError, osErrorClass } from "./errors.ts";
import {
  type NativeMemory,
  openLibrary,
  platform,
  type Pointer,
  pointerAddress,
  viewNative,
} from "./runtime.ts";
import { errnoName } from "./sys/errno.ts";

const LIBC_PATHS: Record<string, string> = {
  linux: "libc.so.6",
  darwin: "libSystem.B.dylib",
  freebsd: "libc.so.7",
};

const lib = openLibrary(LIBC_PATHS[platform] ?? "libc.so.6", {
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "u64"], result: "i64" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "u64"], result: "i64" },
  // int pipe2(int pipefd[2], int flags);
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  // int socketpair(int domain, int type, int protocol, int sv[2]);
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int fcntl(int fd, int cmd, ... /* int arg */);  (called with 3 ints)
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int dup(int oldfd);
  dup: { parameters: ["i32"], result: "i32" },
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // char *strerror(int errnum);
  strerror: { parameters: ["i32"], result: "pointer" },
  // void *malloc(size_t size);
  malloc: { parameters: ["u64"], result: "pointer" },
  // void free(void *ptr);
  free: { parameters: ["pointer"], result: "void" },
  // int open(const char *pathname, int flags, mode_t mode);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // ssize_t pread(int fd, void *buf, size_t count, off_t offset);
  //   (result read as int: counts stay below 2^31)
  pread: { parameters: ["i32", "buffer", "u64", "i64"], result: "i32" },
  // off_t lseek(int fd, off_t offset, int whence);
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
});

/** The bound libc functions (numbers in, numbers out). */
export const libc = lib.symbols as {
  close(fd: number): number;
  read(fd: number, buf: Uint8Array, count: number): number;
  write(fd: number, buf: Uint8Array, count: number): number;
  pipe2(fds: Int32Array, flags: number): number;
  socketpair(
    domain: number,
    type: number,
    protocol: number,
    sv: Int32Array,
  ): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  dup(fd: number): number;
  __errno_location(): Pointer;
  strerror(errnum: number): Pointer;
  malloc(size: number): Pointer;
  free(p: Pointer): void;
  open(path: Uint8Array, flags: number, mode: number): number;
  pread(fd: number, buf: Uint8Array, count: number, offset: number): number;
  lseek(fd: number, offset: number, whence: number): number;
};

/** The path of the C library this thread loaded. */
export const libcPath: string = LIBC_PATHS[platform] ?? "libc.so.6";

// errno is thread-local; its address is fixed for the life of this thread.
const errnoCell = new Int32Array(viewNative(libc.__errno_location(), 4));

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

const F_GETFD = 1;

/** Whether `fd` is an open descriptor of this process. */
export function isOpenFd(fd: number): boolean {
  return libc.fcntl(fd, F_GETFD, 0) >= 0;
}

/** Closes `fd`, throwing an OSError on failure. */
export function closeFd(fd: number): void {
  check(libc.close(fd), "close", `fd ${fd}`);
}
