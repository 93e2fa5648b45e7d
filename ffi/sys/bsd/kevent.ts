/**
 * kqueue(2)/kevent(2) per OS: the library, the symbol, `struct kevent`'s
 * layout and the filter and flag numbers (macOS, FreeBSD, OpenBSD, NetBSD,
 * and libkqueue on Linux). {@link KqueueSelector} in `./kqueue.ts` is built
 * on this file; nothing here keeps state but the loaded library.
 *
 * C API used (`<sys/event.h>`):
 * ```c
 * int kqueue(void);
 * int kevent(int kq, const struct kevent *changelist, int nchanges,
 *            struct kevent *eventlist, int nevents,
 *            const struct timespec *timeout);
 *   // NetBSD: nchanges and nevents are size_t, and the header renames the
 *   // function (__RENAME): __kevent100 (NetBSD 11, 72-byte kevent) or
 *   // __kevent50 (NetBSD 5-10, 40-byte kevent).
 * void libkqueue_drain_pending_close(void);  // libkqueue only, optional
 *
 * struct timespec { time_t tv_sec; long tv_nsec; };  // 16 bytes on LP64,
 *                                                     // every OS here
 * ```
 *
 * `struct kevent` on 64-bit systems (Deno and Bun are 64-bit only):
 * ```c
 * // macOS, xnu bsd/sys/event.h, declared under #pragma pack(4): 32 bytes
 * // on x86-64 and arm64 (every member already falls on its offset).
 * // libkqueue's include/sys/event.h (Linux) has the same 32 bytes.
 * struct kevent {
 *   uintptr_t ident;    // 0
 *   int16_t   filter;   // 8
 *   uint16_t  flags;    // 10
 *   uint32_t  fflags;   // 12
 *   intptr_t  data;     // 16
 *   void     *udata;    // 24
 * };
 * // FreeBSD 12+, sys/sys/event.h: 64 bytes. data is int64_t.
 * struct kevent { uintptr_t ident; short filter; unsigned short flags;
 *                 unsigned int fflags; int64_t data; void *udata;
 *                 uint64_t ext[4]; }; // ext at 32
 * // OpenBSD 5.5+, sys/sys/event.h: 32 bytes, the macOS offsets
 * // (data is int64_t).
 * // NetBSD, sys/sys/event.h: filter and flags are uint32_t, so data moves.
 * struct kevent { uintptr_t ident;  // 0
 *                 uint32_t filter;  // 8
 *                 uint32_t flags;   // 12
 *                 uint32_t fflags;  // 16
 *                 int64_t data;     // 24 (4 bytes of padding before it)
 *                 void *udata;      // 32
 *                 uint64_t ext[4];  // 40, NetBSD 11 (__kevent100) only
 * };                                // 40 bytes (__kevent50), 72 (__kevent100)
 * ```
 *
 * @module
 */
import { RuntimeError } from "../../errors.ts";
import { allocate } from "../../libc.ts";
import { platformTable, POSIX_PLATFORMS } from "../posix/table.ts";
import {
  type NativeMemory,
  type NativeType,
  openLibrary,
  platform,
  readEnv,
} from "../../runtime.ts";

/** The environment variable naming libkqueue's shared library (Linux). */
export const LIBKQUEUE_ENV = "AIOLOOP_LIBKQUEUE";

/** Add the event (implies enable). The same value on every OS. */
export const EV_ADD = 0x0001;
/** Delete the event. */
export const EV_DELETE = 0x0002;
/** Enable the event. */
export const EV_ENABLE = 0x0004;
/** Disable the event (not reported). */
export const EV_DISABLE = 0x0008;
/** Report once, then delete. */
export const EV_ONESHOT = 0x0010;
/** Reset the state after it is reported (edge-triggered). */
export const EV_CLEAR = 0x0020;
/** Return an EV_ERROR entry for every change (data 0 on success). */
export const EV_RECEIPT = 0x0040;
/** Returned: EOF (or the peer hung up); fflags may hold a socket error. */
export const EV_EOF = 0x8000;
/** Returned: the change failed; `data` holds the errno (0: receipt). */
export const EV_ERROR = 0x4000;
/** EVFILT_USER fflags: fire the event. */
export const NOTE_TRIGGER = 0x01000000;

