/**
 * Socket constants and `struct sockaddr` encoding for Linux.
 *
 * Layouts (Linux, every architecture; `sa_family_t` is a host-order u16):
 * ```c
 * struct sockaddr_in {          // 16 bytes
 *   sa_family_t sin_family;     // offset 0
 *   in_port_t   sin_port;       // offset 2, network order
 *   struct in_addr sin_addr;    // offset 4, 4 bytes, network order
 *   unsigned char sin_zero[8];  // offset 8
 * };
 * struct sockaddr_in6 {         // 28 bytes
 *   sa_family_t sin6_family;    // offset 0
 *   in_port_t   sin6_port;      // offset 2, network order
 *   uint32_t    sin6_flowinfo;  // offset 4, network order
 *   struct in6_addr sin6_addr;  // offset 8, 16 bytes
 *   uint32_t    sin6_scope_id;  // offset 24, host order
 * };
 * struct sockaddr_un {          // 110 bytes
 *   sa_family_t sun_family;     // offset 0
 *   char        sun_path[108];  // offset 2; abstract names start with NUL
 * };
 * struct sockaddr_storage;      // 128 bytes, room for any of them
 *
 * int inet_pton(int af, const char *src, void *dst);
 * const char *inet_ntop(int af, const void *src, char *dst, socklen_t size);
 * ```
 *
 * @module
 */
import { libcPath } from "../libc.ts";
import { openLibrary, platform } from "../runtime.ts";

/** Whether this build has sockets for the current OS. */
export const socketsAvailable: boolean = platform === "linux";

/** Address families. */
export const AF_UNSPEC = 0;
/** Unix-domain sockets. */
export const AF_UNIX = 1;
/** IPv4. */
export const AF_INET = 2;
/** IPv6. */
export const AF_INET6 = 10;
/** Stream sockets (TCP, Unix streams). */
export const SOCK_STREAM = 1;
/** Datagram sockets (UDP, Unix datagrams). */
export const SOCK_DGRAM = 2;
/** socket(2) type flag: non-blocking. */
export const SOCK_NONBLOCK = 0o4000;
/** socket(2) type flag: close-on-exec. */
export const SOCK_CLOEXEC = 0o2000000;
/** Socket-level options. */
export const SOL_SOCKET = 1;
/** Allow reuse of a local address in TIME_WAIT. */
export const SO_REUSEADDR = 2;
/** The pending socket error (read and cleared). */
export const SO_ERROR = 4;
/** Allow sending broadcast datagrams. */
export const SO_BROADCAST = 6;
/** Send buffer size. */
export const SO_SNDBUF = 7;
/** Receive buffer size. */
export const SO_RCVBUF = 8;
/** TCP keep-alive probes. */
export const SO_KEEPALIVE = 9;
/** Several sockets may bind the same address and port. */
export const SO_REUSEPORT = 15;
/** TCP. */
export const IPPROTO_TCP = 6;
/** UDP. */
export const IPPROTO_UDP = 17;
/** IPv6-level options. */
export const IPPROTO_IPV6 = 41;
/** Disable Nagle's algorithm. */
export const TCP_NODELAY = 1;
/** An AF_INET6 socket accepts IPv6 only. */
export const IPV6_V6ONLY = 26;
/** shutdown(2): no more receptions. */
export const SHUT_RD = 0;
/** shutdown(2): no more transmissions (sends FIN). */
export const SHUT_WR = 1;
/** shutdown(2): both. */
export const SHUT_RDWR = 2;
/** The kernel's listen backlog ceiling (net.core.somaxconn default). */
export const SOMAXCONN = 4096;
/** send(2) flag: no SIGPIPE on a broken connection (EPIPE instead). */
export const MSG_NOSIGNAL = 0x4000;

/** The size of `struct sockaddr_storage`. */
export const SOCKADDR_STORAGE_SIZE = 128;

/** Byte layouts of the sockaddr structures (checked against C by tests). */
export const SOCKADDR_LAYOUT: {
  readonly in: {
    size: number;
    family: number;
    port: number;
    addr: number;
  };
  readonly in6: {
    size: number;
    family: number;
    port: number;
    flowinfo: number;
    addr: number;
    scopeId: number;
  };
  readonly un: { size: number; family: number; path: number };
} = {
  in: { size: 16, family: 0, port: 2, addr: 4 },
  in6: { size: 28, family: 0, port: 2, flowinfo: 4, addr: 8, scopeId: 24 },
  un: { size: 110, family: 0, path: 2 },
};

