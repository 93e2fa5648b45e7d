/**
 * One FFI surface over `Deno.dlopen` and `bun:ffi`.
 *
 * Everything above this file sees the same shapes in both runtimes:
 * - integers go in and come out as JS numbers (64-bit results are converted
 *   with `Number()`, which is exact for every size and fd we use);
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

function wrapResult(fn: NativeFunction, spec: SymbolSpec): NativeFunction {
  if (spec.result !== "i64" && spec.result !== "u64") return fn;
  if (spec.nonblocking) {
    return (...a) => (fn(...a) as Promise<unknown>).then(Number);
  }
  return (...a) => Number(fn(...a));
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
    symbols[name] = wrapResult(lib.symbols[name], spec);
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
