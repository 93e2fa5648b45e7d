/**
 * kqueue(2) selector: macOS and the BSDs, and libkqueue on Linux (CPython's
 * `KqueueSelector`, mio's `kqueue.rs`). Library, symbol, `struct kevent`
 * layouts and constants per OS are in `./kevent.ts`, next to their C
 * declarations.
 *
 * Level-triggered: EVFILT_READ and EVFILT_WRITE without EV_CLEAR. A reader
 * and a writer on one fd are two independent filters; register, modify and
 * unregister add or delete only the filters that change.
 *
 * When changes reach the kernel:
 * - `modify()` is batched: the change list goes with the next `kevent()`
 *   call (`select()`, or a flush below). Toggling a writer on and off
 *   between two selects sends nothing. The fd stays registered meanwhile,
 *   so the change cannot land on another file (closing a registered fd is
 *   a caller error with every selector).
 * - `register()` flushes at once: its errors (EBADF, an fd kqueue cannot
 *   watch) belong to the caller, as epoll_ctl's do.
 * - `unregister()` flushes at once: the caller may close the fd next, and
 *   its number may be reused at once (accept, pipe); a delete still queued
 *   would then hit the new file, and libkqueue keeps stale state for an fd
 *   closed before its EV_DELETE.
 * - `waitSet()` flushes: the off-thread wait must see every change, and a
 *   wait in flight is kept across loop iterations.
 * Flushes outside `select()` use EV_RECEIPT with an event list exactly as
 * long as the change list, so they return one receipt per change and never
 * take (and lose) pending events. libkqueue returns 0 and drops the error
 * entries when the wait after a change list times out empty, so there
 * `select()` flushes its queue with receipts first (two calls).
 *
 * Errors: a change that fails comes back as an EV_ERROR entry (errno in
 * `data`). A failed add, or a delete that finds no filter (ENOENT) or no
 * file (EBADF), of a registered fd means the fd was closed behind the
 * selector's back: `select()` reports it once as EVENT_INVALID (poll's
 * POLLNVAL), and the loop drops it. A closed fd with no change pending is
 * forgotten silently by the kernel, as with epoll.
 *
 * Waiting off the JS thread: {@link KqueueSelector.waitSet} names a
 * {@link NativeWait}, `kevent(kq, NULL, 0, scratch, 1, &timeout)`, for the
 * waiter thread. Level-triggered events it takes are returned again to the
 * JS thread's `select(0)`; `select()` also reports the scratch entry itself
 * (with libkqueue, taking a socket error clears its cause). Its interrupt
 * is an EVFILT_USER event on the same kqueue fired with NOTE_TRIGGER (safe
 * from any thread), or where EVFILT_USER is missing (older OpenBSD) a
 * self-pipe registered for EVFILT_READ. It is level-triggered, not
 * EV_CLEAR: the loop keeps running (and calling `select(0)`) while a wait
 * it was woken from is still in flight, and a `select(0)` that consumed
 * the trigger would leave that wait blocked. It is reset before the next
 * wait starts (`waitArgs`).
 *
 * Each registration carries a tag in `udata`; an event whose tag is not
 * the fd's current one (an earlier registration of a reused fd number,
 * seen by a wait still in flight) is dropped.
 *
 * The loop's own waker (callSoonThreadsafe, remote callbacks) stays the
 * eventfd/self-pipe of `ffi/sys/platform.ts`: the Waker contract is an fd
 * the loop registers for reading and an fd other Workers `write(2)` after
 * the handle crossed postMessage. An EVFILT_USER waker has no fd; Workers
 * would have to load the kqueue library and call kevent() instead, and
 * libkqueue backs each EVFILT_USER with an eventfd anyway.
 *
 * @module
 */