/** An IPv4 address: `[host, port]`. */
export type InetAddress = readonly [host: string, port: number];
/** An IPv6 address: `[host, port, flowinfo, scopeId]`. */
export type Inet6Address = readonly [
  host: string,
  port: number,
  flowinfo: number,
  scopeId: number,
];
/**
 * A socket address as asyncio spells it: `[host, port]` (IPv4),
 * `[host, port, flowinfo, scopeId]` (IPv6), or a path (Unix; a name in the
 * abstract namespace starts with "\0").
 */
export type Address = InetAddress | Inet6Address | string;

let inet:
  | {
    inet_pton(af: number, src: Uint8Array, dst: Uint8Array): number;
    inet_ntop(
      af: number,
      src: Uint8Array,
      dst: Uint8Array,
      size: number,
    ): unknown;
  }
  | undefined;

function inetLib(): NonNullable<typeof inet> {
  inet ??= openLibrary(libcPath, {
    inet_pton: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
    inet_ntop: {
      parameters: ["i32", "buffer", "buffer", "u32"],
      result: "pointer",
    },
  }).symbols as unknown as NonNullable<typeof inet>;
  return inet;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function cString(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length * 3 + 1);
  const { written } = encoder.encodeInto(text, bytes);
  return bytes.subarray(0, written + 1);
}

/** The 4 or 16 bytes of a numeric IP address, or null if `host` is not one. */
export function parseIp(family: number, host: string): Uint8Array | null {
  if (host.includes("\0")) return null;
  const out = new Uint8Array(16);
  return inetLib().inet_pton(family, cString(host), out) === 1
    ? out.subarray(0, family === AF_INET ? 4 : 16)
    : null;
}

/** The text form of 4 (IPv4) or 16 (IPv6) address bytes. */
export function formatIp(family: number, bytes: Uint8Array): string {
  const out = new Uint8Array(64);
  inetLib().inet_ntop(family, bytes, out, out.length);
  const end = out.indexOf(0);
  return decoder.decode(out.subarray(0, end < 0 ? out.length : end));
}

/**
 * The address family of a numeric IP host (AF_INET, AF_INET6), or
 * AF_UNSPEC when `host` is a name.
 */
export function ipFamily(host: string): number {
  if (parseIp(AF_INET, host)) return AF_INET;
  if (parseIp(AF_INET6, host)) return AF_INET6;
  return AF_UNSPEC;
}

/** An encoded sockaddr: the bytes to pass and their length. */
export interface Sockaddr {
  /** The structure's bytes (at least `length`). */
  readonly bytes: Uint8Array;
  /** The socklen_t to pass with it. */
  readonly length: number;
}

function badAddress(family: number, address: unknown): TypeError {
  const what = family === AF_UNIX
    ? "a path string"
    : family === AF_INET6
    ? "[host, port] or [host, port, flowinfo, scopeId]"
    : "[host, port]";
  let shown: string;
  try {
    shown = JSON.stringify(address) ?? String(address);
  } catch {
    shown = String(address);
  }
  return new TypeError(
    `${familyName(family)} address must be ${what}, got ${shown}`,
  );
}

/** "AF_INET", "AF_INET6", "AF_UNIX" or the number. */
export function familyName(family: number): string {
  return family === AF_INET
    ? "AF_INET"
    : family === AF_INET6
    ? "AF_INET6"
    : family === AF_UNIX
    ? "AF_UNIX"
    : `family ${family}`;
}

function checkPort(port: unknown): number {
  if (
    typeof port !== "number" || !Number.isInteger(port) || port < 0 ||
    port > 65535
  ) {
    throw new RangeError(`port must be an integer in 0-65535, got ${port}`);
  }
  return port;
}

/**
 * Encodes `address` for `family`. The host must be numeric (resolve names
 * with getaddrinfo first); "" means any address. TypeError/RangeError for
 * malformed addresses.
 */
