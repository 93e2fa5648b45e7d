/**
 * One FFI surface over `Deno.dlopen` and `bun:ffi`.
 *
 * Everything above this file sees the same shapes in both runtimes:
 * - integers go in and come out as JS numbers (64-bit results are converted
 *   with `Number()`, which is exact for every size and fd we use; Deno's
 *   64-bit parameters are handed over as BigInts, which its fast calls
 *   need, see `adapt`);
 * - a pointer is an opaque {@link Pointer}; {@link pointerAddress} gives its
 *   address as a number (needed to hand memory to another thread);
 * - native memory ({@link NativeMemory}) is allocated with libc `malloc`, so
 *   the kernel may keep a pointer to it across an asynchronous wait: the JS
 *   garbage collector can neither move nor free it. It is freed explicitly.
 *
 * @module
 */

/** Parameter and result types, named after their C meaning. */
export type NativeType =
  | "i32"
  | "u32"
  | "i64"
  | "u64"
  | "pointer"
  | "buffer"
  | "void";

/** A symbol to bind: its C parameter and result types. */
export interface SymbolSpec {
  /** C parameter types, in order. */
  readonly parameters: readonly NativeType[];
  /** C result type. */
  readonly result: NativeType;
  /** Deno only: run the call on a helper thread and return a Promise. */
  readonly nonblocking?: boolean;
}

/** An opaque native pointer (a Deno pointer object or a Bun number). */
export type Pointer = unknown;

/** The calling convention every bound symbol has after normalization. */
export type NativeFunction = (...args: unknown[]) => unknown;

/** A loaded library: its bound symbols and a way to unload it. */
export interface Library<S extends string> {
  /** The bound functions, by symbol name. */
  readonly symbols: Record<S, NativeFunction>;
  /** Unloads the library. */
  close(): void;
}

/** Native memory from `malloc`; `bytes` views it from JS. */
export interface NativeMemory {
  /** The pointer to pass to C. */
  readonly pointer: Pointer;
  /** The address as a number, for another thread. */
  readonly address: number;
  /** A JS view of the same bytes. */
  readonly bytes: Uint8Array;
  /** Releases the memory; the views must not be used afterwards. */
  free(): void;
}

/** The runtime this module is running under. */
export type RuntimeName = "deno" | "bun";

interface DenoFfi {
  dlopen(
    path: string,
    symbols: Record<string, unknown>,
  ): { symbols: Record<string, NativeFunction>; close(): void };
  UnsafePointer: {
    create(value: bigint): unknown;
    value(p: unknown): bigint | number;
  };
  UnsafePointerView: new (p: unknown) => {
    getArrayBuffer(len: number, offset?: number): ArrayBuffer;
  };
  build: { os: string; arch: string };
  env: { get(name: string): string | undefined };
}

interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, unknown>,
  ): { symbols: Record<string, NativeFunction>; close(): void };
  toArrayBuffer(p: unknown, offset: number, len: number): ArrayBuffer;
}

const denoGlobal = Reflect.get(globalThis, "Deno") as DenoFfi | undefined;
const bunGlobal = Reflect.get(globalThis, "Bun") as object | undefined;

/** The runtime we run under. */
export const runtime: RuntimeName = bunGlobal ? "bun" : "deno";

let bunFfi: BunFfi | undefined;
if (runtime === "bun") {
  bunFfi = await import("bun:ffi") as unknown as BunFfi;
} else if (!denoGlobal) {
  throw new Error("aioloop runs under Deno or Bun (no FFI found)");
}

/** The operating system name, as Node's `process.platform` spells it. */
export const platform: string = runtime === "deno"
  ? (denoGlobal!.build.os === "windows" ? "win32" : denoGlobal!.build.os)
  : Reflect.get(Reflect.get(globalThis, "process") as object, "platform");

/** The CPU architecture, as Node's `process.arch` spells it. */
export const arch: string = runtime === "deno"
  ? ({ x86_64: "x64", aarch64: "arm64" } as Record<string, string>)[
    denoGlobal!.build.arch
  ] ?? denoGlobal!.build.arch
  : Reflect.get(Reflect.get(globalThis, "process") as object, "arch");

const DENO_TYPES: Record<NativeType, string> = {
  i32: "i32",
  u32: "u32",
  i64: "i64",
  u64: "u64",
  pointer: "pointer",
  buffer: "buffer",
  void: "void",
};
const BUN_TYPES: Record<NativeType, string> = {
  i32: "i32",
  u32: "u32",
  i64: "i64",
  u64: "u64",
  pointer: "ptr",
  buffer: "ptr",
  void: "void",
};

type Convert = (value: unknown) => unknown;
const same: Convert = (value) => value;
const toBigInt = BigInt as Convert;
const toNumber = Number as Convert;
const thenNumber: Convert = (p) => (p as Promise<unknown>).then(Number);

function is64(t: NativeType): boolean {
  return t === "i64" || t === "u64";
}

