/**
 * poll(2) selector: the portable fallback (POSIX).
 *
 * C API used:
 * ```c
 * int poll(struct pollfd *fds, nfds_t nfds, int timeout);
 *   // nfds_t: unsigned long on Linux, unsigned int on macOS and the BSDs;
 *   // bound as u64: the callee reads the low half of the register.
 *
 * struct pollfd {     // 8 bytes on every ABI we support
 *   int   fd;         // offset 0
 *   short events;     // offset 4
 *   short revents;    // offset 6
 * };
 * ```
 *
 * @module
 */
import { RuntimeError } from "../../errors.ts";
import {
  EVENT_INVALID,
  EVENT_READ,
  EVENT_WRITE,
  type ReadyEvent,
  type WaitSet,
} from "../../selector.ts";
import { allocate, check, errno, isOpenFd, libcPath } from "../../libc.ts";
import { type NativeMemory, openLibrary, platform } from "../../runtime.ts";
import { EBADF, EINTR } from "../platform.ts";
import { kernelTimeout, SelectorBase } from "../selector_base.ts";
import { osError } from "../../libc.ts";

/** `struct pollfd` layout. */
export const POLLFD_LAYOUT = {
  size: 8,
  fdOffset: 0,
  eventsOffset: 4,
  reventsOffset: 6,
} as const;

/**
 * poll(2) flags: the same on Linux (`<asm-generic/poll.h>`), macOS (xnu
 * `bsd/sys/poll.h`), FreeBSD, OpenBSD and NetBSD (`sys/sys/poll.h`).
 */
export const POLLIN = 0x001;
/** Writable. */
export const POLLOUT = 0x004;
/** Error condition. */
export const POLLERR = 0x008;
/** Hang up. */
export const POLLHUP = 0x010;
/** The fd is not open. */
export const POLLNVAL = 0x020;

/** Whether poll(2) is available (every POSIX system). */
export const pollAvailable: boolean = platform !== "win32";

type PollSymbols = {
  poll(fds: unknown, nfds: number, timeout: number): number;
};
let symbols: PollSymbols | undefined;
function pollLib(): PollSymbols {
  symbols ??= openLibrary(libcPath, {
    poll: { parameters: ["pointer", "u64", "i32"], result: "i32" },
  }).symbols as unknown as PollSymbols;
  return symbols;
}

/** Converts EVENT_READ/EVENT_WRITE to poll(2) flags. */
export function toPollEvents(events: number): number {
  return ((events & EVENT_READ) ? POLLIN : 0) |
    ((events & EVENT_WRITE) ? POLLOUT : 0);
}

/**
 * Writes pollfd entry `index` of the array `view` covers: `fd`, `events`
 * (POLL* bits), revents 0.
 */
export function writePollfd(
  view: DataView,
  index: number,
  fd: number,
  events: number,
): void {
  const at = index * POLLFD_LAYOUT.size;
  view.setInt32(at + POLLFD_LAYOUT.fdOffset, fd, true);
  view.setInt16(at + POLLFD_LAYOUT.eventsOffset, events, true);
  view.setInt16(at + POLLFD_LAYOUT.reventsOffset, 0, true);
}

/** A poll(2) selector. */
export class PollSelector<T = unknown> extends SelectorBase<T> {
  /** Backend name. */
  static readonly backend = "poll";
  /** Backend name. */
  readonly name = "poll";
  private fds: NativeMemory | undefined;
  private fdsView: DataView | undefined;
  private fdsCount = 0;
  private fdsCapacity = 0;
  private dirty = true;
  private waitSetValue: WaitSet = { version: 0, targets: [] };
  private waitSetStale = false;

  /** Creates an empty poll set. */
  constructor() {
    super();
    if (!pollAvailable) throw new RuntimeError("poll is not available here");
    pollLib();
  }

  /** Adds `fd` with `events` to the kernel's interest set. */
  protected osRegister(fd: number, _events: number): void {
    // poll(2) does not check fds at registration; we do, for a clear error.
    if (!isOpenFd(fd)) throw osError(EBADF, "poll", `fd ${fd}`);
    this.changed();
  }

  /** Changes the kernel's events for `fd`. */
  protected osModify(_fd: number, _events: number): void {
    this.changed();
  }

  /** Removes `fd` from the kernel's interest set (a closed fd is fine). */
  protected osUnregister(_fd: number): void {
    this.changed();
  }

  /** Releases the kernel objects and native buffers. */
  protected osClose(): void {
    this.fds?.free();
    this.fds = undefined;
  }

  /** Marks the pollfd array and the wait set for rebuilding. */
  private changed(): void {
    this.dirty = true;
    this.waitSetStale = true;
  }

  /** Rebuilds the native pollfd array from the key map. */
  private rebuild(): void {
    const n = this.keys.size;
    if (n > this.fdsCapacity || !this.fds) {
      this.fds?.free();
      this.fdsCapacity = Math.max(16, n * 2);
      this.fds = allocate(this.fdsCapacity * POLLFD_LAYOUT.size);
      this.fdsView = new DataView(this.fds.bytes.buffer);
    }
    const view = this.fdsView!;
    let i = 0;
    for (const key of this.keys.values()) {
      writePollfd(view, i++, key.fd, toPollEvents(key.events));
    }
    this.fdsCount = n;
    this.dirty = false;
  }

  /** Waits up to `timeoutMs` (0: poll, null: no limit) and returns the ready registrations. */
  select(timeoutMs: number | null): ReadyEvent<T>[] {
    this.checkOpen();
    if (this.dirty) this.rebuild();
    const n = pollLib().poll(
      this.fds!.pointer,
      this.fdsCount,
      kernelTimeout(timeoutMs),
    );
    if (n <= 0) {
      if (n < 0 && errno() !== EINTR) check(n, "poll");
      return [];
    }
    const ready: ReadyEvent<T>[] = [];
    const view = this.fdsView!;
    for (let i = 0, found = 0; i < this.fdsCount && found < n; i++) {
      const at = i * POLLFD_LAYOUT.size;
      const rev = view.getInt16(at + POLLFD_LAYOUT.reventsOffset, true);
      if (rev === 0) continue;
      found++;
      const key = this.keys.get(
        view.getInt32(at + POLLFD_LAYOUT.fdOffset, true),
      );
      if (!key) continue;
      if (rev & POLLNVAL) {
        ready.push([key, EVENT_INVALID]);
        continue;
      }
      let mask = 0;
      if (rev & (POLLIN | POLLERR | POLLHUP)) mask |= EVENT_READ;
      if (rev & (POLLOUT | POLLERR | POLLHUP)) mask |= EVENT_WRITE;
      mask &= key.events;
      if (mask) ready.push([key, mask]);
    }
    return ready;
  }

  /** What another thread polls to learn that `select(0)` has work. */
  waitSet(): WaitSet {
    if (this.waitSetStale) {
      const targets: [number, number][] = [];
      for (const key of this.keys.values()) targets.push([key.fd, key.events]);
      this.waitSetValue = { version: this.waitSetValue.version + 1, targets };
      this.waitSetStale = false;
    }
    return this.waitSetValue;
  }
}