export function encodeSockaddr(family: number, address: Address): Sockaddr {
  if (family === AF_UNIX) {
    if (typeof address !== "string") throw badAddress(family, address);
    const path = encoder.encode(address);
    const abstract = path.length > 0 && path[0] === 0;
    const max = 108 - (abstract ? 0 : 1);
    if (path.length > max) {
      throw new RangeError(
        `AF_UNIX path too long (${path.length} bytes, at most ${max})`,
      );
    }
    const bytes = new Uint8Array(SOCKADDR_LAYOUT.un.size);
    new DataView(bytes.buffer).setUint16(0, AF_UNIX, true);
    bytes.set(path, SOCKADDR_LAYOUT.un.path);
    // A path is NUL-terminated; an abstract name is exactly its bytes.
    const length = 2 + path.length + (abstract || path.length === 0 ? 0 : 1);
    return { bytes, length };
  }
  if (
    !Array.isArray(address) || typeof address[0] !== "string" ||
    (family === AF_INET && address.length !== 2) ||
    (family === AF_INET6 && address.length !== 2 && address.length !== 4)
  ) {
    throw badAddress(family, address);
  }
  const [host, rawPort] = address;
  const port = checkPort(rawPort);
  if (family === AF_INET) {
    const ip = host === "" ? new Uint8Array(4) : parseIp(AF_INET, host);
    if (!ip) throw new TypeError(`'${host}' is not an IPv4 address`);
    const bytes = new Uint8Array(SOCKADDR_LAYOUT.in.size);
    const view = new DataView(bytes.buffer);
    view.setUint16(0, AF_INET, true);
    view.setUint16(SOCKADDR_LAYOUT.in.port, port, false);
    bytes.set(ip, SOCKADDR_LAYOUT.in.addr);
    return { bytes, length: SOCKADDR_LAYOUT.in.size };
  }
  if (family === AF_INET6) {
    const [, , flowinfo = 0, scopeId = 0] = address as Inet6Address;
    const ip = host === "" ? new Uint8Array(16) : parseIp(AF_INET6, host);
    if (!ip) throw new TypeError(`'${host}' is not an IPv6 address`);
    const layout = SOCKADDR_LAYOUT.in6;
    const bytes = new Uint8Array(layout.size);
    const view = new DataView(bytes.buffer);
    view.setUint16(0, AF_INET6, true);
    view.setUint16(layout.port, port, false);
    view.setUint32(layout.flowinfo, flowinfo >>> 0, false);
    bytes.set(ip, layout.addr);
    view.setUint32(layout.scopeId, scopeId >>> 0, true);
    return { bytes, length: layout.size };
  }
  throw new RangeError(`unsupported address family ${family}`);
}

/** Decodes `length` bytes of a sockaddr the kernel filled in. */
export function decodeSockaddr(bytes: Uint8Array, length: number): Address {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const family = length >= 2 ? view.getUint16(0, true) : AF_UNSPEC;
  if (family === AF_INET) {
    const at = SOCKADDR_LAYOUT.in.addr;
    return [
      formatIp(AF_INET, bytes.subarray(at, at + 4)),
      view.getUint16(SOCKADDR_LAYOUT.in.port, false),
    ];
  }
  if (family === AF_INET6) {
    const layout = SOCKADDR_LAYOUT.in6;
    return [
      formatIp(AF_INET6, bytes.subarray(layout.addr, layout.addr + 16)),
      view.getUint16(layout.port, false),
      view.getUint32(layout.flowinfo, false),
      view.getUint32(layout.scopeId, true),
    ];
  }
  if (family === AF_UNIX || family === AF_UNSPEC) {
    // An unnamed socket has only the family (or nothing at all).
    let path = bytes.subarray(SOCKADDR_LAYOUT.un.path, Math.max(2, length));
    if (path.length > 0 && path[0] !== 0) {
      const end = path.indexOf(0);
      if (end >= 0) path = path.subarray(0, end);
    }
    return decoder.decode(path);
  }
  throw new RangeError(`unsupported address family ${family}`);
}

/** "host:port", "[host]:port" or the path, for messages. */
export function formatAddress(address: Address | undefined | null): string {
  if (address === undefined || address === null) return "";
  if (typeof address === "string") {
    return address.startsWith("\0")
      ? `@${address.slice(1)}`
      : address || "<unnamed>";
  }
  const [host, port] = address;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
