/**
 * Name resolution through libc's getaddrinfo/getnameinfo, off the JS
 * thread: a resolver may take seconds, and the loop must keep running.
 *
 * The calls go through the off-thread runner (ffi/offthread.ts): Deno's
 * `nonblocking` FFI calls, or Bun Workers named `aioloop-dns`, at most
 * {@link RESOLVER_WORKERS} at once. They take pointers to malloc'd request
 * memory; the results are decoded on the JS thread from native memory and
 * the memory is freed when the call has returned, even when the caller
 * stopped waiting (cancellation, close()).
 *
 * Every request is checked on the calling thread first
 * ({@link addrInfoRequest}, {@link nameInfoRequest}), so both runtimes
 * reject bad input alike, before any resolver call; an error raised on a
 * runner thread crosses back with its class and fields ({@link errorToWire}).
 *
 * C API used (`<netdb.h>`; glibc, macOS Libinfo, the BSDs):
 * ```c
 * int getaddrinfo(const char *node, const char *service,
 *                 const struct addrinfo *hints, struct addrinfo **res);
 * void freeaddrinfo(struct addrinfo *res);
 * const char *gai_strerror(int errcode);
 * int getnameinfo(const struct sockaddr *sa, socklen_t salen,
 *                 char *host, socklen_t hostlen,
 *                 char *serv, socklen_t servlen, int flags);
 *
 * struct addrinfo {            // 48 bytes on every LP64 system
 *   int ai_flags;              // offset 0
 *   int ai_family;             // offset 4
 *   int ai_socktype;           // offset 8
 *   int ai_protocol;           // offset 12
 *   socklen_t ai_addrlen;      // offset 16
 *   struct sockaddr *ai_addr;  // offset 24 (glibc, OpenBSD; 32 elsewhere)
 *   char *ai_canonname;        // offset 32 (glibc, OpenBSD; 24 elsewhere)
 *   struct addrinfo *ai_next;  // offset 40
 * };
 * // macOS (Libinfo netdb.h), FreeBSD and NetBSD (include/netdb.h) declare
 * // ai_canonname before ai_addr.
 * ```
 *
 * @module
 */
import { checkInt, checkInt32 } from "./validate.ts";
import { GaiError, RuntimeError } from "./errors.ts";
import { allocate, libcPath } from "./libc.ts";
import {
  type NativeMemory,
  openLibrary,
  pointerAddress,
  pointerFromAddress,
  viewNative,
} from "./runtime.ts";
import {
  type CallOptions,
  createRunner,
  errorFromWire,
  errorToWire,
  type NativeCall,
  type OffThreadRunner,
  type WireError,
} from "./offthread.ts";
import {
  type Address,
  decodeSockaddr,
  encodeSockaddr,
  formatAddress,
  ipFamily,
} from "./sys/sockaddr.ts";
import { gaiErrorName, hostTable } from "./sys/platform.ts";
import type { AddrinfoLayout } from "./sys/posix/table.ts";

/**
 * The layout of `struct addrinfo` on this OS (checked against C by tests):
 * glibc and OpenBSD put `ai_addr` at 24 and `ai_canonname` at 32, macOS,
 * FreeBSD and NetBSD the other way round.
 */
export const ADDRINFO_LAYOUT: AddrinfoLayout = hostTable.addrinfo;

export {
  AI_ADDRCONFIG,
  AI_CANONNAME,
  AI_NUMERICHOST,
  AI_NUMERICSERV,
  AI_PASSIVE,
  NI_DGRAM,
  NI_NAMEREQD,
  NI_NUMERICHOST,
  NI_NUMERICSERV,
} from "./sys/platform.ts";

/**
 * getaddrinfo/getnameinfo result: the name is not known (or not numeric).
 * -2 with glibc and OpenBSD, 8 on macOS, FreeBSD and NetBSD.
 */
export const EAI_NONAME: number = hostTable.gaiErrors.EAI_NONAME;

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

/** An `int` option (family, type, proto, flags): undefined and null are 0. */
function checkIntOption(value: unknown, name: string): number {
  if (value === undefined || value === null) return 0;
  return checkInt32(value, name);
}

/**
 * A port number: an integer in 0..65535. TypeError when `port` is not a
 * number, RangeError when it is NaN, fractional or out of range; the
 * message names the argument (`name`, default "port").
 */
