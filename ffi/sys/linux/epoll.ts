/**
 * epoll(7) selector (Linux).
 *
 * C API used:
 * ```c
 * int epoll_create1(int flags);
 * int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
 * int epoll_wait(int epfd, struct epoll_event *events, int maxevents,
 *                int timeout);
 *
 * struct epoll_event {      // x86-64: __attribute__((packed)), 12 bytes
 *   uint32_t events;        // offset 0
 *   epoll_data_t data;      // offset 4 (x86-64) or 8 (aarch64), 8 bytes
 * };                        // aarch64: natural alignment, 16 bytes
 * ```
 * We store the fd in `data`, so the kernel hands it back with each event.
 *
 * @module
 */
import { RuntimeError } from "../../errors.ts";
import {
  EVENT_READ,
  EVENT_WRITE,
  type ReadyEvent,
  type WaitSet,
} from "../../selector.ts";
import { allocate, check, errno, libc, libcPath } from "../../libc.ts";
import {
  arch,
  type NativeMemory,
  openLibrary,
  type SymbolSpec,
} from "../../runtime.ts";
import { EBADF, EINTR, ENOENT, EPERM, hostTable } from "../platform.ts";
import type { PlatformTable } from "../posix/table.ts";
import { LINUX } from "./constants.ts";
import { kernelTimeout, SelectorBase } from "../selector_base.ts";

/** The layout of `struct epoll_event` on this CPU. */
export const EPOLL_EVENT_LAYOUT: {
  readonly size: number;
  readonly eventsOffset: number;
  readonly dataOffset: number;
} = arch === "x64"
  ? { size: 12, eventsOffset: 0, dataOffset: 4 }
  : { size: 16, eventsOffset: 0, dataOffset: 8 };

const EPOLLIN = 0x001;
const EPOLLOUT = 0x004;
const EPOLLERR = 0x008;
const EPOLLHUP = 0x010;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
/** EPOLL_CLOEXEC (`<sys/epoll.h>`: = O_CLOEXEC). */
const EPOLL_CLOEXEC = LINUX.constants.O_CLOEXEC;

/** Whether this system has epoll. */
export const epollAvailable: boolean = hostTable.symbols.epoll;

/** The epoll symbols where `table`'s OS has them (Linux), else none. */
export function epollSymbols(table: PlatformTable): Record<string, SymbolSpec> {
  if (!table.symbols.epoll) return {};
  return {
    epoll_create1: { parameters: ["i32"], result: "i32" },
    epoll_ctl: { parameters: ["i32", "i32", "i32", "pointer"], result: "i32" },
    epoll_wait: {
      parameters: ["i32", "pointer", "i32", "i32"],
      result: "i32",
    },
  };
}

type EpollSymbols = {
  epoll_create1(flags: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, ev: unknown): number;
  epoll_wait(epfd: number, evs: unknown, max: number, timeout: number): number;
};

let symbols: EpollSymbols | undefined;
function epoll(): EpollSymbols {
  symbols ??= openLibrary(libcPath, epollSymbols(hostTable))
    .symbols as unknown as EpollSymbols;
  return symbols;
}

function toEpoll(events: number): number {
  return ((events & EVENT_READ) ? EPOLLIN : 0) |
    ((events & EVENT_WRITE) ? EPOLLOUT : 0);
}

/** A level-triggered epoll selector. */
export class EpollSelector<T = unknown> extends SelectorBase<T> {
  /** Backend name. */
  static readonly backend = "epoll";
  /** Backend name. */
  readonly name = "epoll";
  /** The epoll descriptor. */
  readonly epfd: number;
  private readonly ctlEvent: NativeMemory;
  private readonly ctlView: DataView;
  private events: NativeMemory;
  private eventsView: DataView;
  private capacity: number;
  private readonly waitSetValue: WaitSet;

