/**
 * The checks every value passes before it reaches C: one place for the FFI
 * edge.
 *
 * A JS number is a double; C takes `int` descriptors and `size_t` lengths.
 * The runtimes convert differently and silently: Bun wraps `2 ** 32 + 5`
 * to fd 5, a negative length becomes a huge `size_t` (the kernel then
 * writes past the buffer), `NaN` becomes 0, and a typed array is passed by
 * its address with a length counted in elements if we are careless. So
 * every descriptor, length, offset and count is checked here (an integer,
 * in range, within the buffer's byte length), and bad values get a
 * `TypeError` or `RangeError` that names the argument.
 *
 * @module
 */

/** The largest `int`: descriptors and `int` arguments stay at or below it. */
export const INT32_MAX = 0x7fffffff;

/** The largest byte count passed to one read/write/send call (1 GiB). */
export const MAX_IO = 0x40000000;

/** A value as error messages show it: strings quoted, never a throw. */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return `'${value}'`;
  if (typeof value === "bigint") return `${value}n`;
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * An integer argument in `[min, max]`: TypeError when `value` is not a
 * number, RangeError when it is NaN, fractional or out of range.
 */
export function checkInt(
  value: unknown,
  name: string,
  min: number,
  max: number,
): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `${name} must be an integer, got ${describeValue(value)}`,
    );
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `${name} must be an integer in ${min}..${max}, got ${value}`,
    );
  }
  return value;
}

/** A file descriptor: an integer in 0..2^31-1. */
export function checkFd(value: unknown, name = "fd"): number {
  return checkInt(value, name, 0, INT32_MAX);
}

/** An `int` argument (socket level/option, flags, backlog...). */
export function checkInt32(value: unknown, name: string): number {
  return checkInt(value, name, -0x80000000, INT32_MAX);
}

/** A file offset: an integer in 0..2^53-1. */
export function checkOffset(value: unknown, name = "offset"): number {
  return checkInt(value, name, 0, Number.MAX_SAFE_INTEGER);
}

function isDetached(buffer: ArrayBufferLike): boolean {
  // ES2024 `ArrayBuffer.prototype.detached`; older engines: a view over a
  // detached buffer reads as zero length, which is checked by the caller.
  return (buffer as { detached?: boolean }).detached === true;
}

/**
 * The bytes of any ArrayBufferView or ArrayBuffer, as a Uint8Array over the
 * same memory (lengths are in bytes, never elements). TypeError for other
 * values and for detached buffers.
 */
export function bytesOf(data: unknown, name = "data"): Uint8Array {
  let bytes: Uint8Array;
  if (data instanceof Uint8Array) {
    // The hot path (every send and recv): a detached view reads as empty,
    // so only an empty one needs the (slower) check of its buffer.
    if (data.byteLength === 0 && isDetached(data.buffer)) throw detached(name);
    return data;
  } else if (ArrayBuffer.isView(data)) {
    if (isDetached(data.buffer)) throw detached(name);
    bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else if (
    data instanceof ArrayBuffer ||
    (typeof SharedArrayBuffer !== "undefined" &&
      data instanceof SharedArrayBuffer)
  ) {
    if (isDetached(data)) throw detached(name);
    bytes = new Uint8Array(data);
  } else {
    throw new TypeError(
      `${name} must be a bytes-like object (Uint8Array, ArrayBufferView, ArrayBuffer), not ${
        data === null
          ? "null"
          : typeof data === "string"
          ? "string"
          : typeof data
      }`,
    );
  }
  if (isDetached(bytes.buffer)) throw detached(name);
  return bytes;
}

function detached(name: string): TypeError {
  return new TypeError(`${name} is backed by a detached ArrayBuffer`);
}

/**
 * How many bytes to hand to C from `buf`: `nbytes` when given (an integer
 * in 0..buf.byteLength), else the whole buffer; capped at {@link MAX_IO}.
 */
export function checkByteCount(
  buf: Uint8Array,
  nbytes: unknown,
  name = "nbytes",
): number {
  if (nbytes === undefined) return Math.min(buf.byteLength, MAX_IO);
  const n = checkInt(nbytes, name, 0, Number.MAX_SAFE_INTEGER);
  if (n > buf.byteLength) {
    throw new RangeError(
      `${name} (${n}) is larger than the buffer (${buf.byteLength} bytes)`,
    );
  }
  return Math.min(n, MAX_IO);
}