import { RuntimeError } from "../../errors.ts";
import {
  EVENT_INVALID,
  EVENT_READ,
  EVENT_WRITE,
  type NativeWait,
  type ReadyEvent,
  type WaitSet,
} from "../../selector.ts";
import { allocate, check, errno, libc, osError } from "../../libc.ts";
import type { NativeMemory, NativeType } from "../../runtime.ts";
import { EBADF, EINTR, ENOENT } from "../platform.ts";
import { PipeWaker } from "../posix/waker.ts";
import { kernelTimeout, SelectorBase } from "../selector_base.ts";
import {
  EV_ADD,
  EV_DELETE,
  EV_EOF,
  EV_ERROR,
  EV_RECEIPT,
  KeventArray,
  kqueueAvailable,
  type KqueueFunctions,
  NOTE_TRIGGER,
  openKqueue,
  recordTakenSocketError,
  TIMESPEC_SIZE,
} from "./kevent.ts";

export { kqueueAvailable };

/**
 * Changes sent per kevent() call when they are sent with receipts.
 * libkqueue takes at most 512 entries in an event list and fails the whole
 * call (EFAULT, with only part of the list applied) when the receipts do
 * not fit; real kqueue has no such limit, and smaller batches cost it
 * nothing that matters.
 */
const MAX_CHANGES_PER_CALL = 256;

/** The EVFILT_USER ident of the waiter's interrupt. */
const INTERRUPT_IDENT = 0x6b71; // "kq"

/** Options of {@link KqueueSelector} (for tests). */
export interface KqueueSelectorOptions {
  /**
   * "user": an EVFILT_USER event (the default, where the OS has it);
   * "pipe": a self-pipe (what the selector falls back to without it).
   */
  interrupt?: "user" | "pipe";
}

/** A change that came back with EV_ERROR. */
interface ChangeError {
  fd: number;
  add: boolean;
  code: number;
}

/** Writes `ms` (rounded up, >= 0) into a struct timespec at `memory`. */
function setTimespec(memory: NativeMemory, ms: number): void {
  const view = new DataView(memory.bytes.buffer, memory.bytes.byteOffset, 16);
  view.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
  view.setBigInt64(8, BigInt((ms % 1000) * 1_000_000), true);
}

/** A level-triggered kqueue selector. */
export class KqueueSelector<T = unknown> extends SelectorBase<T> {
  /** Backend name. */
  static readonly backend = "kqueue";
  /** Backend name. */
  readonly name = "kqueue";
  /** The kqueue descriptor. */
  readonly kq: number;
  private readonly fns: KqueueFunctions;
  private readonly readFilter: number;
  private readonly writeFilter: number;
  private readonly userFilter: number;
  /** Filters (EVENT_READ | EVENT_WRITE) the caller wants, by fd. */
  private readonly wanted = new Map<number, number>();
  /** Filters the kernel has (or will have once the queue is sent), by fd. */
  private readonly applied = new Map<number, number>();
  /** Fds whose wanted and applied filters differ. */
  private readonly dirty = new Set<number>();
  /**
   * The tag of each registration, sent as `udata` with its adds: an event
   * whose tag is not the fd's current one belongs to an earlier
   * registration of the fd number (a closed and reused fd) and is dropped.
   */
  private readonly tags = new Map<number, number>();
  private nextTag = 1;
  /** Registered fds whose change failed: reported once as EVENT_INVALID. */
  private readonly invalid = new Set<number>();
  private readonly changes: KeventArray;
  private readonly events: KeventArray;
  private readonly selectTimeout: NativeMemory;
  /**
   * The waiter thread's buffers: the kernel writes them while a native wait
   * is in flight, so they are read only in waitFinished() and freed only
   * when no wait is in flight (close() defers it to waitFinished()).
   */
  private readonly waitScratch: KeventArray;
  private readonly waitTimeout: NativeMemory;
  /** A native wait was started (waitArgs) and has not returned yet. */
  private waitInFlight = false;
  /** close() came while a wait was in flight: free its buffers when it returns. */
  private freeWaitBuffersLater = false;
  /**
   * libkqueue: readiness that only a native wait saw (an error it took
   * from SO_ERROR), by fd and registration tag, for the next select().
   */
  private readonly waiterEvents = new Map<number, [number, number]>();
  /** libkqueue: the scratch entry of the wait in flight was taken. */
  private scratchTaken = false;
  /** The prepared NOTE_TRIGGER change (EVFILT_USER interrupt). */
  private readonly trigger: KeventArray;
  /** The self-pipe interrupt where EVFILT_USER is missing. */
  private readonly interruptPipe: PipeWaker | null;
  private readonly nativeWait: NativeWait;
  private waitSetValue: WaitSet;
  private targetsStale = false;
  /** interrupt() was called since the last wait started. */
  private interruptFired = false;
  /** libkqueue: queued changes are flushed, not batched into select(). */
  private readonly flushBeforeSelect: boolean;
  /** libkqueue: keep the socket errors it takes from SO_ERROR. */
  private readonly keepsSocketErrors: boolean;

