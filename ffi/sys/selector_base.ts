/**
 * Bookkeeping shared by every OS selector: the fd -> key map and argument
 * checks. Subclasses add the kernel calls. A descriptor registered twice
 * or not registered is a RangeError (Python's KeyError), a closed selector
 * a RuntimeError.
 *
 * @module
 */
import {
  EVENT_READ,
  EVENT_WRITE,
  type FileLike,
  fileobjToFd,
  type ReadyEvent,
  type Selector,
  type SelectorKey,
  type WaitSet,
} from "../selector.ts";
import { RuntimeError } from "../errors.ts";

/** A registration record (mutable inside the selector only). */
export interface MutableKey<T> {
  /** The registered object. */
  fileobj: FileLike;
  /** Its descriptor. */
  fd: number;
  /** The watched events. */
  events: number;
  /** The caller's data. */
  data: T;
}

/** The fd map and validation; subclasses supply the OS calls. */
export abstract class SelectorBase<T = unknown> implements Selector<T> {
  abstract readonly name: string;
  /** Registrations by fd. */
  protected readonly keys: Map<number, MutableKey<T>> = new Map();
  /** Whether close() was called. */
  protected closed = false;

  /** Adds `fd` with `events` to the kernel's interest set. */
  protected abstract osRegister(fd: number, events: number): void;
  /** Changes the kernel's events for `fd`. */
  protected abstract osModify(fd: number, events: number): void;
  /** Removes `fd` from the kernel's interest set (closed fds are fine). */
  protected abstract osUnregister(fd: number): void;
  /** Releases the kernel objects. */
  protected abstract osClose(): void;

  abstract select(timeoutMs: number | null): ReadyEvent<T>[];
  abstract waitSet(): WaitSet;

  register(fileobj: FileLike, events: number, data: T): SelectorKey<T> {
    this.checkOpen();
    const fd = fileobjToFd(fileobj);
    checkEvents(events);
    if (this.keys.has(fd)) {
      throw new RangeError(
        `${describeObj(fileobj)} (FD ${fd}) is already registered`,
      );
    }
    this.osRegister(fd, events);
    const key: MutableKey<T> = { fileobj, fd, events, data };
    this.keys.set(fd, key);
    return key;
  }

  unregister(fileobj: FileLike): SelectorKey<T> {
    this.checkOpen();
    const key = this.requireKey(fileobj);
    this.keys.delete(key.fd);
    this.osUnregister(key.fd);
    return key;
  }

  modify(fileobj: FileLike, events: number, data: T): SelectorKey<T> {
    this.checkOpen();
    checkEvents(events);
    const key = this.requireKey(fileobj);
    if (events !== key.events) this.osModify(key.fd, events);
    key.events = events;
    key.data = data;
    return key;
  }

  get(fileobj: FileLike): SelectorKey<T> | undefined {
    return this.keys.get(fileobjToFd(fileobj));
  }

  getMap(): ReadonlyMap<number, SelectorKey<T>> {
    return this.keys;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.keys.clear();
    this.osClose();
  }

  /** The key of `fileobj`; throws if it is not registered. */
  private requireKey(fileobj: FileLike): MutableKey<T> {
    const fd = fileobjToFd(fileobj);
    const key = this.keys.get(fd);
    if (!key) throw new RangeError(`${describeObj(fileobj)} is not registered`);
    return key;
  }

  /** Throws if the selector was closed. */
  protected checkOpen(): void {
    if (this.closed) throw new RuntimeError(`${this.name} selector is closed`);
  }
}

function checkEvents(events: number): void {
  if (
    !Number.isInteger(events) || events === 0 ||
    (events & ~(EVENT_READ | EVENT_WRITE)) !== 0
  ) {
    throw new RangeError(`Invalid events: ${events}`);
  }
}

function describeObj(fileobj: FileLike): string {
  return typeof fileobj === "number" ? String(fileobj) : String(fileobj);
}

/** A timeout in ms for the kernel: null -> -1, else rounded up, >= 0. */
export function kernelTimeout(timeoutMs: number | null): number {
  if (timeoutMs === null) return -1;
  if (timeoutMs <= 0) return 0;
  // Round up so that a timer is never woken early (CPython does the same).
  return Math.min(Math.ceil(timeoutMs), 0x7fffffff);
}