/** `struct kevent` offsets and field sizes on one OS. */
export interface KeventLayout {
  /** sizeof(struct kevent). */
  readonly size: number;
  /** Offset of `ident` (uintptr_t, 8 bytes). */
  readonly ident: number;
  /** Offset of `filter`. */
  readonly filter: number;
  /** Width of `filter` and `flags`: 2 (int16/uint16) or 4 (uint32, NetBSD). */
  readonly shortWidth: 2 | 4;
  /** Offset of `flags`. */
  readonly flags: number;
  /** Offset of `fflags` (uint32). */
  readonly fflags: number;
  /** Offset of `data` (intptr_t or int64, 8 bytes). */
  readonly data: number;
  /** Offset of `udata` (a pointer). */
  readonly udata: number;
}

/** macOS, OpenBSD and libkqueue: 32 bytes. */
export const KEVENT_LAYOUT_32: KeventLayout = {
  size: 32,
  ident: 0,
  filter: 8,
  shortWidth: 2,
  flags: 10,
  fflags: 12,
  data: 16,
  udata: 24,
};
/** FreeBSD 12 and later: the 32 bytes above, then `uint64_t ext[4]`. */
export const KEVENT_LAYOUT_FREEBSD: KeventLayout = {
  ...KEVENT_LAYOUT_32,
  size: 64,
};
/** NetBSD 5 to 10 (`__kevent50`): uint32 filter and flags, 40 bytes. */
export const KEVENT_LAYOUT_NETBSD50: KeventLayout = {
  size: 40,
  ident: 0,
  filter: 8,
  shortWidth: 4,
  flags: 12,
  fflags: 16,
  data: 24,
  udata: 32,
};
/** NetBSD 11 (`__kevent100`): the 40 bytes above, then `uint64_t ext[4]`. */
export const KEVENT_LAYOUT_NETBSD100: KeventLayout = {
  ...KEVENT_LAYOUT_NETBSD50,
  size: 72,
};

/** `struct timespec` on LP64: tv_sec (int64) at 0, tv_nsec (long) at 8. */
export const TIMESPEC_SIZE = 16;

/** What differs between kqueue implementations. */
export interface KqueueAbi {
  /** Which kqueue: "darwin", "freebsd", "openbsd", "netbsd", "libkqueue". */
  readonly flavor: string;
  /** The shared library with kqueue and kevent. */
  readonly library: string;
  /** The exported name of kevent (NetBSD renames it). */
  readonly symbol: string;
  /** The C type of nchanges/nevents: int, or size_t on NetBSD. */
  readonly countType: NativeType;
  /** `struct kevent`. */
  readonly layout: KeventLayout;
  /** EVFILT_READ: -1, or 0 on NetBSD. */
  readonly EVFILT_READ: number;
  /** EVFILT_WRITE: -2, or 1 on NetBSD. */
  readonly EVFILT_WRITE: number;
  /**
   * EVFILT_USER: -10 on macOS and OpenBSD (7.8 and later have it; older
   * ones answer EINVAL, which the selector detects), -11 on FreeBSD and
   * libkqueue, 8 on NetBSD.
   */
  readonly EVFILT_USER: number;
}

/**
 * The kqueue ABI of `os` (a `process.platform` name). On Linux it is
 * libkqueue at `libkqueuePath`; undefined when there is no kqueue.
 * NetBSD's kevent symbol is settled when the library is opened
 * ({@link openKqueue}); this gives the NetBSD 11 one.
 */
export function kqueueAbi(
  os: string,
  libkqueuePath: string | undefined,
): KqueueAbi | undefined {
  const bsd = {
    // libSystem on macOS, libc on the BSDs (the per-OS tables name them).
    library: POSIX_PLATFORMS.includes(os) ? platformTable(os).libc : "",
    symbol: "kevent",
    countType: "i32" as NativeType,
    layout: KEVENT_LAYOUT_32,
    EVFILT_READ: -1,
    EVFILT_WRITE: -2,
  };
  switch (os) {
    case "darwin":
      return { ...bsd, flavor: "darwin", EVFILT_USER: -10 };
    case "freebsd":
      return {
        ...bsd,
        flavor: "freebsd",
        layout: KEVENT_LAYOUT_FREEBSD,
        EVFILT_USER: -11,
      };
    case "openbsd":
      return { ...bsd, flavor: "openbsd", EVFILT_USER: -10 };
    case "netbsd":
      return {
        ...bsd,
        flavor: "netbsd",
        symbol: "__kevent100",
        countType: "u64",
        layout: KEVENT_LAYOUT_NETBSD100,
        EVFILT_READ: 0,
        EVFILT_WRITE: 1,
        EVFILT_USER: 8,
      };
    case "linux":
      if (!libkqueuePath) return undefined;
      // libkqueue: the macOS layout with FreeBSD's filter numbers.
      return {
        ...bsd,
        flavor: "libkqueue",
        library: libkqueuePath,
        EVFILT_USER: -11,
      };
    default:
      return undefined;
  }
}