  /** Creates a kqueue (and its interrupt event). */
  constructor(options: KqueueSelectorOptions = {}) {
    super();
    if (!kqueueAvailable) {
      throw new RuntimeError(
        "kqueue is not available here (Linux: set AIOLOOP_LIBKQUEUE to a built libkqueue)",
      );
    }
    this.fns = openKqueue();
    const { abi } = this.fns;
    this.readFilter = abi.EVFILT_READ;
    this.writeFilter = abi.EVFILT_WRITE;
    this.userFilter = abi.EVFILT_USER;
    this.flushBeforeSelect = abi.flavor === "libkqueue";
    this.keepsSocketErrors = abi.flavor === "libkqueue";
    this.kq = check(this.fns.kqueue(), "kqueue");
    const made: { free(): void }[] = [];
    try {
      const keep = <M extends { free(): void }>(m: M) => (made.push(m), m);
      this.changes = keep(new KeventArray(abi.layout, 16));
      this.events = keep(new KeventArray(abi.layout, 64));
      this.selectTimeout = keep(allocate(TIMESPEC_SIZE));
      this.waitScratch = keep(new KeventArray(abi.layout, 1));
      this.waitTimeout = keep(allocate(TIMESPEC_SIZE));
      this.trigger = keep(new KeventArray(abi.layout, 1));
      this.trigger.set(0, INTERRUPT_IDENT, this.userFilter, 0, NOTE_TRIGGER);
      this.interruptPipe = null;
      if (options.interrupt === "pipe" || !this.addUserEvent()) {
        const pipe = new PipeWaker();
        made.push({ free: () => pipe.close() });
        this.interruptPipe = pipe;
        const code = this.applyNow([[pipe.fd, this.readFilter, EV_ADD]])[0];
        if (code !== 0) throw osError(code, "kevent", "interrupt pipe");
      }
    } catch (error) {
      for (const m of made) m.free();
      this.closeKqueue();
      throw error;
    }
    const count: NativeType = abi.countType;
    this.nativeWait = {
      library: abi.library,
      symbol: abi.symbol,
      parameters: ["i32", "pointer", count, "pointer", count, "pointer"],
      result: "i32",
      args: (timeoutMs) => this.waitArgs(timeoutMs),
      interrupt: () => this.interrupt(),
      finished: (result) => this.waitFinished(result),
    };
    this.waitSetValue = {
      version: 0,
      targets: this.pollableTargets(),
      native: this.nativeWait,
    };
  }

  /** Which kqueue this is: "darwin", "freebsd", "openbsd", "netbsd", "libkqueue". */
  get flavor(): string {
    return this.fns.abi.flavor;
  }

  /** Whether the interrupt is an EVFILT_USER event (else a self-pipe). */
  get userEvents(): boolean {
    return this.interruptPipe === null;
  }

  /** Adds the EVFILT_USER interrupt; false where the OS lacks EVFILT_USER. */
  private addUserEvent(): boolean {
    const code = this.applyNow([
      [INTERRUPT_IDENT, this.userFilter, EV_ADD],
    ])[0];
    return code === 0;
  }

  /**
   * Sends `list` ([ident, filter, flags]) now, with EV_RECEIPT; returns the
   * errno of each change (0: applied). Takes no pending events.
   */
  private applyNow(list: [number, number, number][]): number[] {
    this.changes.reserve(list.length);
    this.events.reserve(list.length);
    list.forEach(([ident, filter, flags], i) =>
      this.changes.set(i, ident, filter, flags | EV_RECEIPT)
    );
    return this.receipts(list.length).map((r) => r.code);
  }

