/**
 * Name resolution through libc's getaddrinfo/getnameinfo, off the JS
 * thread: a resolver may take seconds, and the loop must keep running.
 *
 * - Deno: `nonblocking` FFI calls on Deno's blocking-call pool. All memory
 *   they touch is malloc'd and freed when the call has returned, even when
 *   the caller stopped waiting (cancellation).
 * - Bun: `nonblocking` is ignored, so resolver Workers make the calls
 *   (ffi/dns_worker.ts). They are referenced only while a request is
 *   pending and terminated by `close()`.
 *
 * Every request is checked on the calling thread first
 * ({@link addrInfoRequest}, {@link nameInfoRequest}), so both runtimes
 * reject bad input alike, before any resolver call; an error raised in a
 * Worker crosses back with its class and fields ({@link errorToWire}).
 *
 * C API used (glibc):
 * ```c
 * int getaddrinfo(const char *node, const char *service,
 *                 const struct addrinfo *hints, struct addrinfo **res);
 * void freeaddrinfo(struct addrinfo *res);
 * const char *gai_strerror(int errcode);
 * int getnameinfo(const struct sockaddr *sa, socklen_t salen,
 *                 char *host, socklen_t hostlen,
 *                 char *serv, socklen_t servlen, int flags);
 *
 * struct addrinfo {            // 48 bytes on 64-bit Linux
 *   int ai_flags;              // offset 0
 *   int ai_family;             // offset 4
 *   int ai_socktype;           // offset 8
 *   int ai_protocol;           // offset 12
 *   socklen_t ai_addrlen;      // offset 16
 *   struct sockaddr *ai_addr;  // offset 24
 *   char *ai_canonname;        // offset 32
 *   struct addrinfo *ai_next;  // offset 40
 * };
 * ```
 *
 * @module
 */
import {
  BrokenPipeError,
  ConnectionAbortedError,
  ConnectionError,
  ConnectionRefusedError,
  ConnectionResetError,
  GaiError,
  OSError,
} from "./errors.ts";
import { allocate, libcPath } from "./libc.ts";
import {
  type NativeMemory,
  openLibrary,
  pointerAddress,
  pointerFromAddress,
  runtime,
  viewNative,
} from "./runtime.ts";
import {
  type Address,
  decodeSockaddr,
  encodeSockaddr,
  formatAddress,
  ipFamily,
} from "./sys/sockaddr.ts";

/** The layout of `struct addrinfo` (checked against C by tests). */
export const ADDRINFO_LAYOUT = {
  size: 48,
  flags: 0,
  family: 4,
  socktype: 8,
  protocol: 12,
  addrlen: 16,
  addr: 24,
  canonname: 32,
  next: 40,
} as const;

/** getaddrinfo flag: the address is for bind() (any address when host is null). */
export const AI_PASSIVE = 0x1;
/** getaddrinfo flag: fill in the canonical name. */
export const AI_CANONNAME = 0x2;
/** getaddrinfo flag: the host must be numeric. */
export const AI_NUMERICHOST = 0x4;
/** getaddrinfo flag: only families configured on this host. */
export const AI_ADDRCONFIG = 0x20;
/** getaddrinfo flag: the service must be numeric. */
export const AI_NUMERICSERV = 0x400;
/** getnameinfo flag: numeric host. */
export const NI_NUMERICHOST = 1;
/** getnameinfo flag: numeric service. */
export const NI_NUMERICSERV = 2;
/** getnameinfo flag: fail when the name is not found. */
export const NI_NAMEREQD = 8;
/** getnameinfo flag: the service is a datagram one (udp). */
export const NI_DGRAM = 16;

/** getaddrinfo/getnameinfo result: the name is not known (or not numeric). */
export const EAI_NONAME = -2;

const EAI_NAMES: Record<number, string> = {
  [-1]: "EAI_BADFLAGS",
  [-2]: "EAI_NONAME",
  [-3]: "EAI_AGAIN",
  [-4]: "EAI_FAIL",
  [-5]: "EAI_NODATA",
  [-6]: "EAI_FAMILY",
  [-7]: "EAI_SOCKTYPE",
  [-8]: "EAI_SERVICE",
  [-9]: "EAI_ADDRFAMILY",
  [-10]: "EAI_MEMORY",
  [-11]: "EAI_SYSTEM",
  [-12]: "EAI_OVERFLOW",
};