/** The path in AIOLOOP_LIBKQUEUE (empty counts as unset). */
export function libkqueuePath(): string | undefined {
  return readEnv(LIBKQUEUE_ENV) || undefined;
}

/**
 * Whether this system has kqueue: macOS and the BSDs, and Linux when
 * AIOLOOP_LIBKQUEUE names a built libkqueue.
 */
export const kqueueAvailable: boolean =
  kqueueAbi(platform, libkqueuePath()) !== undefined;

/**
 * Socket errors that libkqueue took. When epoll reports EPOLLERR on a
 * socket, libkqueue reads (and so clears) SO_ERROR to put it in `fflags`
 * with EV_EOF; real kqueue leaves SO_ERROR alone. The kqueue selector keeps
 * what libkqueue took here, by fd, until the socket layer asks.
 */
const takenSocketErrors = new Map<number, number>();

/**
 * Whether libkqueue has taken a socket error that a socket call must
 * report (a cheap check for the sockets' hot paths; real kqueue never does).
 */
export function kqueueSocketErrorsPending(): boolean {
  return takenSocketErrors.size !== 0;
}

/** Records a socket error that libkqueue read from `fd`'s SO_ERROR. */
export function recordTakenSocketError(fd: number, code: number): void {
  if (code !== 0) takenSocketErrors.set(fd, code);
}

/**
 * The socket error libkqueue took from `fd` (and forgets it), or 0. A
 * socket's pending-error check (SO_ERROR) should fall back to this when
 * getsockopt says 0. The socket layer forgets it when the socket closes
 * and when a new socket gets the number.
 */
export function takeKqueueSocketError(fd: number): number {
  const code = takenSocketErrors.get(fd) ?? 0;
  takenSocketErrors.delete(fd);
  return code;
}

/** Forgets a recorded error (the socket with that fd number is gone). */
export function forgetTakenSocketError(fd: number): void {
  takenSocketErrors.delete(fd);
}

/** The bound kqueue functions. */
export interface KqueueFunctions {
  /** The ABI these were bound with. */
  readonly abi: KqueueAbi;
  /** `int kqueue(void)`. */
  kqueue(): number;
  /** `kevent(...)`; pointers are {@link NativeMemory} pointers or null. */
  kevent(
    kq: number,
    changes: unknown,
    nchanges: number,
    events: unknown,
    nevents: number,
    timeout: unknown,
  ): number;
  /** libkqueue: finishes closing kqueues now; a no-op elsewhere. */
  drainPendingClose(): void;
}

let loaded: KqueueFunctions | undefined;

function bind(abi: KqueueAbi): KqueueFunctions {
  const count = abi.countType;
  const lib = openLibrary(abi.library, {
    kqueue: { parameters: [], result: "i32" },
    [abi.symbol]: {
      parameters: ["i32", "pointer", count, "pointer", count, "pointer"],
      result: "i32",
    },
  } as Record<string, { parameters: NativeType[]; result: NativeType }>);
  let drain = () => {};
  if (abi.flavor === "libkqueue") {
    try {
      const extra = openLibrary(abi.library, {
        libkqueue_drain_pending_close: { parameters: [], result: "void" },
      });
      drain = () => void extra.symbols.libkqueue_drain_pending_close();
    } catch {
      // An older libkqueue: closes finish on its monitor thread.
    }
  }
  const kevent = lib.symbols[abi.symbol];
  return {
    abi,
    kqueue: lib.symbols.kqueue as () => number,
    kevent: kevent as KqueueFunctions["kevent"],
    drainPendingClose: drain,
  };
}

/**
 * Opens this system's kqueue library once (on NetBSD, `__kevent100` if the
 * C library has it, else `__kevent50` with the 40-byte kevent). Throws when
 * there is no kqueue or the library cannot be loaded.
 */