  /**
   * Sends the first `n` entries of the change list (every one with
   * EV_RECEIPT) and returns their receipts: errno 0 for an applied change.
   */
  private receipts(n: number): { fd: number; filter: number; code: number }[] {
    setTimespec(this.selectTimeout, 0);
    let got: number;
    do {
      got = this.fns.kevent(
        this.kq,
        this.changes.memory.pointer,
        n,
        this.events.memory.pointer,
        n,
        this.selectTimeout.pointer,
      );
    } while (got < 0 && errno() === EINTR);
    check(got, "kevent");
    const out = [];
    for (let i = 0; i < got; i++) {
      const flags = this.events.flags(i);
      out.push({
        fd: this.events.ident(i),
        filter: this.events.filter(i),
        code: (flags & EV_ERROR) ? this.events.data(i) : 0,
      });
    }
    return out;
  }

  /**
   * Writes queued filter changes into the change list (with EV_RECEIPT when
   * `receipt`), at most `limit` entries, takes their fds off the queue and
   * marks them applied. Returns the count, and what each fd had applied
   * before, for {@link requeue} if the call that sends them fails.
   */
  private queueChanges(
    receipt: boolean,
    limit = Infinity,
  ): { n: number; previous: [number, number][] } {
    const previous: [number, number][] = [];
    if (this.dirty.size === 0) return { n: 0, previous };
    this.changes.reserve(Math.min(this.dirty.size * 2, limit));
    const extra = receipt ? EV_RECEIPT : 0;
    let n = 0;
    for (const fd of this.dirty) {
      if (n + 2 > limit) break;
      const want = this.wanted.get(fd) ?? 0;
      const have = this.applied.get(fd) ?? 0;
      const diff = want ^ have;
      const tag = this.tags.get(fd) ?? 0;
      if (diff & EVENT_READ) {
        const op = (want & EVENT_READ) ? EV_ADD : EV_DELETE;
        this.changes.set(n++, fd, this.readFilter, op | extra, 0, tag);
      }
      if (diff & EVENT_WRITE) {
        const op = (want & EVENT_WRITE) ? EV_ADD : EV_DELETE;
        this.changes.set(n++, fd, this.writeFilter, op | extra, 0, tag);
      }
      previous.push([fd, have]);
      if (want === 0) this.applied.delete(fd);
      else this.applied.set(fd, want);
      this.dirty.delete(fd);
    }
    return { n, previous };
  }

  /** The kevent() call that carried these changes failed: queue them again. */
  private requeue(previous: [number, number][]): void {
    for (const [fd, have] of previous) {
      if (have === 0) this.applied.delete(fd);
      else this.applied.set(fd, have);
      this.dirty.add(fd);
    }
  }

  /**
   * Sends every queued change now, {@link MAX_CHANGES_PER_CALL} at a time;
   * returns the ones that failed (after recording them: see
   * {@link changeFailed}). If a call fails as a whole, its changes and the
   * ones not sent yet stay queued, and the error is thrown.
   */
  private flush(): ChangeError[] {
    const failed: ChangeError[] = [];
    while (this.dirty.size > 0) {
      const { n, previous } = this.queueChanges(true, MAX_CHANGES_PER_CALL);
      if (n === 0) continue; // fds whose wanted and applied filters agree
      this.events.reserve(n);
      let receipts;
      try {
        receipts = this.receipts(n);
      } catch (error) {
        this.requeue(previous);
        throw error;
      }
      for (const r of receipts) {
        if (r.code === 0) continue;
        failed.push(this.recordFailure(r.fd, r.filter, r.code, n));
      }
    }
    return failed;
  }

  /**
   * Records the failure of the queued change for (`fd`, `filter`) among the
   * first `n` entries of the change list.
   */
  private recordFailure(
    fd: number,
    filter: number,
    code: number,
    n: number,
  ): ChangeError {
    let add = false;
    for (let j = 0; j < n; j++) {
      if (this.changes.ident(j) === fd && this.changes.filter(j) === filter) {
        add = (this.changes.flags(j) & EV_ADD) !== 0;
        break;
      }
    }
    const error = { fd, add, code };
    this.changeFailed(error, this.filterBit(filter));
    return error;
  }