  /** Creates an epoll instance (close-on-exec). */
  constructor() {
    super();
    if (!epollAvailable) throw new RuntimeError("epoll is not available here");
    this.epfd = check(epoll().epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
    this.ctlEvent = allocate(EPOLL_EVENT_LAYOUT.size);
    this.ctlView = new DataView(this.ctlEvent.bytes.buffer);
    this.capacity = 64;
    this.events = allocate(this.capacity * EPOLL_EVENT_LAYOUT.size);
    this.eventsView = new DataView(this.events.bytes.buffer);
    this.waitSetValue = { version: 0, targets: [[this.epfd, EVENT_READ]] };
  }

  /** Calls epoll_ctl(op) for `fd` with `events` (the fd is the event data). */
  private ctl(op: number, fd: number, events: number): number {
    this.ctlView.setUint32(EPOLL_EVENT_LAYOUT.eventsOffset, events, true);
    this.ctlView.setUint32(EPOLL_EVENT_LAYOUT.dataOffset, fd, true);
    this.ctlView.setUint32(EPOLL_EVENT_LAYOUT.dataOffset + 4, 0, true);
    return epoll().epoll_ctl(this.epfd, op, fd, this.ctlEvent.pointer);
  }

  /** Adds `fd` with `events` to the kernel's interest set. */
  protected osRegister(fd: number, events: number): void {
    if (this.ctl(EPOLL_CTL_ADD, fd, toEpoll(events)) < 0) {
      const code = errno();
      const detail = code === EPERM
        ? `fd ${fd} does not support polling (a regular file?)`
        : `fd ${fd}`;
      check(-1, "epoll_ctl", detail);
    }
  }

  /** Changes the kernel's events for `fd`. */
  protected osModify(fd: number, events: number): void {
    if (this.ctl(EPOLL_CTL_MOD, fd, toEpoll(events)) >= 0) return;
    // The old file was closed (the kernel forgot it) and the number reused.
    if (errno() === ENOENT) return this.osRegister(fd, events);
    check(-1, "epoll_ctl", `fd ${fd}`);
  }

  /** Removes `fd` from the kernel's interest set (a closed fd is fine). */
  protected osUnregister(fd: number): void {
    if (this.ctl(EPOLL_CTL_DEL, fd, 0) >= 0) return;
    const code = errno();
    // A closed fd has already left the interest list.
    if (code === EBADF || code === ENOENT) return;
    check(-1, "epoll_ctl", `fd ${fd}`);
  }

  /** Releases the kernel objects and native buffers. */
  protected osClose(): void {
    libc.close(this.epfd);
    this.ctlEvent.free();
    this.events.free();
  }

  /** Waits up to `timeoutMs` (0: poll, null: no limit) and returns the ready registrations. */
  select(timeoutMs: number | null): ReadyEvent<T>[] {
    this.checkOpen();
    this.growEvents();
    const n = epoll().epoll_wait(
      this.epfd,
      this.events.pointer,
      this.capacity,
      kernelTimeout(timeoutMs),
    );
    if (n <= 0) {
      if (n < 0 && errno() !== EINTR) check(n, "epoll_wait");
      return [];
    }
    const ready: ReadyEvent<T>[] = [];
    const view = this.eventsView;
    const { size, eventsOffset, dataOffset } = EPOLL_EVENT_LAYOUT;
    for (let i = 0; i < n; i++) {
      const ev = view.getUint32(i * size + eventsOffset, true);
      const fd = view.getUint32(i * size + dataOffset, true);
      const key = this.keys.get(fd);
      if (!key) continue;
      let mask = 0;
      if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) mask |= EVENT_READ;
      if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) mask |= EVENT_WRITE;
      mask &= key.events;
      if (mask) ready.push([key, mask]);
    }
    return ready;
  }

  /** Grows the event buffer with the number of registrations. */
  private growEvents(): void {
    if (this.keys.size <= this.capacity) return;
    let capacity = this.capacity;
    while (capacity < this.keys.size) capacity *= 2;
    this.events.free();
    this.capacity = capacity;
    this.events = allocate(capacity * EPOLL_EVENT_LAYOUT.size);
    this.eventsView = new DataView(this.events.bytes.buffer);
  }

  /** What another thread polls to learn that `select(0)` has work. */
  waitSet(): WaitSet {
    return this.waitSetValue;
  }
}