/**
 * The bound function as every caller sees it: numbers in, numbers out.
 *
 * Results: a 64-bit result comes back as a number (`Number()` is exact for
 * every size, offset and fd we use), in Deno as in Bun.
 *
 * Parameters: Deno 2.x's fast calls (V8's Fast API, the path an optimized
 * caller takes) accept a 64-bit integer parameter only as a BigInt. A
 * number there does work, but the optimized caller deoptimizes on it
 * ("not a BigInt"), V8 optimizes it again, and so on for as long as the
 * program runs, on every call site that passes a length to `recv`/`send`.
 * Measured with Deno 2.9.6 on `strnlen(buffer, u64)`: 107 ns per call and
 * 850 deoptimizations in 2 M calls with numbers, 13 ns and none with
 * `BigInt(n)`. So Deno's bindings convert their 64-bit parameters here,
 * once for all callers. Bun is the other way round (14.5 ns with a number,
 * 26.7 with a BigInt), so Bun's are passed through. Nonblocking calls never
 * take the fast path. The wrappers have a fixed arity (no rest arguments),
 * so an optimized caller inlines them. Every value reaching here has been
 * checked to be an integer in range (`validate.ts`), so `BigInt()` cannot
 * throw.
 */
function adapt(fn: NativeFunction, spec: SymbolSpec): NativeFunction {
  const wideArgs = runtime === "deno" && !spec.nonblocking &&
    spec.parameters.some(is64);
  const wideResult = is64(spec.result);
  if (!wideArgs && !wideResult) return fn;
  const r = !wideResult ? same : spec.nonblocking ? thenNumber : toNumber;
  const c = spec.parameters.map((t) => wideArgs && is64(t) ? toBigInt : same);
  const [c0, c1, c2, c3, c4, c5] = c;
  switch (c.length) {
    case 0:
      return () => r(fn());
    case 1:
      return (a) => r(fn(c0(a)));
    case 2:
      return (a, b) => r(fn(c0(a), c1(b)));
    case 3:
      return (a, b, d) => r(fn(c0(a), c1(b), c2(d)));
    case 4:
      return (a, b, d, e) => r(fn(c0(a), c1(b), c2(d), c3(e)));
    case 5:
      return (a, b, d, e, f) => r(fn(c0(a), c1(b), c2(d), c3(e), c4(f)));
    case 6:
      return (a, b, d, e, f, g) =>
        r(fn(c0(a), c1(b), c2(d), c3(e), c4(f), c5(g)));
    default:
      return (...a) => r(fn(...a.map((v, i) => c[i](v))));
  }
}

/**
 * Opens a shared library and binds the given symbols with one calling
 * convention in both runtimes. `nonblocking` is honoured by Deno only;
 * Bun ignores it (the call blocks), so callers check {@link runtime}.
 */
export function openLibrary<S extends string>(
  path: string,
  specs: Record<S, SymbolSpec>,
): Library<S> {
  const native: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs) as [S, SymbolSpec][]) {
    native[name] = runtime === "deno"
      ? {
        parameters: spec.parameters.map((t) => DENO_TYPES[t]),
        result: DENO_TYPES[spec.result],
        nonblocking: spec.nonblocking ?? false,
      }
      : {
        args: spec.parameters.map((t) => BUN_TYPES[t]),
        returns: BUN_TYPES[spec.result],
      };
  }
  const lib = runtime === "deno"
    ? denoGlobal!.dlopen(path, native)
    : bunFfi!.dlopen(path, native);
  const symbols = {} as Record<S, NativeFunction>;
  for (const [name, spec] of Object.entries(specs) as [S, SymbolSpec][]) {
    symbols[name] = adapt(lib.symbols[name], spec);
  }
  return { symbols, close: () => lib.close() };
}

/** The address of a pointer, as a number. */
export function pointerAddress(p: Pointer): number {
  if (runtime === "bun") return Number(p ?? 0);
  return p === null ? 0 : Number(denoGlobal!.UnsafePointer.value(p));
}

/** A pointer from an address (the inverse of {@link pointerAddress}). */
export function pointerFromAddress(address: number): Pointer {
  if (runtime === "bun") return address;
  return denoGlobal!.UnsafePointer.create(BigInt(address));
}

/** An ArrayBuffer over `len` bytes of native memory at `p` (not owned). */
export function viewNative(p: Pointer, len: number): ArrayBuffer {
  if (runtime === "bun") return bunFfi!.toArrayBuffer(p, 0, len);
  return new denoGlobal!.UnsafePointerView(p).getArrayBuffer(len);
}

/** An environment variable's value; undefined when unset or not permitted. */
export function readEnv(name: string): string | undefined {
  try {
    const deno = Reflect.get(globalThis, "Deno") as
      | { env: { get(n: string): string | undefined } }
      | undefined;
    if (deno && !Reflect.get(globalThis, "Bun")) return deno.env.get(name);
    const proc = Reflect.get(globalThis, "process") as
      | { env: Record<string, string | undefined> }
      | undefined;
    return proc?.env[name];
  } catch {
    return undefined;
  }
}
