/**
 * Helpers shared by the benchmark programs (not a benchmark itself): the
 * runtime's name, command-line arguments, a seeded random generator shared
 * with the Python side, statistics, and the one JSON line each program
 * prints for `bench/run.mjs`.
 *
 * @module
 */
import process from "node:process";

/** "deno" or "bun". */
export const runtimeName: string = Reflect.get(globalThis, "Bun")
  ? "bun"
  : "deno";

/** The arguments after the script's path. */
export function args(): string[] {
  return process.argv.slice(2);
}

/** An integer option `--name=value`, or `fallback`. */
export function intOption(name: string, fallback: number): number {
  const prefix = `--${name}=`;
  const found = args().find((a) => a.startsWith(prefix));
  if (found === undefined) return fallback;
  const value = Number(found.slice(prefix.length));
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`--${name} needs a non-negative integer`);
  }
  return value;
}

/**
 * mulberry32: a small seeded generator of floats in [0, 1). The Python
 * programs implement the same one, so every implementation gets the same
 * timer delays.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The median of `values` (not empty). */
export function median(values: number[]): number {
  return percentile(values, 50);
}

/** The p-th percentile (nearest rank) of `values` (not empty). */
export function percentile(values: ArrayLike<number>, p: number): number {
  const sorted = Array.from(values).sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Prints the result line that `bench/run.mjs` reads. */
export function emit(result: Record<string, unknown>): void {
  console.log(JSON.stringify({ runtime: runtimeName, ...result }));
}

/** Process CPU time (user + system, all threads) in microseconds. */
export function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}