  /** EVENT_READ or EVENT_WRITE for a filter number (0 for others). */
  private filterBit(filter: number): number {
    return filter === this.readFilter
      ? EVENT_READ
      : filter === this.writeFilter
      ? EVENT_WRITE
      : 0;
  }

  /**
   * A change failed: the filter is not in the kernel. A registered fd whose
   * add failed, or whose delete found nothing (closed fd), is reported as
   * EVENT_INVALID by the next select().
   */
  private changeFailed(error: ChangeError, bit: number): void {
    const have = this.applied.get(error.fd);
    if (have !== undefined) {
      if ((have & ~bit) === 0) this.applied.delete(error.fd);
      else this.applied.set(error.fd, have & ~bit);
    }
    if (!this.keys.has(error.fd)) return;
    if (error.add || error.code === EBADF || error.code === ENOENT) {
      this.invalid.add(error.fd);
    }
  }

  /** Adds `fd`'s filters now; throws the kernel's error. */
  protected osRegister(fd: number, events: number): void {
    if (fd === this.interruptPipe?.fd) {
      throw new RuntimeError(`fd ${fd} is used by the kqueue selector itself`);
    }
    this.wanted.set(fd, events);
    this.tags.set(fd, this.nextTag++);
    this.dirty.add(fd);
    this.invalid.delete(fd);
    this.changed();
    let failed: ChangeError | undefined;
    try {
      failed = this.flush().find((e) => e.fd === fd);
    } catch (error) {
      // The call failed as a whole: `fd` is not registered; its add must
      // not go out with a later batch.
      this.wanted.delete(fd);
      this.tags.delete(fd);
      if (!this.applied.has(fd)) this.dirty.delete(fd);
      throw error;
    }
    if (!failed) return;
    // Undo the filter that may have been added, then report.
    this.wanted.delete(fd);
    if (this.applied.has(fd)) {
      this.dirty.add(fd);
      this.flush();
    }
    this.tags.delete(fd);
    this.changed();
    throw osError(failed.code, "kevent", `fd ${fd}`);
  }

  /** Queues the filter changes for `fd` (sent with the next kevent call). */
  protected osModify(fd: number, events: number): void {
    this.wanted.set(fd, events);
    this.dirty.add(fd);
    this.changed();
  }

  /** Deletes `fd`'s filters now (a closed fd is fine). */
  protected osUnregister(fd: number): void {
    this.wanted.delete(fd);
    this.invalid.delete(fd);
    this.changed();
    if (this.applied.has(fd)) {
      this.dirty.add(fd);
      this.flush();
    } else {
      this.dirty.delete(fd);
    }
    this.tags.delete(fd);
  }

  /** Marks the poll(2) fallback targets for rebuilding (libkqueue). */
  private changed(): void {
    if (this.fns.abi.flavor === "libkqueue") this.targetsStale = true;
  }

  /** Closes the kqueue and frees the buffers (no wait may be in flight). */
  protected osClose(): void {
    if (this.waitInFlight) {
      // Make it return (real kqueue does not wake a kevent() blocked on a
      // kqueue that is closed), and free what it writes only once it has.
      this.freeWaitBuffersLater = true;
      this.fireInterrupt();
    }
    this.closeKqueue();
    this.changes.free();
    this.events.free();
    this.selectTimeout.free();
    if (!this.waitInFlight) {
      this.waitScratch.free();
      this.waitTimeout.free();
    }
    this.trigger.free();
    this.interruptPipe?.close();
    this.wanted.clear();
    this.applied.clear();
    this.dirty.clear();
    this.invalid.clear();
    this.tags.clear();
  }

  /** Closes the kqueue descriptor (libkqueue: and waits for its cleanup). */
  private closeKqueue(): void {
    libc.close(this.kq);
    // libkqueue finishes a close on its monitor thread; wait for it, so
    // that the fds behind this kqueue are gone when close() returns.
    this.fns.drainPendingClose();
  }