export function checkPort(port: unknown, name = "port"): number {
  return checkInt(port, name, 0, 65535);
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
  checkInt(flowinfo, "flowinfo", 0, UINT32_MAX);
  checkInt(scopeId, "scopeId", 0, UINT32_MAX);
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

/** int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res); */
const GETADDRINFO: NativeCall = {
  library: libcPath,
  symbol: "getaddrinfo",
  parameters: ["pointer", "pointer", "pointer", "pointer"],
  result: "i32",
};

/**
 * int getnameinfo(const struct sockaddr *sa, socklen_t salen,
 *                 char *host, socklen_t hostlen,
 *                 char *serv, socklen_t servlen, int flags);
 */
const GETNAMEINFO: NativeCall = {
  library: libcPath,
  symbol: "getnameinfo",
  parameters: ["pointer", "u32", "pointer", "u32", "pointer", "u32", "i32"],
  result: "i32",
};

/** What runs on the JS thread: freeing results and naming errors. */
type LocalSymbols = {
  freeaddrinfo(res: unknown): void;
  gai_strerror(code: number): unknown;
};

let localLib: LocalSymbols | undefined;

function local(): LocalSymbols {
  localLib ??= openLibrary(libcPath, {
    // void freeaddrinfo(struct addrinfo *res);
    freeaddrinfo: { parameters: ["pointer"], result: "void" },
    // const char *gai_strerror(int errcode);
    gai_strerror: { parameters: ["i32"], result: "pointer" },
  }).symbols as unknown as LocalSymbols;
  return localLib;
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
  const text = readCString(pointerAddress(local().gai_strerror(code)), 256);
  return new GaiError(
    code,
    gaiErrorName(code),
    text,
    syscall,
    detail,
  );
}

/**
 * Native memory for one request (strings, hints, result cells), which the
 * resolver thread uses while the call runs: freed together, only once the
 * call has returned or was dropped before it started.
 */
class RequestMemory {
  private readonly blocks: NativeMemory[] = [];

  /** The address of a NUL-terminated copy of `text` (0 for null). */
  string(text: string | null): number {
    if (text === null) return 0;
    const bytes = encoder.encode(text);
    if (bytes.includes(0)) {
      throw new RangeError(`host and service must not contain NUL bytes`);
    }
    const block = this.block(bytes.length + 1);
    block.bytes.set(bytes);
    return block.address;
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

/**
 * getaddrinfo on a runner thread; the list is decoded here, on the JS
 * thread, and freed. Settles only after the call returned (or never
 * started), so the memory it used is freed after it, not under it; a list
 * made by a call whose result was lost (its runner closed) is freed too.
 */
async function callGetaddrinfo(
  runner: OffThreadRunner,
  req: AddrInfoRequest,
  options: CallOptions,
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
    const res = memory.block(8); // zeroed: getaddrinfo sets it on success
    let code: number | undefined;
    let failure: unknown;
    try {
      code = await runner.call(
        GETADDRINFO,
        [node, service, hints.address, res.address],
        options,
      );
    } catch (error) {
      failure = error;
    }
    const head = Number(new DataView(res.bytes.buffer).getBigUint64(0, true));
    try {
      if (code === undefined) throw failure;
      if (code !== 0) throw gaiError(code, "getaddrinfo", requestDetail(req));
      return decodeAddrinfo(head);
    } finally {
      if (head !== 0 && (code === undefined || code === 0)) {
        local().freeaddrinfo(pointerFromAddress(head));
      }
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

/** getnameinfo on a runner thread; the names are read here from its buffers. */
async function callGetnameinfo(
  runner: OffThreadRunner,
  req: NameInfoRequest,
  options: CallOptions,
): Promise<[string, string]> {
  const memory = new RequestMemory();
  try {
    const encoded = encodeSockaddr(req.family, req.sockaddr);
    const sa = memory.block(encoded.bytes.length);
    sa.bytes.set(encoded.bytes);
    const host = memory.block(1025);
    const serv = memory.block(32);
    const code = await runner.call(
      GETNAMEINFO,
      [
        sa.address,
        encoded.length,
        host.address,
        1025,
        serv.address,
        32,
        req.flags,
      ],
      options,
    );
    if (code !== 0) {
      throw gaiError(code, "getnameinfo", formatAddress(req.sockaddr));
    }
    return [readCString(host.address), readCString(serv.address, 32)];
  } finally {
    memory.free();
  }
}

export { errorFromWire, errorToWire, type WireError };

/** A lookup held by the test hook {@link _holdNextLookup}. */
interface Hold {
  /** Settles once released. */
  readonly released: Promise<void>;
  release(): void;
}

const holds = new Map<string, Hold>();

/**
 * @internal Test hook: the next getaddrinfo request for `host` (on any
 * resolver) takes one of its resolver's {@link RESOLVER_WORKERS} threads
 * (a Worker in Bun, a place in the bound on Deno's blocking pool) and
 * waits there, before it calls libc, until the returned function is
 * called, as a lookup that never answers would: a cancel does not free
 * that thread. Lets tests check, without a network, what other lookups do
 * meanwhile. Releasing twice does nothing; closing the resolver releases
 * it too.
 */
export function _holdNextLookup(host: string): () => void {
  let open!: () => void;
  const released = new Promise<void>((resolve) => (open = resolve));
  const hold: Hold = {
    released,
    release() {
      if (holds.get(host) === hold) holds.delete(host);
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

/**
 * Mirrors `work`, but rejects with a signal's reason as soon as one of
 * `signals` aborts (the work goes on and cleans up after itself).
 */
function abortable<T>(
  work: () => Promise<T>,
  ...signals: (AbortSignal | undefined)[]
): Promise<T> {
  for (const signal of signals) {
    if (signal?.aborted) return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const listeners: [AbortSignal, () => void][] = [];
    for (const signal of signals) {
      if (signal === undefined) continue;
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      listeners.push([signal, onAbort]);
    }
    work().then(resolve, reject).finally(() => {
      for (const [signal, onAbort] of listeners) {
        signal.removeEventListener("abort", onAbort);
      }
    });
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
  /** Ends the resolver's threads; pending requests reject. */
  close(): void;
}

/** The request again through the checks: the one path for both runtimes. */
function recheckAddrInfo(req: AddrInfoRequest): AddrInfoRequest {
  return addrInfoRequest(req.host, req.port, req);
}

function recheckNameInfo(req: NameInfoRequest): NameInfoRequest {
  return nameInfoRequest(req.sockaddr, req.flags);
}

/**
 * At most this many lookups run at once, on as many threads (Bun Workers
 * named `aioloop-dns`, or places on Deno's blocking pool); more wait in a
 * queue, which a cancelled lookup leaves.
 */
export const RESOLVER_WORKERS = 4;

/**
 * Both runtimes: the calls go through an off-thread runner of
 * {@link RESOLVER_WORKERS} threads (ffi/offthread.ts), so that a slow
 * lookup holds up one thread, not every other lookup. The request memory
 * is native and freed when the call has returned, even when the caller
 * stopped waiting (a cancel, or close()).
 */
class RunnerResolver implements Resolver {
  private readonly runner = createRunner({
    name: "aioloop-dns",
    threads: RESOLVER_WORKERS,
  });
  /** Aborted by close(): requests still pending reject at once. */
  private readonly closing = new AbortController();
  /** Holds taken by requests that have not settled. */
  private readonly held = new Set<Hold>();

  private request<T>(
    work: (options: CallOptions) => Promise<T>,
    signal: AbortSignal | undefined,
    hold?: Hold,
  ): Promise<T> {
    if (this.closing.signal.aborted) {
      hold?.release();
      return Promise.reject(new RuntimeError("resolver is closed"));
    }
    if (hold !== undefined) this.held.add(hold);
    const options: CallOptions = { signal, startAfter: hold?.released };
    return abortable(() => work(options), signal, this.closing.signal)
      .finally(() => {
        if (hold !== undefined) this.held.delete(hold);
      });
  }

  getaddrinfo(req: AddrInfoRequest, signal?: AbortSignal): Promise<AddrInfo[]> {
    let checked: AddrInfoRequest;
    try {
      checked = recheckAddrInfo(req);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.request(
      (options) => callGetaddrinfo(this.runner, checked, options),
      signal,
      takeHold(checked.host),
    );
  }

  getnameinfo(
    req: NameInfoRequest,
    signal?: AbortSignal,
  ): Promise<[string, string]> {
    let checked: NameInfoRequest;
    try {
      checked = recheckNameInfo(req);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.request(
      (options) => callGetnameinfo(this.runner, checked, options),
      signal,
    );
  }

  close(): void {
    if (this.closing.signal.aborted) return;
    this.closing.abort(
      new RuntimeError("resolver closed before the answer came"),
    );
    this.runner.close();
    for (const hold of this.held) hold.release();
    this.held.clear();
  }
}

/** The resolver: the same in both runtimes (see {@link RunnerResolver}). */
export function createResolver(): Resolver {
  return new RunnerResolver();
}
