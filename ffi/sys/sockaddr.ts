/**
 * `struct sockaddr` encoding for every OS with a table (see
 * `./posix/table.ts`), and the socket constants the public API exports.
 *
 * Layouts (every architecture; offsets in bytes):
 * ```c
 * // Linux <netinet/in.h>, <sys/un.h>: sa_family_t is a host-order u16.
 * struct sockaddr_in {          // 16 bytes
 *   sa_family_t sin_family;     // 0
 *   in_port_t   sin_port;       // 2, network order
 *   struct in_addr sin_addr;    // 4, 4 bytes, network order
 *   unsigned char sin_zero[8];  // 8
 * };
 * struct sockaddr_in6 {         // 28 bytes
 *   sa_family_t sin6_family;    // 0
 *   in_port_t   sin6_port;      // 2, network order
 *   uint32_t    sin6_flowinfo;  // 4, network order
 *   struct in6_addr sin6_addr;  // 8, 16 bytes
 *   uint32_t    sin6_scope_id;  // 24, host order
 * };
 * struct sockaddr_un {          // 110 bytes
 *   sa_family_t sun_family;     // 0
 *   char        sun_path[108];  // 2; abstract names start with NUL
 * };
 *
 * // macOS (xnu bsd/netinet/in.h, bsd/netinet6/in6.h, bsd/sys/un.h) and
 * // FreeBSD, OpenBSD, NetBSD (sys/netinet/in.h, sys/netinet6/in6.h,
 * // sys/sys/un.h): the same offsets, but the u16 family is split into a
 * // u8 length and a u8 family, and sun_path is 104 bytes.
 * struct sockaddr_in  { uint8_t sin_len;  sa_family_t sin_family;  ... };  // 16
 * struct sockaddr_in6 { uint8_t sin6_len; sa_family_t sin6_family; ... };  // 28
 * struct sockaddr_un  { uint8_t sun_len;  sa_family_t sun_family;
 *                       char sun_path[104]; };                             // 106
 *
 * struct sockaddr_storage;      // 128 bytes everywhere, room for any of them
 *
 * int inet_pton(int af, const char *src, void *dst);
 * const char *inet_ntop(int af, const void *src, char *dst, socklen_t size);
 * ```
 * The kernels of the BSD family take the length from the `socklen_t`
 * argument; we set `*_len` to the same value.
 *
 * @module
 */
import { libcPath } from "../libc.ts";
import { openLibrary, platform } from "../runtime.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  AF_UNSPEC,
  hostTable,
  type PlatformTable,
  POSIX_PLATFORMS,
} from "./platform.ts";

export {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  AF_UNSPEC,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_V6ONLY,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SO_BROADCAST,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  SOMAXCONN,
  TCP_NODELAY,
} from "./platform.ts";

/** Whether this build has sockets for the current OS. */
export const socketsAvailable: boolean = POSIX_PLATFORMS.includes(platform);

/** The size of `struct sockaddr_storage` (128 on every OS here). */
export const SOCKADDR_STORAGE_SIZE = 128;

/**
 * Byte layouts of the sockaddr structures: `len` is the offset of the u8
 * `*_len` field (-1 where there is none), `familySize` 2 (u16) or 1 (u8).
 */
export interface SockaddrLayout {
  /** `struct sockaddr_in`. */
  readonly in: {
    size: number;
    len: number;
    family: number;
    familySize: number;
    port: number;
    addr: number;
  };
  /** `struct sockaddr_in6`. */
  readonly in6: {
    size: number;
    len: number;
    family: number;
    familySize: number;
    port: number;
    flowinfo: number;
    addr: number;
    scopeId: number;
  };
  /** `struct sockaddr_un`. */
  readonly un: {
    size: number;
    len: number;
    family: number;
    familySize: number;
    path: number;
    pathSize: number;
  };
}

/** The sockaddr layouts of `table`'s OS. */
export function sockaddrLayout(table: PlatformTable): SockaddrLayout {
  const bsd = table.sockaddr.sinLen;
  const head = bsd
    ? { len: 0, family: 1, familySize: 1 }
    : { len: -1, family: 0, familySize: 2 };
  const pathSize = table.sockaddr.sunPathSize;
  return {
    in: { size: 16, ...head, port: 2, addr: 4 },
    in6: { size: 28, ...head, port: 2, flowinfo: 4, addr: 8, scopeId: 24 },
    un: { size: 2 + pathSize, ...head, path: 2, pathSize },
  };
}

/** This OS's sockaddr layouts (checked against C by tests). */
export const SOCKADDR_LAYOUT: SockaddrLayout = sockaddrLayout(hostTable);

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