  /** Waits up to `timeoutMs` (0: poll, null: no limit) and returns the ready registrations. */
  select(timeoutMs: number | null): ReadyEvent<T>[] {
    this.checkOpen();
    // libkqueue drops the error entries of a change list when the wait
    // that follows times out empty (kevent() returns the wait's 0): send
    // its changes with receipts first.
    if (this.flushBeforeSelect && this.dirty.size > 0) this.flush();
    // An interrupt with no wait in flight would make this call return at
    // once, and every later one until the next wait re-arms it.
    if (this.interruptFired && !this.waitInFlight) this.rearmInterrupt();
    const { n, previous } = this.queueChanges(false);
    // Room for an error per change, and both filters of every fd.
    this.events.reserve(n + 2 * this.keys.size + 2);
    const timeout = kernelTimeout(timeoutMs);
    if (timeout >= 0) setTimespec(this.selectTimeout, timeout);
    const got = this.fns.kevent(
      this.kq,
      this.changes.memory.pointer,
      n,
      this.events.memory.pointer,
      this.events.capacity,
      timeout >= 0 ? this.selectTimeout.pointer : null,
    );
    if (got < 0) {
      const code = errno();
      // EINTR comes after the change list was applied; any other failure
      // may have applied none of it.
      if (code !== EINTR) {
        this.requeue(previous);
        throw osError(code, "kevent", `kqueue fd ${this.kq}`);
      }
    }
    // libkqueue: a wait in flight may have taken a socket error that this
    // call then saw as a plain EOF; look at its entry (see takeScratch).
    if (this.waitInFlight) this.takeScratch();
    const masks = new Map<number, number>();
    for (const [fd, [bit, tag]] of this.waiterEvents) {
      if (this.isCurrent(fd, tag)) masks.set(fd, bit);
    }
    this.waiterEvents.clear();
    const ev = this.events;
    for (let i = 0; i < got; i++) {
      const fd = ev.ident(i);
      const filter = ev.filter(i);
      const flags = ev.flags(i);
      if (flags & EV_ERROR) {
        const code = ev.data(i);
        if (code !== 0) this.recordFailure(fd, filter, code, n);
        continue;
      }
      // The interrupt stays set for the waiter (see waitArgs).
      if (filter === this.userFilter && fd === INTERRUPT_IDENT) continue;
      if (this.interruptPipe && fd === this.interruptPipe.fd) continue;
      const bit = this.filterBit(filter);
      if (bit !== 0 && this.isCurrent(fd, ev.udata(i))) {
        masks.set(fd, (masks.get(fd) ?? 0) | bit);
        if (this.keepsSocketErrors && (flags & EV_EOF)) {
          recordTakenSocketError(fd, ev.fflags(i));
        }
      }
    }
    const ready: ReadyEvent<T>[] = [];
    for (const fd of this.invalid) {
      const key = this.keys.get(fd);
      if (key) ready.push([key, EVENT_INVALID]);
      masks.delete(fd);
    }
    this.invalid.clear();
    for (const [fd, mask] of masks) {
      const key = this.keys.get(fd)!;
      const m = mask & key.events;
      if (m) ready.push([key, m]);
    }
    return ready;
  }

  /** Whether an event with `tag` is about `fd`'s current registration. */
  private isCurrent(fd: number, tag: number): boolean {
    return this.keys.has(fd) && this.tags.get(fd) === tag;
  }

  /**
   * A native wait returned (`result`: its kevent() result): its scratch
   * entry is ours to read and clear now, and its buffers to free.
   */
  private waitFinished(result: number): void {
    this.waitInFlight = false;
    if (this.freeWaitBuffersLater) {
      this.freeWaitBuffersLater = false;
      this.waitScratch.free();
      this.waitTimeout.free();
      return;
    }
    if (result > 0) this.takeScratch();
    this.waitScratch.clear(0);
  }

