/**
 * Copies of received bytes, carved from shared slabs.
 *
 * Allocating an ArrayBuffer is slow in Deno (~0.55 µs even for 64 bytes,
 * against ~0.02 µs in Bun), which would cost more than the recv(2) of a
 * 1 KiB message. Small copies are therefore views into a 64 KiB slab that
 * is filled front to back and then left to the garbage collector (Node's
 * Buffer pool does the same). A chunk keeps its slab alive, so only
 * copies of up to 4 KiB are pooled.
 *
 * @module
 */

/** Bytes per slab. */
export const SLAB_SIZE = 64 * 1024;
/** Copies up to this size come from a slab; larger ones get their own buffer. */
export const MAX_POOLED = 4 * 1024;

let slab = new ArrayBuffer(SLAB_SIZE);
let offset = 0;

/** A fresh array holding `src[0..n)`, owned by the caller. */
export function copyBytes(src: Uint8Array, n: number = src.length): Uint8Array {
  if (n > MAX_POOLED) return src.slice(0, n);
  if (offset + n > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE);
    offset = 0;
  }
  const out = new Uint8Array(slab, offset, n);
  out.set(src.subarray(0, n));
  // Keep views 8-byte aligned, so a user may view them as wider arrays.
  offset += (n + 7) & ~7;
  return out;
}
