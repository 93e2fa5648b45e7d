/**
 * Connections and servers on top of the socket operations (asyncio's
 * `create_connection`, `create_server`, `create_unix_*`,
 * `create_datagram_endpoint` and `sendfile` from `base_events.py` /
 * `unix_events.py`). They use only the loop's public socket ops,
 * getaddrinfo and transport factory.
 *
 * @module
 */
import { lstatSync, unlinkSync } from "node:fs";
import { Socket } from "../ffi/socket.ts";
import { type AddrInfo, AI_PASSIVE } from "../ffi/dns.ts";
import {
  type Address,
  AF_INET,
  AF_INET6,
  AF_UNIX,
  formatAddress,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  SO_BROADCAST,
  SO_KEEPALIVE,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../ffi/sys/sockaddr.ts";
import { OSError, RuntimeError } from "./exceptions.ts";
import type { TimerHandle } from "./events.ts";
import type { Future } from "./futures.ts";
import type { BaseProtocol, DatagramProtocol, Protocol } from "./protocols.ts";
import {
  SocketDatagramTransport,
  SocketTransport,
  type TransportLoop,
  type TransportServer,
} from "./selector_transports.ts";
import { Server, type ServerLoop } from "./server.ts";
import type { SockOpsLoop } from "./sock_ops.ts";
import type { DatagramTransport, Transport } from "./transports.ts";

/** The loop these functions run on. */
export interface NetLoop extends SockOpsLoop, TransportLoop, ServerLoop {
  getaddrinfo(
    host: string | null,
    port: string | number | null,
    options?: GetaddrinfoOptions,
  ): Promise<AddrInfo[]>;
  sockConnect(sock: Socket, address: Address): Promise<void>;
  sockSendall(sock: Socket, data: Uint8Array): Promise<void>;
}

/** getaddrinfo()'s filters. */
export interface GetaddrinfoOptions {
  /** AF_INET, AF_INET6, AF_UNIX or 0 (any). */
  family?: number;
  /** SOCK_STREAM, SOCK_DGRAM or 0 (any). */
  type?: number;
  /** Protocol number or 0. */
  proto?: number;
  /** AI_* flags. */
  flags?: number;
}

/** Options of createConnection(). */
export interface CreateConnectionOptions extends GetaddrinfoOptions {
  /** An existing connected (or to-be-used) stream socket, instead of host/port. */
  sock?: Socket;
  /** Bind to this local address first. */
  localAddr?: Address;
  /**
   * Happy Eyeballs (RFC 8305): ms to wait for an attempt before starting
   * the next in parallel. Undefined: one attempt at a time.
   */
  happyEyeballsDelay?: number;
  /** Reorder addresses to alternate families, starting with this many of the first. */
  interleave?: number;
}

/** Options of createServer(). */
export interface CreateServerOptions {
  /** AF_INET, AF_INET6 or 0 (both). */
  family?: number;
  /** AI_* flags (AI_PASSIVE is always added). */
  flags?: number;
  /** A socket to serve on instead of host/port (bound already). */
  sock?: Socket;
  /** listen() backlog; default 100. */
  backlog?: number;
  /** SO_REUSEADDR; default true. */
  reuseAddress?: boolean;
  /** SO_REUSEPORT. */
  reusePort?: boolean;
  /** SO_KEEPALIVE on accepted connections. */
  keepAlive?: boolean;
  /** Accept at once (default true); else call startServing() later. */
  startServing?: boolean;
}

/** Options of createUnixServer(). */
export interface CreateUnixServerOptions {
  /** A bound AF_UNIX socket instead of a path. */
  sock?: Socket;
  /** listen() backlog; default 100. */
  backlog?: number;
  /** Accept at once (default true). */
  startServing?: boolean;
  /** Remove the socket file when the server closes (default true). */
  cleanupSocket?: boolean;
}

/** Options of createDatagramEndpoint(). */
export interface DatagramEndpointOptions extends GetaddrinfoOptions {
  /** Bind to this address. */
  localAddr?: Address;
  /** Connect to this address (sendto() then needs no address). */
  remoteAddr?: Address;
  /** SO_REUSEPORT. */
  reusePort?: boolean;
  /** SO_BROADCAST. */
  allowBroadcast?: boolean;
  /** An existing datagram socket instead of addresses. */
  sock?: Socket;
}

/**
 * A socket made (or taken) by a call in progress: until a transport or a
 * server's close() takes it over, `loop.close()` closes it, so a connect
 * still in flight when the loop closes leaks nothing.
 */
function ownSocket(loop: NetLoop, sock: Socket): Socket {
  loop._openSockets.add(sock);
  return sock;
}

/** Closes a socket of a failed call and forgets it. */
function dropSocket(loop: NetLoop, sock: Socket): void {
  loop._openSockets.delete(sock);
  sock.close();
}

/**
 * Calls a protocol factory and checks that it made a protocol of the kind
 * (TypeError naming what is missing, instead of a failure deep inside the
 * transport later).
 */
export function makeProtocol<P>(
  factory: () => P,
  kind: "stream" | "datagram",
): P {
  const protocol = factory();
  const methods = kind === "stream"
    ? ["connectionMade", "connectionLost"]
    : ["connectionMade", "connectionLost", "datagramReceived", "errorReceived"];
  const p = protocol as Record<string, unknown> | null;
  const missing = p === null || typeof p !== "object"
    ? methods
    : methods.filter((m) => typeof p[m] !== "function");
  if (
    missing.length === 0 && kind === "stream" &&
    typeof p!.dataReceived !== "function" && typeof p!.getBuffer !== "function"
  ) {
    missing.push("dataReceived");
  }
  if (missing.length > 0) {
    throw new TypeError(
      `protocolFactory() must return a ${
        kind === "stream" ? "Protocol or BufferedProtocol" : "DatagramProtocol"
      }, got ${String(protocol)} (missing ${missing.join(", ")})`,
    );
  }
  return protocol;
}

function checkFactory(factory: unknown, method: string): void {
  if (typeof factory !== "function") {
    throw new TypeError(
      `${method}() expects a protocol factory function, got ${String(factory)}`,
    );
  }
}

function checkSockType(sock: Socket, type: number, method: string): void {
  if (sock.type !== type) {
    throw new RangeError(
      `${method}(): a ${
        type === SOCK_STREAM ? "stream" : "datagram"
      } socket was expected, got ${sock}`,
    );
  }
}

/** Reorders addrinfos to alternate families (RFC 8305 section 4). */
export function interleaveAddrinfos(
  infos: AddrInfo[],
  firstFamilyCount = 1,
): AddrInfo[] {
  const byFamily = new Map<number, AddrInfo[]>();
  for (const info of infos) {
    const list = byFamily.get(info[0]) ?? [];
    list.push(info);
    byFamily.set(info[0], list);
  }
  const lists = [...byFamily.values()];
  const out: AddrInfo[] = [];
  if (lists.length === 0) return out;
  out.push(...lists[0].splice(0, Math.max(0, firstFamilyCount - 1)));
  for (let i = 0; lists.some((list) => list.length > 0); i++) {
    for (const list of lists) {
      const next = list.shift();
      if (next) out.push(next);
    }
  }
  return out;
}

/** Resolves host/port for connecting; OSError when nothing comes back. */
async function resolveOrFail(
  loop: NetLoop,
  host: string | null,
  port: string | number | null,
  options: GetaddrinfoOptions,
): Promise<AddrInfo[]> {
  const infos = await loop.getaddrinfo(host, port, options);
  if (infos.length === 0) {
    throw new OSError(
      0,
      "ENOADDR",
      "getaddrinfo() returned an empty list",
      "getaddrinfo",
      `${host}:${port}`,
    );
  }
  return infos;
}

/** Makes one socket and connects it; closes it on failure. */
async function connectOne(
  loop: NetLoop,
  info: AddrInfo,
  localInfos: AddrInfo[] | null,
): Promise<Socket> {
  const [family, type, proto, , address] = info;
  const sock = ownSocket(loop, new Socket(family, type, proto));
  try {
    if (localInfos !== null) {
      let bound = false;
      let lastError: unknown = null;
      for (const local of localInfos) {
        if (local[0] !== family) continue;
        try {
          sock.bind(local[4]);
          bound = true;
          break;
        } catch (error) {
          lastError = error;
        }
      }
      if (!bound) {
        if (lastError) throw lastError;
        throw new OSError(
          22,
          "EINVAL",
          "no matching local address",
          "bind",
          `with family ${family} for ${formatAddress(address)}`,
        );
      }
    }
    await loop.sockConnect(sock, address);
    return sock;
  } catch (error) {
    dropSocket(loop, sock);
    throw error;
  }
}

/**
 * Starts `attempts` one after another, each `delay` ms after the previous
 * one started or at once when it failed; the first success wins and the
 * others are cancelled (and their sockets closed).
 */
async function staggeredRace(
  loop: NetLoop,
  attempts: (() => Promise<Socket>)[],
  delay: number,
): Promise<{ sock: Socket | null; errors: unknown[] }> {
  const errors: unknown[] = new Array(attempts.length).fill(null);
  const running = new Map<number, Future<Socket>>();
  let winner: Socket | null = null;
  let next = 0;
  let wake: (() => void) | null = null;
  const poke = () => {
    const fn = wake;
    wake = null;
    fn?.();
  };
  const start = () => {
    const index = next++;
    const task = loop.createTask(attempts[index]) as unknown as Future<
      Socket
    >;
    running.set(index, task);
    task.addDoneCallback(() => {
      running.delete(index);
      if (task.cancelled()) return;
      const error = task.exception();
      if (error) errors[index] = error;
      else if (winner === null) winner = task.result();
      else dropSocket(loop, task.result());
      poke();
    });
  };
  let timer: TimerHandle | null = null;
  try {
    while (winner === null && (next < attempts.length || running.size > 0)) {
      if (next < attempts.length) start();
      // A loop Future, so that cancelling the caller's task lands here.
      const woken = loop.createFuture<void>();
      wake = () => {
        if (!woken.done()) woken.setResult(undefined);
      };
      timer = next < attempts.length ? loop.callLater(delay, poke) : null;
      await woken;
      timer?.cancel();
    }
  } catch (error) {
    // Cancelled: a socket that won meanwhile is nobody's.
    if (winner !== null) dropSocket(loop, winner);
    throw error;
  } finally {
    timer?.cancel();
    for (const task of running.values()) task.cancel();
  }
  return { sock: winner, errors: errors.filter((e) => e !== null) };
}

/** The error for failed attempts: the one error, or all of them. */
function connectFailure(errors: unknown[]): unknown {
  if (errors.length === 1) return errors[0];
  const codes = new Set(errors.map((e) => (e as OSError)?.code));
  if (codes.size === 1) return errors[0];
  const first = errors[0] as OSError;
  const error = new OSError(
    first.errno ?? 0,
    first.code ?? "EMULTIPLE",
    "Multiple exceptions",
    first.syscall ?? "connect",
    errors.map(String).join("; "),
  );
  (error as OSError & { errors: unknown[] }).errors = errors;
  return error;
}

/** Wraps a connected stream socket in a transport; resolves once made. */
export async function createConnectionTransport<P extends BaseProtocol>(
  loop: NetLoop,
  sock: Socket,
  protocolFactory: () => P,
  server: TransportServer | null = null,
): Promise<[Transport, P]> {
  const protocol = makeProtocol(protocolFactory, "stream");
  const waiter = loop.createFuture<void>();
  const transport = new SocketTransport(
    loop,
    sock,
    protocol as unknown as Protocol,
    waiter,
    undefined,
    server,
  );
  try {
    await waiter;
  } catch (error) {
    transport.close();
    throw error;
  }
  return [transport, protocol];
}

/** loop.createConnection(). */
export async function createConnection<P extends BaseProtocol>(
  loop: NetLoop,
  protocolFactory: () => P,
  host: string | null | undefined,
  port: string | number | null | undefined,
  options: CreateConnectionOptions = {},
): Promise<[Transport, P]> {
  checkFactory(protocolFactory, "createConnection");
  const hasHost = host !== undefined && host !== null;
  const hasPort = port !== undefined && port !== null;
  let sock: Socket;
  if (hasHost || hasPort) {
    if (options.sock !== undefined) {
      throw new RangeError(
        "host/port and sock can not be specified at the same time",
      );
    }
    const hints = {
      family: options.family ?? 0,
      type: SOCK_STREAM,
      proto: options.proto ?? 0,
      flags: options.flags ?? 0,
    };
    let infos = await resolveOrFail(loop, host ?? null, port ?? null, hints);
    let localInfos: AddrInfo[] | null = null;
    if (options.localAddr !== undefined) {
      const [lhost, lport] = options.localAddr as readonly [string, number];
      localInfos = await resolveOrFail(loop, lhost, lport, hints);
    }
    let interleave = options.interleave;
    if (options.happyEyeballsDelay !== undefined && interleave === undefined) {
      interleave = 1;
    }
    if (interleave) infos = interleaveAddrinfos(infos, interleave);
    const attempts = infos.map((info) => () =>
      connectOne(loop, info, localInfos)
    );
    let connected: Socket | null = null;
    let errors: unknown[] = [];
    if (options.happyEyeballsDelay === undefined || infos.length === 1) {
      for (const attempt of attempts) {
        try {
          connected = await attempt();
          break;
        } catch (error) {
          errors.push(error);
        }
      }
    } else {
      ({ sock: connected, errors } = await staggeredRace(
        loop,
        attempts,
        options.happyEyeballsDelay,
      ));
    }
    if (connected === null) throw connectFailure(errors);
    sock = connected;
  } else {
    if (options.sock === undefined) {
      throw new RangeError(
        "Neither host/port nor sock were specified",
      );
    }
    sock = options.sock;
    checkSockType(sock, SOCK_STREAM, "createConnection");
  }
  try {
    return await createConnectionTransport(loop, sock, protocolFactory);
  } catch (error) {
    dropSocket(loop, sock);
    throw error;
  }
}

/** Binds one listening socket per resolved address; closes all on failure. */
async function bindServerSockets(
  loop: NetLoop,
  host: string | string[] | null | undefined,
  port: number | string | null | undefined,
  options: CreateServerOptions,
): Promise<Socket[]> {
  const hosts = host === undefined || host === null || host === ""
    ? [null]
    : typeof host === "string"
    ? [host]
    : [...host];
  const hints = {
    family: options.family ?? 0,
    type: SOCK_STREAM,
    proto: 0,
    flags: (options.flags ?? 0) | AI_PASSIVE,
  };
  const all = await Promise.all(
    hosts.map((h) => resolveOrFail(loop, h, port ?? null, hints)),
  );
  const seen = new Set<string>();
  const sockets: Socket[] = [];
  try {
    for (const infos of all) {
      for (const [family, type, proto, , address] of infos) {
        const key = `${family}/${formatAddress(address)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        let sock: Socket;
        try {
          sock = ownSocket(loop, new Socket(family, type, proto));
        } catch (error) {
          // This host has no such family (IPv6 disabled): skip it.
          if (error instanceof OSError && error.code === "EAFNOSUPPORT") {
            continue;
          }
          throw error;
        }
        sockets.push(sock);
        if (options.reuseAddress ?? true) {
          sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
        }
        if (options.reusePort) sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
        if (options.keepAlive) sock.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1);
        // Dual-stack hosts get separate IPv4 and IPv6 sockets.
        if (family === AF_INET6) sock.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1);
        try {
          sock.bind(address);
        } catch (error) {
          if (!(error instanceof OSError)) throw error;
          const ErrorClass = error.constructor as typeof OSError;
          throw new ErrorClass(
            error.errno,
            error.code,
            "error while attempting to bind on address",
            "bind",
            `${formatAddress(address)}: ${
              error.message.replace(/^\[Errno \d+\] /, "")
            }`,
          );
        }
      }
    }
    if (sockets.length === 0) {
      throw new OSError(
        0,
        "ENOADDR",
        "no address to bind",
        "bind",
        String(host),
      );
    }
    return sockets;
  } catch (error) {
    for (const sock of sockets) dropSocket(loop, sock);
    throw error;
  }
}

/** loop.createServer(). */
export async function createServer(
  loop: NetLoop,
  protocolFactory: () => BaseProtocol,
  host: string | string[] | null | undefined,
  port: number | string | null | undefined,
  options: CreateServerOptions = {},
): Promise<Server> {
  checkFactory(protocolFactory, "createServer");
  checkServerHost(host);
  const backlog = checkBacklog(options.backlog);
  let sockets: Socket[];
  if (
    (host !== undefined && host !== null) ||
    (port !== undefined && port !== null)
  ) {
    if (options.sock !== undefined) {
      throw new RangeError(
        "host/port and sock can not be specified at the same time",
      );
    }
    sockets = await bindServerSockets(loop, host, port, options);
  } else {
    if (options.sock === undefined) {
      throw new RangeError("Neither host/port nor sock were specified");
    }
    checkSockType(options.sock, SOCK_STREAM, "createServer");
    sockets = [ownSocket(loop, options.sock)];
  }
  const server = new Server(loop, sockets, protocolFactory, backlog);
  if (options.startServing ?? true) {
    try {
      await server.startServing();
    } catch (error) {
      server.close();
      throw error;
    }
  }
  return server;
}

/** createServer()'s host: a string, a list of strings, null or undefined. */
function checkServerHost(host: unknown): void {
  if (host === undefined || host === null || typeof host === "string") return;
  if (Array.isArray(host) && host.every((h) => typeof h === "string")) return;
  throw new TypeError(
    `host must be a string, a list of strings or null, got ${
      Array.isArray(host) ? "a list with a non-string" : typeof host
    }`,
  );
}

function checkBacklog(backlog: number | undefined): number {
  const value = backlog ?? 100;
  if (!Number.isInteger(value)) {
    throw new TypeError(`backlog must be an integer, got ${backlog}`);
  }
  return value;
}

/** loop.createUnixConnection(). */
export async function createUnixConnection<P extends BaseProtocol>(
  loop: NetLoop,
  protocolFactory: () => P,
  path: string | null | undefined,
  options: { sock?: Socket } = {},
): Promise<[Transport, P]> {
  checkFactory(protocolFactory, "createUnixConnection");
  let sock: Socket;
  if (path !== undefined && path !== null) {
    if (options.sock !== undefined) {
      throw new RangeError(
        "path and sock can not be specified at the same time",
      );
    }
    if (typeof path !== "string") {
      throw new TypeError(`path must be a string, got ${String(path)}`);
    }
    sock = ownSocket(loop, new Socket(AF_UNIX, SOCK_STREAM));
    try {
      await loop.sockConnect(sock, path);
    } catch (error) {
      dropSocket(loop, sock);
      throw error;
    }
  } else {
    if (options.sock === undefined) {
      throw new RangeError("no path and sock were specified");
    }
    sock = options.sock;
    if (sock.family !== AF_UNIX) {
      throw new RangeError(
        `A UNIX Domain Stream Socket was expected, got ${sock}`,
      );
    }
    checkSockType(sock, SOCK_STREAM, "createUnixConnection");
  }
  try {
    return await createConnectionTransport(loop, sock, protocolFactory);
  } catch (error) {
    dropSocket(loop, sock);
    throw error;
  }
}

/** Removes a stale socket file at `path` (not other files). */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Not there: fine.
  }
}

/** loop.createUnixServer(). */
export async function createUnixServer(
  loop: NetLoop,
  protocolFactory: () => BaseProtocol,
  path: string | null | undefined,
  options: CreateUnixServerOptions = {},
): Promise<Server> {
  checkFactory(protocolFactory, "createUnixServer");
  const backlog = checkBacklog(options.backlog);
  let sock: Socket;
  let cleanup: (() => void) | null = null;
  if (path !== undefined && path !== null) {
    if (options.sock !== undefined) {
      throw new RangeError(
        "path and sock can not be specified at the same time",
      );
    }
    if (typeof path !== "string") {
      throw new TypeError(`path must be a string, got ${String(path)}`);
    }
    const abstract = path.startsWith("\0");
    if (!abstract) removeStaleSocket(path);
    sock = ownSocket(loop, new Socket(AF_UNIX, SOCK_STREAM));
    try {
      sock.bind(path);
    } catch (error) {
      dropSocket(loop, sock);
      if (error instanceof OSError && error.code === "EADDRINUSE") {
        throw new OSError(
          error.errno,
          error.code,
          `Address ${formatAddress(path)} is already in use`,
          "bind",
          formatAddress(path),
        );
      }
      throw error;
    }
    if (options.cleanupSocket ?? true) cleanup = socketFileCleanup(path);
  } else {
    if (options.sock === undefined) {
      throw new RangeError("path was not specified, and no sock specified");
    }
    sock = options.sock;
    if (sock.family !== AF_UNIX || sock.type !== SOCK_STREAM) {
      throw new RangeError(
        `A UNIX Domain Stream Socket was expected, got ${sock}`,
      );
    }
    ownSocket(loop, sock);
    // CPython 3.13: a given socket's bound path is removed at close too.
    if (options.cleanupSocket ?? true) {
      let name: Address | null = null;
      try {
        name = sock.getsockname();
      } catch {
        // Not bound: nothing to remove.
      }
      if (typeof name === "string") cleanup = socketFileCleanup(name);
    }
  }
  const server = new Server(loop, [sock], protocolFactory, backlog, cleanup);
  if (options.startServing ?? true) {
    try {
      await server.startServing();
    } catch (error) {
      server.close();
      throw error;
    }
  }
  return server;
}

/**
 * Removes the socket file at `path` when the server closes, if it is still
 * the one this server bound (same inode): a later server's file at the
 * same path is left alone. Null for abstract or unnamed sockets.
 */
function socketFileCleanup(path: string): (() => void) | null {
  if (path === "" || path.startsWith("\0")) return null;
  let ino: number | bigint;
  try {
    ino = lstatSync(path).ino;
  } catch {
    return null;
  }
  return () => {
    try {
      if (lstatSync(path).ino === ino) unlinkSync(path);
    } catch {
      // Gone already.
    }
  };
}

/** loop.connectAcceptedSocket(). */
export async function connectAcceptedSocket<P extends BaseProtocol>(
  loop: NetLoop,
  protocolFactory: () => P,
  sock: Socket,
): Promise<[Transport, P]> {
  checkFactory(protocolFactory, "connectAcceptedSocket");
  if (!(sock instanceof Socket)) {
    throw new TypeError(
      `connectAcceptedSocket() expects a Socket, got ${sock}`,
    );
  }
  checkSockType(sock, SOCK_STREAM, "connectAcceptedSocket");
  return await createConnectionTransport(loop, sock, protocolFactory);
}

/** loop.createDatagramEndpoint(). */
export async function createDatagramEndpoint<P extends DatagramProtocol>(
  loop: NetLoop,
  protocolFactory: () => P,
  options: DatagramEndpointOptions = {},
): Promise<[DatagramTransport, P]> {
  checkFactory(protocolFactory, "createDatagramEndpoint");
  let sock: Socket;
  let remote: Address | null = null;
  if (options.sock !== undefined) {
    sock = options.sock;
    checkSockType(sock, SOCK_DGRAM, "createDatagramEndpoint");
    const extra = [
      "localAddr",
      "remoteAddr",
      "family",
      "proto",
      "flags",
      "reusePort",
      "allowBroadcast",
    ]
      .filter((k) => (options as Record<string, unknown>)[k] !== undefined);
    if (extra.length > 0) {
      throw new RangeError(
        `socket modifier keyword arguments can not be used when sock is specified. (${
          extra.join(", ")
        })`,
      );
    }
  } else {
    const family = options.family ?? 0;
    const proto = options.proto ?? 0;
    let local: Address | null = options.localAddr ?? null;
    remote = options.remoteAddr ?? null;
    let chosenFamily = family;
    if (family === AF_UNIX) {
      for (const addr of [local, remote]) {
        if (addr !== null && typeof addr !== "string") {
          throw new TypeError("string is expected for an AF_UNIX address");
        }
      }
      if (
        typeof local === "string" && local !== "" && !local.startsWith("\0")
      ) {
        removeStaleSocket(local);
      }
    } else if (local === null && remote === null) {
      if (family === 0) throw new RangeError("unexpected address family");
    } else {
      const hints = {
        family,
        type: SOCK_DGRAM,
        proto,
        flags: options.flags ?? 0,
      };
      const resolveOne = async (addr: Address | null) => {
        if (addr === null) return null;
        if (!Array.isArray(addr) || addr.length < 2) {
          throw new TypeError("2-tuple is expected");
        }
        return await resolveOrFail(
          loop,
          addr[0] as string,
          addr[1] as number,
          hints,
        );
      };
      const [localInfos, remoteInfos] = await Promise.all([
        resolveOne(local),
        resolveOne(remote),
      ]);
      // The first family that both sides have.
      const pick = [...(localInfos ?? remoteInfos ?? [])].find((info) =>
        (localInfos === null || localInfos.some((i) => i[0] === info[0])) &&
        (remoteInfos === null || remoteInfos.some((i) => i[0] === info[0]))
      );
      if (!pick) throw new RangeError("can not get address information");
      chosenFamily = pick[0];
      local = localInfos?.find((i) => i[0] === chosenFamily)?.[4] ?? null;
      remote = remoteInfos?.find((i) => i[0] === chosenFamily)?.[4] ?? null;
    }
    sock = ownSocket(
      loop,
      new Socket(chosenFamily || AF_INET, SOCK_DGRAM, proto),
    );
    try {
      if (options.reusePort) sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
      if (options.allowBroadcast) sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1);
      if (local !== null) sock.bind(local);
      if (remote !== null && !options.allowBroadcast) {
        await loop.sockConnect(sock, remote);
      }
    } catch (error) {
      dropSocket(loop, sock);
      throw error;
    }
  }
  let protocol: P;
  try {
    protocol = makeProtocol(protocolFactory, "datagram");
  } catch (error) {
    if (options.sock === undefined) dropSocket(loop, sock);
    throw error;
  }
  const waiter = loop.createFuture<void>();
  const transport = new SocketDatagramTransport(
    loop,
    sock,
    protocol,
    remote,
    waiter,
  );
  try {
    await waiter;
  } catch (error) {
    transport.close();
    throw error;
  }
  return [transport, protocol];
}

/** The fd of a file argument: a number or an object with fileno(). */
export function fileFd(file: unknown): number {
  const fd = typeof file === "number"
    ? file
    : typeof (file as { fileno?: unknown })?.fileno === "function"
    ? (file as { fileno(): number }).fileno()
    : NaN;
  if (!Number.isInteger(fd) || fd < 0) {
    throw new TypeError(
      `file must be a descriptor or have fileno(), got ${String(file)}`,
    );
  }
  return fd;
}

/** Errors that mean "this file cannot go through sendfile(2)". */
const NOT_SENDFILE_ABLE = new Set(["EINVAL", "ENOSYS", "EOPNOTSUPP", "ESPIPE"]);

/** sendfile's options. */
export interface SendfileOptions {
  /** Read and send in JS when sendfile(2) cannot be used (default true). */
  fallback?: boolean;
}

/** No sendfile(2) for this file and no fallback allowed. */
export class SendfileNotAvailableError extends RuntimeError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SendfileNotAvailableError";
  }
}

function checkRange(offset: number, count: number | null): void {
  if (!Number.isInteger(offset) || offset < 0) {
    throw new RangeError(
      `offset must be a non-negative integer (got ${offset})`,
    );
  }
  if (count !== null && (!Number.isInteger(count) || count <= 0)) {
    throw new RangeError(`count must be a positive integer (got ${count})`);
  }
}

/** Waits until a socket has room again (rejects when it never will). */
type WaitWritable = () => PromiseLike<void>;

/**
 * loop.sockSendfile(): sendfile(2) from `file` at `offset`, waiting for
 * room as needed; falls back to read + send for files the kernel cannot
 * send. The file's position is left at the end of what was sent.
 */
export function sockSendfile(
  loop: NetLoop,
  sock: Socket,
  file: unknown,
  offset = 0,
  count: number | null = null,
  options: SendfileOptions = {},
  readChunk: (fd: number, buf: Uint8Array, position: number) => number,
  seek: (fd: number, position: number) => void,
): Promise<number> {
  const fd = fileFd(file);
  checkRange(offset, count);
  if (sock.type !== SOCK_STREAM) {
    throw new RangeError("only SOCK_STREAM type sockets are supported");
  }
  return sendFileOn(
    sock,
    fd,
    offset,
    count,
    options,
    () => writable(loop, sock),
    readChunk,
    seek,
  );
}

/** sendfile(2), or read + send, over `sock`; `waitWritable` waits for room. */
async function sendFileOn(
  sock: Socket,
  fd: number,
  offset: number,
  count: number | null,
  options: SendfileOptions,
  waitWritable: WaitWritable,
  readChunk: (fd: number, buf: Uint8Array, position: number) => number,
  seek: (fd: number, position: number) => void,
): Promise<number> {
  let total = 0;
  let native = true;
  try {
    while (count === null || total < count) {
      const want = count === null ? 0x7fff0000 : count - total;
      let n: number | null;
      try {
        n = sock.sendfile(fd, offset + total, want);
      } catch (error) {
        if (
          total === 0 && error instanceof OSError &&
          NOT_SENDFILE_ABLE.has(error.code)
        ) {
          native = false;
          break;
        }
        throw error;
      }
      if (n === null) {
        await waitWritable();
        continue;
      }
      if (n === 0) break; // end of file
      total += n;
    }
  } finally {
    if (native && total > 0) seek(fd, offset + total);
  }
  if (native) return total;
  if (options.fallback === false) {
    throw new SendfileNotAvailableError(
      `sendfile(2) cannot send fd ${fd}, and fallback is off`,
    );
  }
  return await sendfileFallback(
    sock,
    fd,
    offset,
    count,
    waitWritable,
    readChunk,
    seek,
  );
}

/** Resolves when `sock` is writable. */
function writable(loop: NetLoop, sock: Socket): Promise<void> {
  const fut = loop.createFuture<void>();
  const fd = sock.fileno();
  const handle = loop._addWriter(fd, () => {
    if (!fut.done()) fut.setResult(undefined);
  });
  fut.addDoneCallback(() => loop._removeWriter(fd, handle));
  return fut;
}

/** Reads the file in chunks and sends each, waiting for room as needed. */
async function sendfileFallback(
  sock: Socket,
  fd: number,
  offset: number,
  count: number | null,
  waitWritable: WaitWritable,
  readChunk: (fd: number, buf: Uint8Array, position: number) => number,
  seek: (fd: number, position: number) => void,
): Promise<number> {
  const buf = new Uint8Array(256 * 1024);
  let total = 0;
  try {
    while (count === null || total < count) {
      const want = Math.min(
        buf.length,
        count === null ? buf.length : count - total,
      );
      const n = readChunk(fd, buf.subarray(0, want), offset + total);
      if (n === 0) break;
      let rest = buf.subarray(0, n);
      while (rest.length > 0) {
        const sent = sock.send(rest);
        if (sent === null) await waitWritable();
        else {
          rest = rest.subarray(sent);
          total += sent;
        }
      }
    }
  } finally {
    if (total > 0) seek(fd, offset + total);
  }
  return total;
}

/**
 * loop.sendfile(transport, ...): flushes the transport, pauses its
 * reading, sends the file over its socket, resumes. write() raises
 * RuntimeError for the whole call; closing or aborting the transport
 * meanwhile rejects it with ConnectionError.
 */
export async function transportSendfile(
  transport: unknown,
  file: unknown,
  offset = 0,
  count: number | null = null,
  options: SendfileOptions = {},
  readChunk: (fd: number, buf: Uint8Array, position: number) => number,
  seek: (fd: number, position: number) => void,
): Promise<number> {
  if (!(transport instanceof SocketTransport)) {
    throw new TypeError(
      `sendfile() needs a stream socket transport, got ${transport}`,
    );
  }
  if (transport.isClosing()) throw new RuntimeError("Transport is closing");
  const fd = fileFd(file);
  checkRange(offset, count);
  const wasReading = transport.isReading();
  if (wasReading) transport.pauseReading();
  try {
    await transport._makeEmptyWaiter();
    return await sendFileOn(
      transport._socket(),
      fd,
      offset,
      count,
      options,
      () => transport._waitWritable(),
      readChunk,
      seek,
    );
  } finally {
    transport._resetEmptyWaiter();
    if (wasReading && !transport.isClosing()) transport.resumeReading();
  }
}