  /**
   * libkqueue only: keeps a socket error that the native wait took.
   * Level-triggered events come back to select() anyway, except when taking
   * the event removed its cause: libkqueue reads SO_ERROR to report a
   * socket error, which clears the error and with it the readiness, so only
   * the waiter saw it. The error is kept for the socket layer
   * (`takeKqueueSocketError`) and the fd is reported by the next select().
   *
   * The entry is looked at once per wait: from select() while the wait is
   * in flight (a select() on this thread may meanwhile have seen the same
   * socket as a plain EOF, and its connect or read must find the error) or
   * when the wait returned. kevent() writes it once, before returning; it is
   * not cleared while the call may still write it. Plain readiness is not
   * taken from it: that comes back from the kernel as long as it holds.
   */
  private takeScratch(): void {
    if (!this.keepsSocketErrors || this.scratchTaken) return;
    const scratch = this.waitScratch;
    const flags = scratch.flags(0);
    const code = scratch.fflags(0);
    if (!(flags & EV_EOF) || (flags & EV_ERROR) || code === 0) return;
    const bit = this.filterBit(scratch.filter(0));
    const fd = scratch.ident(0);
    const tag = scratch.udata(0);
    if (bit === 0 || !this.isCurrent(fd, tag)) return;
    this.scratchTaken = true;
    recordTakenSocketError(fd, code);
    const had = this.waiterEvents.get(fd)?.[0] ?? 0;
    this.waiterEvents.set(fd, [had | bit, tag]);
  }

  /**
   * What the waiter blocks on: the native `kevent()` wait. Sends the queued
   * changes first (a wait in flight sees changes made in the kernel, not
   * ones queued here), and fires the interrupt when a change failed, so
   * that the wait returns and select() reports it.
   */
  waitSet(): WaitSet {
    if (this.closed) return this.waitSetValue;
    if (this.dirty.size > 0) this.flush();
    // A wait in flight (kept across iterations) must return for select()
    // to report the failed change; a new wait will not block (waitArgs).
    if (this.invalid.size > 0) this.interrupt();
    if (this.targetsStale) {
      this.targetsStale = false;
      this.waitSetValue = {
        version: this.waitSetValue.version + 1,
        targets: this.pollableTargets(),
        native: this.nativeWait,
      };
    }
    return this.waitSetValue;
  }

  /**
   * What a poll(2) waiter would watch instead of the native wait: the kqueue
   * fd (readable when an event is pending) on macOS and the BSDs; every
   * watched fd on libkqueue, whose kqueue fd cannot be polled.
   */
  private pollableTargets(): [number, number][] {
    if (this.fns.abi.flavor !== "libkqueue") return [[this.kq, EVENT_READ]];
    const targets: [number, number][] = [];
    for (const [fd, events] of this.wanted) targets.push([fd, events]);
    return targets;
  }

  /**
   * The arguments of one native wait of at most `timeoutMs` (null: none):
   * `kevent(kq, NULL, 0, scratch, 1, &timeout)` with pointers as addresses.
   * One scratch entry is enough: the call only needs to return.
   */
  private waitArgs(timeoutMs: number | null): number[] {
    if (this.interruptFired) this.rearmInterrupt();
    this.waitInFlight = true;
    this.scratchTaken = false;
    // A failed change is reported by select(): do not block before it.
    const timeout = this.invalid.size > 0 ? 0 : kernelTimeout(timeoutMs);
    if (timeout >= 0) setTimespec(this.waitTimeout, timeout);
    return [
      this.kq,
      0,
      0,
      this.waitScratch.memory.address,
      1,
      timeout >= 0 ? this.waitTimeout.address : 0,
    ];
  }

  /**
   * Makes a native wait in flight (or the next one) return: NOTE_TRIGGER on
   * the EVFILT_USER event, or a write to the interrupt pipe. Safe from any
   * thread at the C level; a no-op after close().
   */
  interrupt(): void {
    if (this.closed) return;
    this.interruptFired = true;
    this.fireInterrupt();
  }

  /** NOTE_TRIGGER on the EVFILT_USER event, or a write to the pipe. */
  private fireInterrupt(): void {
    if (this.interruptPipe) this.interruptPipe.notify();
    else {
      this.fns.kevent(this.kq, this.trigger.memory.pointer, 1, null, 0, null);
    }
  }

  /**
   * Resets a fired interrupt before the next wait: drains the pipe, or
   * deletes and re-adds the EVFILT_USER event (a level event stays
   * triggered until then).
   */
  private rearmInterrupt(): void {
    this.interruptFired = false;
    if (this.interruptPipe) {
      this.interruptPipe.drain();
      return;
    }
    this.applyNow([
      [INTERRUPT_IDENT, this.userFilter, EV_DELETE],
      [INTERRUPT_IDENT, this.userFilter, EV_ADD],
    ]);
  }
}