/** One result: `[family, type, proto, canonname, sockaddr]`, as Python's. */
export type AddrInfo = [
  family: number,
  type: number,
  proto: number,
  canonname: string,
  sockaddr: Address,
];

/** What getaddrinfo is asked. */
export interface AddrInfoRequest {
  /** A host name or numeric address; null for "any"/loopback. */
  host: string | null;
  /** A port number or service name; null for none. */
  port: string | number | null;
  /** AF_* or 0. */
  family: number;
  /** SOCK_* or 0. */
  type: number;
  /** Protocol or 0. */
  proto: number;
  /** AI_* flags. */
  flags: number;
}

/** What getnameinfo is asked (checked by {@link nameInfoRequest}). */
export interface NameInfoRequest {
  /** AF_INET or AF_INET6, from the numeric host. */
  family: number;
  /** `[host, port]` or `[host, port, flowinfo, scopeId]`. */
  sockaddr: Address;
  /** NI_* flags. */
  flags: number;
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;

/** A value for an error message: strings quoted, anything else printed. */
function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** An integer argument in `[min, max]`: TypeError if not a number, else RangeError. */
function checkInteger(
  value: unknown,
  name: string,
  min: number,
  max: number,
): number {
  if (typeof value !== "number") {
    throw new TypeError(`${name} must be an integer, got ${show(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `${name} must be an integer in ${min}..${max}, got ${show(value)}`,
    );
  }
  return value;
}

/** An `int` option (family, type, proto, flags): undefined and null are 0. */
function checkIntOption(value: unknown, name: string): number {
  if (value === undefined || value === null) return 0;
  return checkInteger(value, name, INT32_MIN, INT32_MAX);
}

/**
 * A port number: an integer in 0..65535. TypeError when `port` is not a
 * number, RangeError when it is NaN, fractional or out of range; the
 * message names the argument (`name`, default "port").
 */
export function checkPort(port: unknown, name = "port"): number {
  return checkInteger(port, name, 0, 65535);
}

// What glibc's getaddrinfo reads as a number (strtoul, base 10, over the
// whole string): C-locale spaces, a sign, digits. "" is port 0 as well.
const NUMERIC_SERVICE = /^[ \t\n\v\f\r]*[+-]?[0-9]+$/;

/**
 * The port or service of a getaddrinfo call, checked: null; a port number
 * (a number, or a string libc would read as one, like "8080"), which must
 * be an integer in 0..65535 (RangeError, as libc would wrap 70000 to
 * 4464); or a service name like "http" (no NUL byte: RangeError). Any
 * other type is a TypeError. Numbers come back as numbers.
 */
export function checkService(
  port: unknown,
  name = "port",
): string | number | null {
  if (port === null) return null;
  if (typeof port === "number") return checkPort(port, name);
  if (typeof port !== "string") {
    throw new TypeError(
      `${name} must be a number, a string or null, got ${show(port)}`,
    );
  }
  if (port === "" || NUMERIC_SERVICE.test(port)) {
    const value = Number(port || "0");
    if (!Number.isInteger(value) || value < 0 || value > 65535) {
      throw new RangeError(
        `${name} must be an integer in 0..65535, got ${show(port)}`,
      );
    }
    return value === 0 ? 0 : value; // no -0
  }
  if (port.includes("\0")) {
    throw new RangeError(`${name} must not contain NUL bytes`);
  }
  return port;
}

/** A host for getaddrinfo: a string without NUL bytes, or null. */
function checkHost(host: unknown): string | null {
  if (host === null) return null;
  if (typeof host !== "string") {
    throw new TypeError(`host must be a string or null, got ${show(host)}`);
  }
  if (host.includes("\0")) {
    throw new RangeError(`host must not contain NUL bytes, got ${show(host)}`);
  }
  return host;
}

/**
 * Checks the arguments of getaddrinfo and returns the request to make:
 * `host` a string or null, `port` as {@link checkService} takes it,
 * `options` an object whose family/type/proto/flags are `int`s (absent:
 * 0). TypeError for a wrong type, RangeError for a bad value, each naming
 * the argument. Both resolvers make every request through here.
 */
export function addrInfoRequest(
  host: unknown,
  port: unknown,
  options: unknown = {},
): AddrInfoRequest {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`options must be an object, got ${show(options)}`);
  }
  const o = options as Record<string, unknown>;
  return {
    host: checkHost(host),
    port: checkService(port),
    family: checkIntOption(o.family, "family"),
    type: checkIntOption(o.type, "type"),
    proto: checkIntOption(o.proto, "proto"),
    flags: checkIntOption(o.flags, "flags"),
  };
}

/**
 * Checks the arguments of getnameinfo, as Python's socket.getnameinfo
 * does: `sockaddr` must be `[host, port]` or `[host, port, flowinfo,
 * scopeId]` (TypeError), the port an integer in 0..65535 and flowinfo and
 * scopeId unsigned 32-bit integers (TypeError/RangeError), `flags` an
 * `int`, and the host a numeric IPv4 or IPv6 address: a name is a
 * {@link GaiError} `EAI_NONAME`, as libc says for it with
 * AI_NUMERICHOST.
 */
export function nameInfoRequest(
  sockaddr: unknown,
  flags: unknown = 0,
): NameInfoRequest {
  if (
    !Array.isArray(sockaddr) || typeof sockaddr[0] !== "string" ||
    (sockaddr.length !== 2 && sockaddr.length !== 4)
  ) {
    const got = Array.isArray(sockaddr)
      ? `[${sockaddr.map(show).join(", ")}]`
      : show(sockaddr);
    throw new TypeError(
      `sockaddr must be [host, port] or [host, port, flowinfo, scopeId], got ${got}`,
    );
  }
  const [host, port, flowinfo = 0, scopeId = 0] = sockaddr as unknown[];
  checkPort(port);
  checkInteger(flowinfo, "flowinfo", 0, UINT32_MAX);
  checkInteger(scopeId, "scopeId", 0, UINT32_MAX);
  const checkedFlags = checkIntOption(flags, "flags");
  if ((host as string).includes("\0")) {
    throw new RangeError(`host must not contain NUL bytes, got ${show(host)}`);
  }
  const address = sockaddr.slice() as unknown as Address;
  const family = ipFamily(host as string);
  if (family === 0) {
    throw gaiError(EAI_NONAME, "getnameinfo", formatAddress(address));
  }
  encodeSockaddr(family, address); // the remaining shape checks
  return { family, sockaddr: address, flags: checkedFlags };
}

type DnsSymbols = {
  getaddrinfo(node: unknown, service: unknown, hints: unknown, res: unknown):
    | number
    | Promise<number>;
  freeaddrinfo(res: unknown): void;
  gai_strerror(code: number): unknown;
  getnameinfo(
    sa: unknown,
    salen: number,
    host: unknown,
    hostlen: number,
    serv: unknown,
    servlen: number,
    flags: number,
  ): number | Promise<number>;
};

let syncLib: DnsSymbols | undefined;
let asyncLib: DnsSymbols | undefined;

function bind(nonblocking: boolean): DnsSymbols {
  return openLibrary(libcPath, {
    getaddrinfo: {
      parameters: ["pointer", "pointer", "pointer", "pointer"],
      result: "i32",
      nonblocking,
    },
    freeaddrinfo: { parameters: ["pointer"], result: "void" },
    gai_strerror: { parameters: ["i32"], result: "pointer" },
    getnameinfo: {
      parameters: ["pointer", "u32", "pointer", "u32", "pointer", "u32", "i32"],
      result: "i32",
      nonblocking,
    },
  }).symbols as unknown as DnsSymbols;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function readCString(address: number, max = 1025): string {
  if (address === 0) return "";
  const bytes = new Uint8Array(viewNative(pointerFromAddress(address), max));
  const end = bytes.indexOf(0);
  return decoder.decode(bytes.subarray(0, end < 0 ? max : end));
}

/** The GaiError for a getaddrinfo/getnameinfo result code. */
export function gaiError(
  code: number,
  syscall: string,
  detail: string,
): GaiError {
  syncLib ??= bind(false);
  const text = readCString(pointerAddress(syncLib.gai_strerror(code)), 256);
  return new GaiError(
    code,
    EAI_NAMES[code] ?? `EAI_${-code}`,
    text,
    syscall,
    detail,
  );
}

/** Memory for one request: strings, hints, result cell; freed together. */
class RequestMemory {
  private readonly blocks: NativeMemory[] = [];

  /** A NUL-terminated copy of `text` (null pointer for null). */
  string(text: string | null): unknown {
    if (text === null) return null;
    const bytes = encoder.encode(text);
    if (bytes.includes(0)) {
      throw new RangeError(`host and service must not contain NUL bytes`);
    }
    const block = this.block(bytes.length + 1);
    block.bytes.set(bytes);
    return block.pointer;
  }

  block(size: number): NativeMemory {
    const block = allocate(size);
    this.blocks.push(block);
    return block;
  }

  free(): void {
    for (const block of this.blocks) block.free();
    this.blocks.length = 0;
  }
}

function requestDetail(req: AddrInfoRequest): string {
  return req.port === null ? `${req.host}` : `${req.host}:${req.port}`;
}

/** Runs getaddrinfo; sync in a Worker, nonblocking in Deno. */
async function callGetaddrinfo(
  lib: DnsSymbols,
  req: AddrInfoRequest,
): Promise<AddrInfo[]> {
  const memory = new RequestMemory();
  try {
    const node = memory.string(req.host);
    const service = memory.string(req.port === null ? null : String(req.port));
    const hints = memory.block(ADDRINFO_LAYOUT.size);
    const view = new DataView(hints.bytes.buffer);
    view.setInt32(ADDRINFO_LAYOUT.flags, req.flags, true);
    view.setInt32(ADDRINFO_LAYOUT.family, req.family, true);
    view.setInt32(ADDRINFO_LAYOUT.socktype, req.type, true);
    view.setInt32(ADDRINFO_LAYOUT.protocol, req.proto, true);
    const res = memory.block(8);
    const code = await lib.getaddrinfo(
      node,
      service,
      hints.pointer,
      res.pointer,
    );
    if (code !== 0) {
      throw gaiError(code, "getaddrinfo", requestDetail(req));
    }
    const head = Number(new DataView(res.bytes.buffer).getBigUint64(0, true));
    try {
      return decodeAddrinfo(head);
    } finally {
      lib.freeaddrinfo(pointerFromAddress(head));
    }
  } finally {
    memory.free();
  }
}

/** Walks a `struct addrinfo` list. */
function decodeAddrinfo(head: number): AddrInfo[] {
  const out: AddrInfo[] = [];
  const L = ADDRINFO_LAYOUT;
  for (let at = head; at !== 0;) {
    const view = new DataView(viewNative(pointerFromAddress(at), L.size));
    const family = view.getInt32(L.family, true);
    const addrlen = view.getUint32(L.addrlen, true);
    const addr = Number(view.getBigUint64(L.addr, true));
    const canon = Number(view.getBigUint64(L.canonname, true));
    let sockaddr: Address | null = null;
    if (addr !== 0 && addrlen > 0) {
      const bytes = new Uint8Array(
        viewNative(pointerFromAddress(addr), addrlen),
      );
      try {
        sockaddr = decodeSockaddr(bytes.slice(), addrlen);
      } catch {
        sockaddr = null; // a family we do not speak
      }
    }
    if (sockaddr !== null) {
      out.push([
        family,
        view.getInt32(L.socktype, true),
        view.getInt32(L.protocol, true),
        readCString(canon),
        sockaddr,
      ]);
    }
    at = Number(view.getBigUint64(L.next, true));
  }
  return out;
}

/** Runs getnameinfo; sync in a Worker, nonblocking in Deno. */
async function callGetnameinfo(
  lib: DnsSymbols,
  family: number,
  sockaddr: Address,
  flags: number,
): Promise<[string, string]> {
  const memory = new RequestMemory();
  try {
    const encoded = encodeSockaddr(family, sockaddr);
    const sa = memory.block(encoded.bytes.length);
    sa.bytes.set(encoded.bytes);
    const host = memory.block(1025);
    const serv = memory.block(32);
    const code = await lib.getnameinfo(
      sa.pointer,
      encoded.length,
      host.pointer,
      1025,
      serv.pointer,
      32,
      flags,
    );
    if (code !== 0) {
      throw gaiError(code, "getnameinfo", formatAddress(sockaddr));
    }
    return [readCString(host.address), readCString(serv.address, 32)];
  } finally {
    memory.free();
  }
}

/** Blocking getaddrinfo on the calling thread (the resolver Worker's). */
export function getaddrinfoHere(req: AddrInfoRequest): Promise<AddrInfo[]> {
  syncLib ??= bind(false);
  return callGetaddrinfo(syncLib, req);
}

/** Blocking getnameinfo on the calling thread (the resolver Worker's). */
export function getnameinfoHere(
  family: number,
  sockaddr: Address,
  flags: number,
): Promise<[string, string]> {
  syncLib ??= bind(false);
  return callGetnameinfo(syncLib, family, sockaddr, flags);
}

/** An error as it crosses the Worker boundary: its class name and fields. */
export interface WireError {
  /** The class: "GaiError", "OSError" (or a subclass), "RangeError", ... */
  name: string;
  /** The message, as it was. */
  message: string;
  /** OSError/GaiError: errno (EAI_* for GaiError). */
  errno?: number;
  /** OSError/GaiError: the errno or EAI_* name. */
  code?: string;
  /** OSError/GaiError: the failed call. */
  syscall?: string;
}

/** The OSError classes that cross the Worker boundary by name. */
const OS_ERROR_CLASSES: Record<string, typeof OSError> = {
  OSError,
  GaiError,
  ConnectionError,
  ConnectionRefusedError,
  ConnectionResetError,
  ConnectionAbortedError,
  BrokenPipeError,
};

/** The JS error classes that cross the Worker boundary by name. */
const ERROR_CLASSES: Record<string, ErrorConstructor> = {
  Error,
  RangeError,
  TypeError,
};

/** `error` as plain data for postMessage (see {@link errorFromWire}). */
export function errorToWire(error: unknown): WireError {
  if (error instanceof OSError) {
    return {
      name: error.name,
      message: error.message,
      errno: error.errno,
      code: error.code,
      syscall: error.syscall,
    };
  }
  if (error instanceof Error) {
    return { name: error.name, message: error.message };
  }
  return { name: "Error", message: String(error) };
}

/**
 * The error {@link errorToWire} described, rebuilt with the same class
 * (GaiError, an OSError class, RangeError, TypeError; else Error with the
 * same name), message, errno, code and syscall.
 */
export function errorFromWire(wire: WireError): Error {
  const OsClass = Object.hasOwn(OS_ERROR_CLASSES, wire.name)
    ? OS_ERROR_CLASSES[wire.name]
    : undefined;
  let error: Error;
  if (OsClass !== undefined || wire.errno !== undefined) {
    error = new (OsClass ?? OSError)(
      wire.errno ?? 0,
      wire.code ?? "",
      "",
      wire.syscall ?? "",
    );
  } else {
    const ErrorClass = Object.hasOwn(ERROR_CLASSES, wire.name)
      ? ERROR_CLASSES[wire.name]
      : Error;
    error = new ErrorClass(wire.message);
  }
  error.message = wire.message;
  if (error.name !== wire.name) error.name = wire.name;
  return error;
}

/** A lookup held by the test hook {@link _holdNextLookup}. */
interface Hold {
  /** One Int32 in shared memory: 0 while held, 1 once released. */
  readonly gate: Int32Array;
  /** Settles once released. */
  readonly released: Promise<void>;
  release(): void;
}

const holds = new Map<string, Hold>();

/**
 * @internal Test hook: the next getaddrinfo request for `host` (on any
 * resolver) waits, before it calls libc, until the returned function is
 * called, as a lookup that never answers would. In Bun the Worker serving
 * it blocks in `Atomics.wait`, holding its thread as a blocking libc call
 * does; in Deno the request waits before it goes to the blocking pool.
 * Lets tests check, without a network, what other lookups do meanwhile.
 * Releasing twice does nothing; closing the resolver releases it too.
 */
export function _holdNextLookup(host: string): () => void {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  let open!: () => void;
  const released = new Promise<void>((resolve) => (open = resolve));
  const hold: Hold = {
    gate,
    released,
    release() {
      if (holds.get(host) === hold) holds.delete(host);
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      open();
    },
  };
  holds.set(host, hold);
  return () => hold.release();
}

/** The hold on the next lookup of `host`, taken (see {@link _holdNextLookup}). */
function takeHold(host: string | null): Hold | undefined {
  if (holds.size === 0 || host === null) return undefined;
  const hold = holds.get(host);
  if (hold !== undefined) holds.delete(host);
  return hold;
}

/** Mirrors `work`, but rejects with the signal's reason once it aborts. */
function abortable<T>(
  work: () => Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (signal === undefined) return work();
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work().then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}

/** Resolves names off the JS thread. */
export interface Resolver {
  /**
   * libc getaddrinfo. The request is checked first (see
   * {@link addrInfoRequest}); rejects with GaiError when libc fails, and
   * with `signal`'s reason once it aborts (a request that has not started
   * is then dropped; one in a libc call finishes unseen).
   */
  getaddrinfo(req: AddrInfoRequest, signal?: AbortSignal): Promise<AddrInfo[]>;
  /**
   * libc getnameinfo (the request checked by {@link nameInfoRequest});
   * `signal` as for getaddrinfo.
   */
  getnameinfo(
    req: NameInfoRequest,
    signal?: AbortSignal,
  ): Promise<[string, string]>;
  /** Ends the resolver's threads (Bun); pending requests reject. */
  close(): void;
}

/** The request again through the checks: the one path for both runtimes. */
function recheckAddrInfo(req: AddrInfoRequest): AddrInfoRequest {
  return addrInfoRequest(req.host, req.port, req);
}

function recheckNameInfo(req: NameInfoRequest): NameInfoRequest {
  return nameInfoRequest(req.sockaddr, req.flags);
}

/** Deno: nonblocking FFI calls on the runtime's pool, all in parallel. */
class PoolResolver implements Resolver {
  getaddrinfo(req: AddrInfoRequest, signal?: AbortSignal): Promise<AddrInfo[]> {
    return abortable(async () => {
      const checked = recheckAddrInfo(req);
      const hold = takeHold(checked.host);
      if (hold !== undefined) await hold.released;
      if (signal?.aborted) throw signal.reason;
      asyncLib ??= bind(true);
      return await callGetaddrinfo(asyncLib, checked);
    }, signal);
  }

  getnameinfo(
    req: NameInfoRequest,
    signal?: AbortSignal,
  ): Promise<[string, string]> {
    return abortable(async () => {
      const { family, sockaddr, flags } = recheckNameInfo(req);
      asyncLib ??= bind(true);
      return await callGetnameinfo(asyncLib, family, sockaddr, flags);
    }, signal);
  }

  close(): void {
    // Calls in flight finish on the pool and free their memory.
  }
}

interface WorkerLike {
  postMessage(message: unknown): void;
  terminate(): void;
  ref?(): void;
  unref?(): void;
  addEventListener(type: string, listener: (e: unknown) => void): void;
}

/** Messages the resolver Worker answers with. */
export type DnsReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WireError };

/** At most this many resolver Workers (Bun) run at once. */
export const RESOLVER_WORKERS = 4;

/** One request for a resolver Worker. */
type Job = {
  id: number;
  message: Record<string, unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** The test hook's gate, if held. */
  hold?: Hold;
  /** Settled (answered, aborted or rejected by close()). */
  settled: boolean;
  /** Removes the abort listener. */
  unlisten(): void;
};

/** A resolver Worker and the job it is running, if any. */
type Slot = { worker: WorkerLike; job: Job | null };

/**
 * Bun: a pool of up to {@link RESOLVER_WORKERS} Workers that make the
 * blocking calls, one request each at a time, so that a slow lookup holds
 * up one Worker, not every other lookup. Workers start when requests
 * wait, are referenced only while they run one, and all end with
 * close(). Requests wait in a queue; an aborted one leaves it at once.
 */
class WorkerResolver implements Resolver {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  private start(): Slot {
    const url = new URL("./dns_worker.ts", import.meta.url);
    const WorkerCtor = Reflect.get(globalThis, "Worker") as new (
      url: URL,
      options: unknown,
    ) => WorkerLike;
    // One name for all: tests count threads named aioloop-*.
    const worker = new WorkerCtor(url, { type: "module", name: "aioloop-dns" });
    const slot: Slot = { worker, job: null };
    worker.addEventListener("message", (event) => {
      const reply = (event as MessageEvent<DnsReply>).data;
      const job = slot.job;
      if (job === null || job.id !== reply.id) return;
      slot.job = null;
      if (reply.ok) this.settle(job, true, reply.value);
      else this.settle(job, false, errorFromWire(reply.error));
      this.dispatch();
    });
    worker.addEventListener("error", (event) => {
      // The Worker died (it catches every error of a request itself).
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      worker.terminate();
      const job = slot.job;
      slot.job = null;
      const what = (event as { message?: string }).message ?? "unknown error";
      if (job) {
        this.settle(job, false, new Error(`resolver Worker failed: ${what}`));
      }
      this.dispatch();
    });
    this.slots.push(slot);
    return slot;
  }

  private settle(job: Job, ok: boolean, value: unknown): void {
    if (job.settled) return;
    job.settled = true;
    job.unlisten();
    if (ok) job.resolve(value);
    else job.reject(value);
  }

  /** Gives waiting jobs to idle Workers, starting Workers up to the limit. */
  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      let slot = this.slots.find((s) => s.job === null);
      if (slot === undefined) {
        if (this.slots.length >= RESOLVER_WORKERS) break;
        slot = this.start();
      }
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.ref?.();
      try {
        slot.worker.postMessage({
          id: job.id,
          ...job.message,
          gate: job.hold?.gate,
        });
      } catch (error) {
        slot.job = null;
        this.settle(job, false, error);
      }
    }
    for (const slot of this.slots) {
      if (slot.job === null) slot.worker.unref?.();
    }
  }

  private call(
    message: Record<string, unknown>,
    signal: AbortSignal | undefined,
    hold?: Hold,
  ): Promise<unknown> {
    if (this.closed) {
      hold?.release();
      return Promise.reject(new Error("resolver is closed"));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const job: Job = {
        id: this.nextId++,
        message,
        resolve,
        reject,
        hold,
        settled: false,
        unlisten: () => signal?.removeEventListener("abort", onAbort),
      };
      const onAbort = () => {
        // Not started: it leaves the queue. Running: its answer is dropped
        // (the libc call cannot be interrupted; the Worker stays busy).
        const at = this.queue.indexOf(job);
        if (at >= 0) this.queue.splice(at, 1);
        this.settle(job, false, signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(job);
      this.dispatch();
    });
  }

  async getaddrinfo(
    req: AddrInfoRequest,
    signal?: AbortSignal,
  ): Promise<AddrInfo[]> {
    const checked = recheckAddrInfo(req);
    const hold = takeHold(checked.host);
    return await this.call(
      { op: "getaddrinfo", req: checked },
      signal,
      hold,
    ) as AddrInfo[];
  }

  async getnameinfo(
    req: NameInfoRequest,
    signal?: AbortSignal,
  ): Promise<[string, string]> {
    const { family, sockaddr, flags } = recheckNameInfo(req);
    return await this.call(
      { op: "getnameinfo", family, sockaddr, flags },
      signal,
    ) as [string, string];
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const jobs = [...this.queue];
    for (const slot of this.slots) {
      slot.worker.terminate();
      if (slot.job) jobs.push(slot.job);
      slot.job = null;
    }
    this.slots.length = 0;
    this.queue.length = 0;
    const error = new Error("resolver closed before the answer came");
    for (const job of jobs) {
      job.hold?.release();
      this.settle(job, false, error);
    }
  }
}

/** The resolver for this runtime. */
export function createResolver(): Resolver {
  return runtime === "deno" ? new PoolResolver() : new WorkerResolver();
}