export function openKqueue(): KqueueFunctions {
  if (loaded) return loaded;
  const abi = kqueueAbi(platform, libkqueuePath());
  if (!abi) {
    throw new RuntimeError(
      platform === "linux"
        ? `kqueue is not available: set ${LIBKQUEUE_ENV} to a built libkqueue (scripts/build-libkqueue.sh)`
        : `kqueue is not available on ${platform}`,
    );
  }
  try {
    loaded = bind(abi);
  } catch (error) {
    if (abi.flavor !== "netbsd") {
      throw new RuntimeError(
        `cannot load kqueue from ${abi.library}: ${error}`,
        {
          cause: error,
        },
      );
    }
    loaded = bind({
      ...abi,
      symbol: "__kevent50",
      layout: KEVENT_LAYOUT_NETBSD50,
    });
  }
  return loaded;
}

/** A native array of `struct kevent`, written and read through a DataView. */
export class KeventArray {
  /** The native memory (malloc: the kernel may use it from any thread). */
  memory: NativeMemory;
  /** Entries it has room for. */
  capacity: number;
  private view: DataView;

  /** Allocates room for `capacity` entries. */
  constructor(private readonly layout: KeventLayout, capacity: number) {
    this.capacity = capacity;
    this.memory = allocate(capacity * layout.size);
    this.view = new DataView(this.memory.bytes.buffer);
  }

  /** Makes room for at least `capacity` entries (contents are dropped). */
  reserve(capacity: number): void {
    if (capacity <= this.capacity) return;
    let next = this.capacity;
    while (next < capacity) next *= 2;
    this.memory.free();
    this.capacity = next;
    this.memory = allocate(next * this.layout.size);
    this.view = new DataView(this.memory.bytes.buffer);
  }

  /**
   * Writes entry `i`: data 0, ext zeroed, `udata` an integer below 2^53
   * (a tag, never dereferenced).
   */
  set(
    i: number,
    ident: number,
    filter: number,
    flags: number,
    fflags = 0,
    udata = 0,
  ): void {
    const L = this.layout;
    const at = i * L.size;
    this.memory.bytes.fill(0, at, at + L.size);
    const v = this.view;
    v.setUint32(at + L.ident, ident >>> 0, true);
    v.setUint32(at + L.ident + 4, 0, true);
    if (L.shortWidth === 2) {
      v.setInt16(at + L.filter, filter, true);
      v.setUint16(at + L.flags, flags, true);
    } else {
      v.setUint32(at + L.filter, filter >>> 0, true);
      v.setUint32(at + L.flags, flags, true);
    }
    v.setUint32(at + L.fflags, fflags >>> 0, true);
    v.setUint32(at + L.udata, udata % 0x1_0000_0000, true);
    v.setUint32(at + L.udata + 4, Math.floor(udata / 0x1_0000_0000), true);
  }

  /** The `udata` of entry `i`, as written by {@link set}. */
  udata(i: number): number {
    const at = i * this.layout.size + this.layout.udata;
    return this.view.getUint32(at, true) +
      this.view.getUint32(at + 4, true) * 0x1_0000_0000;
  }

  /** The `ident` of entry `i` (fds and our small idents fit in 32 bits). */
  ident(i: number): number {
    return this.view.getUint32(i * this.layout.size + this.layout.ident, true);
  }

  /** The `filter` of entry `i` (signed on every OS but NetBSD). */
  filter(i: number): number {
    const at = i * this.layout.size + this.layout.filter;
    return this.layout.shortWidth === 2
      ? this.view.getInt16(at, true)
      : this.view.getUint32(at, true);
  }

  /** The `flags` of entry `i`. */
  flags(i: number): number {
    const at = i * this.layout.size + this.layout.flags;
    return this.layout.shortWidth === 2
      ? this.view.getUint16(at, true)
      : this.view.getUint32(at, true);
  }

  /** The `fflags` of entry `i` (with EV_EOF: a socket's error, if any). */
  fflags(i: number): number {
    return this.view.getUint32(i * this.layout.size + this.layout.fflags, true);
  }

  /** Zeroes entry `i`. */
  clear(i: number): void {
    const at = i * this.layout.size;
    this.memory.bytes.fill(0, at, at + this.layout.size);
  }

  /** The low 32 bits of `data` of entry `i` (an errno for EV_ERROR). */
  data(i: number): number {
    return this.view.getInt32(i * this.layout.size + this.layout.data, true);
  }

  /** Frees the native memory. */
  free(): void {
    this.memory.free();
  }
}
