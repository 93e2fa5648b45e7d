/**
 * Submitting work to a loop from another thread (a Worker).
 *
 * JS functions cannot cross threads, so the loop side registers the
 * callback and hands out a {@link RemoteCallbackHandle}: plain data that
 * `postMessage` can carry. The other thread calls
 * `connectRemoteCallback(handle).call(...args)`: the arguments (JSON) go
 * into a SharedArrayBuffer queue and the loop's waker descriptor (eventfd
 * or self-pipe) is written with `write(2)`, which wakes the loop's poller.
 * The loop then runs `callback(...args)` like `callSoonThreadsafe` would.
 *
 * Queue layout (Int32 words, then bytes):
 * `[0] lock  [1] used bytes  [2] closed  [3] reserved`, data from byte 16:
 * records of `u32 length` + UTF-8 JSON. The lock is held while a writer
 * appends and signals, and while the loop drains or closes: a writer never
 * writes to the waker after the loop closed it.
 *
 * @module
 */
import { checkFd } from "../ffi/validate.ts";
import { RuntimeError } from "./exceptions.ts";

const LOCK = 0;
const USED = 1;
const CLOSED = 2;
const HEADER_BYTES = 16;

/** What a Worker needs to call a loop's callback (postMessage-able). */
export interface RemoteCallbackHandle {
  /** The queue shared with the loop. */
  readonly queue: SharedArrayBuffer;
  /**
   * The loop's shared words: [0] something is pending (all its queues
   * share it), [1] the loop's JS thread waits on word 0.
   */
  readonly pending: SharedArrayBuffer;
  /** The descriptor to write to wake the loop. */
  readonly wakeFd: number;
}

function lock(words: Int32Array): void {
  while (Atomics.compareExchange(words, LOCK, 0, 1) !== 0) {
    Atomics.wait(words, LOCK, 1, 1);
  }
}

function unlock(words: Int32Array): void {
  Atomics.store(words, LOCK, 0);
  Atomics.notify(words, LOCK, 1);
}

/** The loop's end of one remote callback's queue. */
export class RemoteQueue {
  private readonly words: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly decoder = new TextDecoder();

  /** Wraps the shared buffers of `handle` for the loop's side. */
  constructor(
    /** The callback that messages are for. */
    readonly callback: (...args: unknown[]) => unknown,
    /** The buffers and waker descriptor shared with other threads. */
    readonly handle: RemoteCallbackHandle,
  ) {
    this.words = new Int32Array(handle.queue, 0, HEADER_BYTES / 4);
    this.bytes = new Uint8Array(handle.queue);
  }

  /** Makes the shared buffers for a queue of `capacity` bytes. */
  static allocate(capacity: number): SharedArrayBuffer {
    return new SharedArrayBuffer(HEADER_BYTES + capacity);
  }

  /** Takes every queued call's arguments. */
  drain(): unknown[][] {
    const words = this.words;
    if (Atomics.load(words, USED) === 0) return [];
    lock(words);
    const used = words[USED];
    const copy = this.bytes.slice(HEADER_BYTES, HEADER_BYTES + used);
    words[USED] = 0;
    unlock(words);
    Atomics.notify(words, USED);
    const calls: unknown[][] = [];
    const view = new DataView(copy.buffer);
    for (let at = 0; at < copy.length;) {
      const length = view.getUint32(at, true);
      at += 4;
      calls.push(
        JSON.parse(this.decoder.decode(copy.subarray(at, at + length))),
      );
      at += length;
    }
    return calls;
  }

  /** Marks the queue closed: later calls from other threads throw. */
  close(): void {
    lock(this.words);
    this.words[CLOSED] = 1;
    unlock(this.words);
    Atomics.notify(this.words, USED);
  }
}

/** The calling end, used on any thread. */
export class RemoteCallback {
  private readonly words: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly pending: Int32Array;
  private readonly encoder = new TextEncoder();

  /**
   * Connects to a handle; `signal(fd)` writes the waker (the selector
   * loop module supplies it).
   */
  constructor(
    private readonly handle: RemoteCallbackHandle,
    private readonly signal: (fd: number) => void,
  ) {
    // The handle crossed a postMessage: check it before its fd reaches C.
    checkHandle(handle);
    this.words = new Int32Array(handle.queue, 0, HEADER_BYTES / 4);
    this.bytes = new Uint8Array(handle.queue);
    this.pending = new Int32Array(handle.pending);
  }

  /**
   * Schedules the loop-side callback with `args` (JSON values). Blocks
   * briefly while the queue is full. Throws RuntimeError once the loop is
   * closed and RangeError for a message larger than the queue.
   */
  call(...args: unknown[]): void {
    const data = this.encoder.encode(JSON.stringify(args));
    const need = data.length + 4;
    const capacity = this.bytes.length - HEADER_BYTES;
    if (need > capacity) {
      throw new RangeError(
        `message of ${data.length} bytes exceeds the queue's ${capacity}`,
      );
    }
    const words = this.words;
    for (;;) {
      lock(words);
      if (words[CLOSED]) {
        unlock(words);
        throw new RuntimeError("Event loop is closed");
      }
      const used = words[USED];
      if (used + need <= capacity) {
        const at = HEADER_BYTES + used;
        new DataView(this.bytes.buffer).setUint32(at, data.length, true);
        this.bytes.set(data, at + 4);
        Atomics.store(words, USED, used + need);
        Atomics.store(this.pending, 0, 1);
        // Wake the loop's JS thread directly: it waits on `pending` while
        // idle (word 1 set). Otherwise write its waker descriptor too.
        Atomics.notify(this.pending, 0);
        if (Atomics.load(this.pending, 1) === 0) {
          this.signal(this.handle.wakeFd);
        }
        unlock(words);
        return;
      }
      unlock(words);
      Atomics.wait(words, USED, used, 50);
    }
  }
}

/** TypeError/RangeError unless `handle` is one createRemoteCallback() made. */
function checkHandle(handle: RemoteCallbackHandle): void {
  if (
    handle === null || typeof handle !== "object" ||
    !(handle.queue instanceof SharedArrayBuffer) ||
    !(handle.pending instanceof SharedArrayBuffer) ||
    handle.queue.byteLength <= HEADER_BYTES || handle.pending.byteLength < 8
  ) {
    throw new TypeError(
      "connectRemoteCallback() expects the handle made by createRemoteCallback()",
    );
  }
  checkFd(handle.wakeFd, "handle.wakeFd");
}