function badAddress(
  familyName: string,
  inet6: boolean,
  unix: boolean,
  address: unknown,
): TypeError {
  const what = unix
    ? "a path string"
    : inet6
    ? "[host, port] or [host, port, flowinfo, scopeId]"
    : "[host, port]";
  let shown: string;
  try {
    shown = JSON.stringify(address) ?? String(address);
  } catch {
    shown = String(address);
  }
  return new TypeError(`${familyName} address must be ${what}, got ${shown}`);
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

/** Encodes and decodes the sockaddrs of one OS. */
export interface SockaddrCodec {
  /**
   * Encodes `address` for `family` (that OS's AF_* number). The host must
   * be numeric (resolve names with getaddrinfo first); "" means any
   * address. TypeError/RangeError for malformed addresses.
   */
  encode(family: number, address: Address): Sockaddr;
  /** Decodes `length` bytes of a sockaddr the kernel filled in. */
  decode(bytes: Uint8Array, length: number): Address;
}

/**
 * The sockaddr encoding of `table`'s OS. IP text is parsed by this
 * machine's inet_pton, so a table of another OS can be exercised here
 * (tests encode the BSD layout on Linux).
 */
export function sockaddrCodec(table: PlatformTable): SockaddrCodec {
  const L = sockaddrLayout(table);
  const af = table.constants;
  const abstractNames = table.sockaddr.abstractNames;
  // What this machine's inet_pton/inet_ntop call the same families.
  const local = (family: number) => family === af.AF_INET ? AF_INET : AF_INET6;
  const name = (family: number) =>
    family === af.AF_INET
      ? "AF_INET"
      : family === af.AF_INET6
      ? "AF_INET6"
      : family === af.AF_UNIX
      ? "AF_UNIX"
      : `family ${family}`;

  function writeHead(
    view: DataView,
    layout: { len: number; familySize: number; family: number },
    family: number,
    length: number,
  ): void {
    if (layout.len >= 0) view.setUint8(layout.len, length);
    if (layout.familySize === 1) view.setUint8(layout.family, family);
    else view.setUint16(layout.family, family, true);
  }

  function encode(family: number, address: Address): Sockaddr {
    if (family === af.AF_UNIX) {
      if (typeof address !== "string") {
        throw badAddress(name(family), family === af.AF_INET6, true, address);
      }
      const path = encoder.encode(address);
      const abstract = path.length > 0 && path[0] === 0;
      if (abstract && !abstractNames) {
        throw new RangeError(
          `abstract AF_UNIX names (a leading NUL) are Linux-only, not on ${table.os}`,
        );
      }
      const max = L.un.pathSize - (abstract ? 0 : 1);
      if (path.length > max) {
        throw new RangeError(
          `AF_UNIX path too long (${path.length} bytes, at most ${max})`,
        );
      }
      const bytes = new Uint8Array(L.un.size);
      bytes.set(path, L.un.path);
      // A path is NUL-terminated; an abstract name is exactly its bytes.
      const length = L.un.path + path.length +
        (abstract || path.length === 0 ? 0 : 1);
      writeHead(new DataView(bytes.buffer), L.un, family, length);
      return { bytes, length };
    }
    if (
      !Array.isArray(address) || typeof address[0] !== "string" ||
      (family === af.AF_INET && address.length !== 2) ||
      (family === af.AF_INET6 && address.length !== 2 && address.length !== 4)
    ) {
      throw badAddress(name(family), family === af.AF_INET6, false, address);
    }
    const [host, rawPort] = address;
    const port = checkPort(rawPort);
    if (family === af.AF_INET) {
      const ip = host === "" ? new Uint8Array(4) : parseIp(AF_INET, host);
      if (!ip) throw new TypeError(`'${host}' is not an IPv4 address`);
      const bytes = new Uint8Array(L.in.size);
      const view = new DataView(bytes.buffer);
      writeHead(view, L.in, family, L.in.size);
      view.setUint16(L.in.port, port, false);
      bytes.set(ip, L.in.addr);
      return { bytes, length: L.in.size };
    }
    if (family === af.AF_INET6) {
      const [, , flowinfo = 0, scopeId = 0] = address as Inet6Address;
      const ip = host === "" ? new Uint8Array(16) : parseIp(AF_INET6, host);
      if (!ip) throw new TypeError(`'${host}' is not an IPv6 address`);
      const layout = L.in6;
      const bytes = new Uint8Array(layout.size);
      const view = new DataView(bytes.buffer);
      writeHead(view, layout, family, layout.size);
      view.setUint16(layout.port, port, false);
      view.setUint32(layout.flowinfo, flowinfo >>> 0, false);
      bytes.set(ip, layout.addr);
      view.setUint32(layout.scopeId, scopeId >>> 0, true);
      return { bytes, length: layout.size };
    }
    throw new RangeError(`unsupported address family ${family}`);
  }

  function decode(bytes: Uint8Array, length: number): Address {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const family = length < L.in.family + L.in.familySize
      ? af.AF_UNSPEC
      : L.in.familySize === 1
      ? view.getUint8(L.in.family)
      : view.getUint16(L.in.family, true);
    if (family === af.AF_INET) {
      const at = L.in.addr;
      return [
        formatIp(local(family), bytes.subarray(at, at + 4)),
        view.getUint16(L.in.port, false),
      ];
    }
    if (family === af.AF_INET6) {
      const layout = L.in6;
      return [
        formatIp(local(family), bytes.subarray(layout.addr, layout.addr + 16)),
        view.getUint16(layout.port, false),
        view.getUint32(layout.flowinfo, false),
        view.getUint32(layout.scopeId, true),
      ];
    }
    if (family === af.AF_UNIX || family === af.AF_UNSPEC) {
      // An unnamed socket has only the family (or nothing at all).
      let path = bytes.subarray(L.un.path, Math.max(L.un.path, length));
      if (path.length > 0 && path[0] !== 0) {
        const end = path.indexOf(0);
        if (end >= 0) path = path.subarray(0, end);
      }
      return decoder.decode(path);
    }
    throw new RangeError(`unsupported address family ${family}`);
  }

  return { encode, decode };
}

const hostCodec = sockaddrCodec(hostTable);

/**
 * Encodes `address` for `family`. The host must be numeric (resolve names
 * with getaddrinfo first); "" means any address. TypeError/RangeError for
 * malformed addresses.
 */
export function encodeSockaddr(family: number, address: Address): Sockaddr {
  return hostCodec.encode(family, address);
}

/** Decodes `length` bytes of a sockaddr the kernel filled in. */
export function decodeSockaddr(bytes: Uint8Array, length: number): Address {
  return hostCodec.decode(bytes, length);
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
