/**
 * Write-side flow control, one helper for every transport (asyncio's
 * `_FlowControlMixin`): water marks on the write buffer, and the protocol's
 * pauseWriting()/resumeWriting() when the buffer crosses them.
 *
 * The transport owns the buffer and calls {@link FlowControl.maybePause}
 * after it grew and {@link FlowControl.maybeResume} after it shrank.
 *
 * @module
 */
import type { AbstractEventLoop } from "./events.ts";
import type { BaseProtocol } from "./protocols.ts";
import type { BaseTransport } from "./transports.ts";

/** The default high-water mark of a write buffer: 64 KiB. */
export const DEFAULT_HIGH_WATER = 64 * 1024;

/** What flow control needs from its transport. */
export interface FlowControlled {
  /** The loop, for reporting a protocol's errors. */
  readonly loop: AbstractEventLoop;
  /** The transport as users know it (exception contexts). */
  transport(): BaseTransport;
  /** The protocol to tell (null once the connection is lost). */
  protocol(): BaseProtocol | null;
  /** Bytes waiting to be sent. */
  bufferSize(): number;
}

/**
 * The water marks `[low, high]` from what the user gave: high defaults to
 * 64 KiB (or 4 x low), low to high / 4. RangeError unless
 * high >= low >= 0; TypeError for non-numbers.
 */
export function waterMarks(
  high: number | null | undefined,
  low: number | null | undefined,
): [number, number] {
  for (const [name, value] of [["high", high], ["low", low]] as const) {
    if (value !== null && value !== undefined && typeof value !== "number") {
      throw new TypeError(`${name} must be a number, got ${typeof value}`);
    }
  }
  const hi = high ??
    (low === null || low === undefined ? DEFAULT_HIGH_WATER : 4 * low);
  const lo = low ?? Math.floor(hi / 4);
  if (!(hi >= lo && lo >= 0)) {
    throw new RangeError(`high (${hi}) must be >= low (${lo}) must be >= 0`);
  }
  return [lo, hi];
}

/** The water marks of one transport and whether its protocol is paused. */
export class FlowControl {
  private _high = DEFAULT_HIGH_WATER;
  private _low = DEFAULT_HIGH_WATER / 4;
  private _paused = false;

  /** Flow control for `owner`'s buffer. */
  constructor(private readonly owner: FlowControlled) {}

  /** Whether the protocol was told to pause writing (and not resumed). */
  get paused(): boolean {
    return this._paused;
  }

  /** Sets the water marks (see {@link waterMarks}); may pause at once. */
  setLimits(high?: number | null, low?: number | null): void {
    [this._low, this._high] = waterMarks(high, low);
    this.maybePause();
  }

  /** `[low, high]`. */
  limits(): [number, number] {
    return [this._low, this._high];
  }

  /** Calls pauseWriting() once the buffer is over the high-water mark. */
  maybePause(): void {
    if (this._paused || this.owner.bufferSize() <= this._high) return;
    this._paused = true;
    this._tell("pauseWriting");
  }

  /** Calls resumeWriting() once the buffer is at or below the low mark. */
  maybeResume(): void {
    if (!this._paused || this.owner.bufferSize() > this._low) return;
    this._paused = false;
    this._tell("resumeWriting");
  }

  /** Calls a flow-control method; its errors go to the exception handler. */
  private _tell(method: "pauseWriting" | "resumeWriting"): void {
    const protocol = this.owner.protocol();
    try {
      protocol?.[method]();
    } catch (error) {
      this.owner.loop.callExceptionHandler({
        message: `protocol.${method}() failed`,
        exception: error,
        transport: this.owner.transport(),
        protocol,
      });
    }
  }
}
