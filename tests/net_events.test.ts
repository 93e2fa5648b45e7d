// Networking on the selector loop, ported from CPython's
// Lib/test/test_asyncio/test_events.py (create_connection, create_server,
// server close, unix sockets, connect_accepted_socket, datagram endpoints)
// and test_sock_lowlevel.py (sock_* operations, cancellation races, huge
// transfers), plus transports (extra info, reading and writing flow
// control, half-close), name resolution and fd watchers on sockets.
//
// Only loopback addresses and unix paths under os.tmpdir(); every port is
// 0 and read back with getsockname(). Each test runs on its own loop with a
// deadline, fails on anything that reaches the loop's exception handler,
// and checks that no fd outlives the loop.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pid } from "node:process";
import { assertNoNewFds, newLoop, openFds } from "./helpers.ts";
import { hostTable } from "../ffi/sys/platform.ts";
import { assertRejects, runNet } from "./net_helpers.ts";
import { abstractName, inet, tmpSockPath } from "./net_helpers.ts";
import { concat, dec, enc, NO_IPV6 } from "./net_helpers.ts";
import {
  type AbstractEventLoop,
  type Address,
  AF_INET,
  AF_INET6,
  AF_UNIX,
  BufferedProtocol,
  CancelledError,
  ConnectionError,
  ConnectionRefusedError,
  ConnectionResetError,
  DatagramProtocol,
  DatagramTransport,
  EVENT_READ,
  EVENT_WRITE,
  type Future,
  GaiError,
  type Inet6Address,
  type InetAddress,
  IPPROTO_TCP,
  IPPROTO_UDP,
  OSError,
  Protocol,
  RuntimeError,
  type SelectorEventLoop,
  SHUT_WR,
  sleep,
  SO_BROADCAST,
  SO_KEEPALIVE,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  SOCK_DGRAM,
  SOCK_STREAM,
  Socket,
  socketpair,
  SOL_SOCKET,
  type Task,
  TCP_NODELAY,
  TimeoutError,
  Transport,
  waitFor,
} from "../mod.ts";

// glibc values (Linux): not part of the exported constants.
const AI_NUMERICHOST = 0x4;
const NI_NUMERICHOST = 1;
const NI_NUMERICSERV = 2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

// ---------------------------------------------------------------------------
// Bytes and addresses.

function find(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (hay[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/** `n` bytes of "0123456789" repeated (test_sock_lowlevel's checker). */
function digits(n: number, from = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = 0x30 + ((from + i) % 10);
  return out;
}

function portOf(sock: Socket): number {
  return inet(sock.getsockname())[1];
}

/** The open flags of an fd (from /proc/self/fdinfo). */
function fdFlags(fd: number): number {
  const text = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
  const m = /^flags:\s+([0-7]+)/m.exec(text);
  assert.ok(m, `no flags line in fdinfo of ${fd}`);
  return parseInt(m[1], 8);
}

function isRefused(address: InetAddress): (e: unknown) => void {
  return (e) => {
    assert.ok(e instanceof ConnectionRefusedError, `got ${String(e)}`);
    assert.ok(e instanceof ConnectionError);
    assert.ok(e instanceof OSError);
    assert.equal(e.code, "ECONNREFUSED");
    assert.equal(e.errno, hostTable.errno.ECONNREFUSED); // 111 on Linux
    assert.ok(
      e.message.includes(address[0]) &&
        e.message.includes(String(address[1])),
      `the address ${address} is not in the message: ${e.message}`,
    );
  };
}

// ---------------------------------------------------------------------------
// The harness: one loop per test, a deadline, no unexpected handler calls,
// no leaked fds.

// ---------------------------------------------------------------------------
// Protocols (MyBaseProto, MyProto and MyDatagramProto of test_events.py).

class MyProto extends Protocol {
  transport: Transport | null = null;
  state = "INITIAL";
  readonly states: string[] = [];
  nbytes = 0;
  readonly chunks: Uint8Array[] = [];
  /** Protocol-state violations (checked by the tests). */
  readonly problems: string[] = [];
  readonly connected: Future<void>;
  readonly eof: Future<void>;
  readonly done: Future<Error | null>;
  /** What eofReceived() returns. */
  keepOpenOnEof = false;
  private waiters: [number, Future<void>][] = [];

  constructor(
    readonly loop: AbstractEventLoop,
    readonly greeting: Uint8Array | null = null,
  ) {
    super();
    this.connected = loop.createFuture<void>();
    this.eof = loop.createFuture<void>();
    this.done = loop.createFuture<Error | null>();
  }

  private expect(...allowed: string[]): void {
    if (!allowed.includes(this.state)) {
      this.problems.push(`state ${this.state}, expected ${allowed}`);
    }
  }

  private setState(state: string): void {
    this.state = state;
    this.states.push(state);
  }

  override connectionMade(transport: Transport): void {
    this.expect("INITIAL");
    this.transport = transport;
    this.setState("CONNECTED");
    if (this.greeting) transport.write(this.greeting);
    this.connected.setResult();
  }

  override dataReceived(data: Uint8Array): void {
    this.expect("CONNECTED");
    assert.ok(data instanceof Uint8Array);
    this.nbytes += data.length;
    this.chunks.push(data.slice());
    this.waiters = this.waiters.filter(([n, fut]) => {
      if (this.nbytes < n) return true;
      if (!fut.done()) fut.setResult();
      return false;
    });
  }

  override eofReceived(): boolean {
    this.expect("CONNECTED");
    this.setState("EOF");
    this.eof.setResult();
    return this.keepOpenOnEof;
  }

  override connectionLost(exc: Error | null): void {
    this.expect("CONNECTED", "EOF");
    this.setState("CLOSED");
    this.done.setResult(exc);
  }

  /** Resolves once at least `n` bytes have arrived. */
  waitBytes(n: number): Future<void> {
    const fut = this.loop.createFuture<void>();
    if (this.nbytes >= n) fut.setResult();
    else this.waiters.push([n, fut]);
    return fut;
  }

  text(): string {
    return dec(concat(this.chunks));
  }
}

/** Hands out the server-side protocols in connection order. */
class Accepted {
  readonly protos: MyProto[] = [];
  private ready: MyProto[] = [];
  private waiting: Future<MyProto>[] = [];

  constructor(
    readonly loop: AbstractEventLoop,
    readonly make: () => MyProto = () => new MyProto(loop),
  ) {}

  /** The protocol factory to give the server. */
  readonly factory = (): MyProto => {
    const proto = this.make();
    this.protos.push(proto);
    proto.connected.addDoneCallback(() => {
      const waiter = this.waiting.shift();
      if (waiter) waiter.setResult(proto);
      else this.ready.push(proto);
    });
    return proto;
  };

  /** The next connected server-side protocol. */
  next(): Future<MyProto> {
    const fut = this.loop.createFuture<MyProto>();
    const proto = this.ready.shift();
    if (proto) fut.setResult(proto);
    else this.waiting.push(fut);
    return fut;
  }
}

class MyDatagramProto extends DatagramProtocol {
  transport: DatagramTransport | null = null;
  state = "INITIAL";
  nbytes = 0;
  readonly received: [Uint8Array, Address][] = [];
  readonly errors: Error[] = [];
  readonly problems: string[] = [];
  readonly done: Future<Error | null>;
  private datagramWaiters: Future<[Uint8Array, Address]>[] = [];
  private errorWaiters: Future<Error>[] = [];

  constructor(readonly loop: AbstractEventLoop) {
    super();
    this.done = loop.createFuture<Error | null>();
  }

  private expect(state: string): void {
    if (this.state !== state) {
      this.problems.push(`state ${this.state}, expected ${state}`);
    }
  }

  override connectionMade(transport: DatagramTransport): void {
    this.expect("INITIAL");
    this.transport = transport;
    this.state = "INITIALIZED";
  }

  override datagramReceived(data: Uint8Array, addr: Address): void {
    this.expect("INITIALIZED");
    this.nbytes += data.length;
    this.received.push([data.slice(), addr]);
    this.datagramWaiters.shift()?.setResult([data.slice(), addr]);
  }

  override errorReceived(exc: Error): void {
    this.expect("INITIALIZED");
    this.errors.push(exc);
    this.errorWaiters.shift()?.setResult(exc);
  }

  override connectionLost(_exc: Error | null): void {
    this.expect("INITIALIZED");
    this.state = "CLOSED";
    this.done.setResult(_exc);
  }

  /** The next datagram (one that arrives after this call). */
  nextDatagram(): Future<[Uint8Array, Address]> {
    const fut = this.loop.createFuture<[Uint8Array, Address]>();
    this.datagramWaiters.push(fut);
    return fut;
  }

  /** The next errorReceived() exception. */
  nextError(): Future<Error> {
    const fut = this.loop.createFuture<Error>();
    this.errorWaiters.push(fut);
    return fut;
  }
}

/** Answers every datagram with "resp:" + data (test_events.py). */
class EchoDatagramProto extends MyDatagramProto {
  override datagramReceived(data: Uint8Array, addr: Address): void {
    super.datagramReceived(data, addr);
    this.transport!.sendto(concat([enc("resp:"), data]), addr);
  }
}

const GET = enc("GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");

// ---------------------------------------------------------------------------
// Low-level helpers: a raw client socket, reading to EOF, and two test
// servers (test_utils.run_test_server and run_udp_echo_server) written
// with the loop's sock_* operations.

async function connectTo(
  loop: SelectorEventLoop,
  address: Address,
  { rcvbuf }: { rcvbuf?: number } = {},
): Promise<Socket> {
  const family = typeof address === "string"
    ? AF_UNIX
    : address[0].includes(":")
    ? AF_INET6
    : AF_INET;
  const sock = new Socket(family, SOCK_STREAM);
  try {
    if (rcvbuf !== undefined) sock.setsockopt(SOL_SOCKET, SO_RCVBUF, rcvbuf);
    await loop.sockConnect(sock, address);
    return sock;
  } catch (e) {
    sock.close();
    throw e;
  }
}

/** Reads until EOF (or, with `tolerateReset`, a connection reset). */
async function readAll(
  loop: SelectorEventLoop,
  sock: Socket,
  tolerateReset = false,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for (;;) {
    let data: Uint8Array;
    try {
      data = await loop.sockRecv(sock, 65536);
    } catch (e) {
      if (tolerateReset && e instanceof ConnectionResetError) break;
      throw e;
    }
    if (data.length === 0) break;
    chunks.push(data);
  }
  return concat(chunks);
}

interface TestServer {
  address: Address;
  close(): Promise<void>;
}

function familyOf(address: Address): number {
  if (typeof address === "string") return AF_UNIX;
  return address[0].includes(":") ? AF_INET6 : AF_INET;
}

/**
 * An HTTP/1.0-ish server: answers "GET" with a short page, and echoes the
 * body of "POST /loop" (Content-Length bytes) after its headers.
 */
function startHttpServer(
  loop: SelectorEventLoop,
  bindAddress: Address = ["127.0.0.1", 0],
): TestServer {
  const listener = new Socket(familyOf(bindAddress), SOCK_STREAM);
  try {
    listener.bind(bindAddress);
    listener.listen(16);
  } catch (e) {
    listener.close();
    throw e;
  }
  const tasks: Task<unknown>[] = [];
  const acceptor = loop.createTask(async () => {
    for (;;) {
      const [conn] = await loop.sockAccept(listener);
      tasks.push(loop.createTask(async () => {
        try {
          await serveHttp(loop, conn);
        } finally {
          conn.close();
        }
      }));
    }
  });
  return {
    address: listener.getsockname(),
    async close() {
      acceptor.cancel();
      for (const t of tasks) t.cancel();
      for (const t of [acceptor, ...tasks]) {
        try {
          await t;
        } catch (e) {
          if (!(e instanceof CancelledError || e instanceof ConnectionError)) {
            throw e;
          }
        }
      }
      listener.close();
      if (typeof bindAddress === "string" && !bindAddress.startsWith("\0")) {
        rmSync(bindAddress, { force: true });
      }
    },
  };
}

async function serveHttp(loop: SelectorEventLoop, conn: Socket) {
  let buf: Uint8Array = new Uint8Array(0);
  let end: number;
  while ((end = find(buf, enc("\r\n\r\n"))) < 0) {
    const data = await loop.sockRecv(conn, 65536);
    if (data.length === 0) return;
    buf = concat([buf, data]);
  }
  const head = dec(buf.subarray(0, end));
  let body = buf.subarray(end + 4);
  const length = /^POST \/loop /.test(head)
    ? /content-length:\s*(\d+)/i.exec(head)
    : null;
  if (length === null) {
    await loop.sockSendall(
      conn,
      enc("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nTest message\n"),
    );
    return;
  }
  await loop.sockSendall(conn, enc("HTTP/1.0 200 OK\r\n\r\n"));
  let left = Number(length[1]);
  for (;;) {
    if (body.length > 0) {
      await loop.sockSendall(conn, body);
      left -= body.length;
    }
    if (left <= 0) break;
    body = await loop.sockRecv(conn, 65536);
    if (body.length === 0) break;
  }
}

/** A UDP server that sends every datagram back to its sender. */
function startUdpEchoServer(
  loop: SelectorEventLoop,
  bindAddress: Address = ["127.0.0.1", 0],
): TestServer {
  const sock = new Socket(familyOf(bindAddress), SOCK_DGRAM);
  try {
    sock.bind(bindAddress);
  } catch (e) {
    sock.close();
    throw e;
  }
  const task = loop.createTask(async () => {
    for (;;) {
      const [data, addr] = await loop.sockRecvfrom(sock, 65536);
      await loop.sockSendto(sock, data, addr);
    }
  });
  return {
    address: sock.getsockname(),
    async close() {
      task.cancel();
      try {
        await task;
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
      }
      sock.close();
    },
  };
}

/** A listening TCP socket on 127.0.0.1, port 0. */
function listener(backlog = 8, family = AF_INET): Socket {
  const sock = new Socket(family, SOCK_STREAM);
  try {
    sock.bind([family === AF_INET6 ? "::1" : "127.0.0.1", 0]);
    sock.listen(backlog);
  } catch (e) {
    sock.close();
    throw e;
  }
  return sock;
}

/** An address nobody listens on: a bound TCP socket that never listen()s. */
function refusingAddress(): [Socket, InetAddress] {
  const sock = new Socket(AF_INET, SOCK_STREAM);
  sock.bind(["127.0.0.1", 0]);
  return [sock, inet(sock.getsockname())];
}

/**
 * The spec's non-blocking primitives on Socket: null when the call would
 * block (EAGAIN).
 */
interface NonBlockingSocket {
  recv(n: number): Uint8Array | null;
  send(data: Uint8Array): number | null;
}
const nb = (sock: Socket): NonBlockingSocket =>
  sock as unknown as NonBlockingSocket;

function watchedEvents(loop: SelectorEventLoop, sock: Socket): number {
  return loop._selector.get(sock.fileno())?.events ?? 0;
}

// ===========================================================================

describe("createConnection (test_events.py)", () => {
  it("connects to host/port; transport, protocol, sockname, EOF then CLOSED (test_create_connection)", () =>
    runNet(async (loop) => {
      const httpd = startHttpServer(loop);
      try {
        const [host, port] = inet(httpd.address);
        const [tr, pr] = await loop.createConnection(
          () => new MyProto(loop, GET),
          host,
          port,
        );
        assert.ok(tr instanceof Transport);
        assert.ok(pr instanceof Protocol);
        assert.ok(pr instanceof MyProto);
        assert.equal(pr.transport, tr);
        assert.equal(tr.getProtocol(), pr);
        const sockname = inet(tr.getExtraInfo("sockname"));
        assert.equal(sockname[0], "127.0.0.1");
        assert.ok(sockname[1] > 0);
        assert.deepEqual(tr.getExtraInfo("peername"), [host, port]);
        assert.equal(await pr.done, null);
        assert.ok(pr.nbytes > 0);
        assert.match(pr.text(), /^HTTP\/1\.0 200 OK\r\n/);
        assert.deepEqual(pr.states, ["CONNECTED", "EOF", "CLOSED"]);
        assert.deepEqual(pr.problems, []);
        assert.equal(tr.isClosing(), true);
        tr.close(); // idempotent
      } finally {
        await httpd.close();
      }
    }));

  it(
    "connects over IPv6 to ::1 (Inet6Address peername)",
    { skip: NO_IPV6 },
    () =>
      runNet(async (loop) => {
        const httpd = startHttpServer(loop, ["::1", 0]);
        try {
          const port = (httpd.address as Inet6Address)[1];
          assert.equal((httpd.address as Inet6Address).length, 4);
          const [tr, pr] = await loop.createConnection(
            () => new MyProto(loop, GET),
            "::1",
            port,
          );
          const peer = tr.getExtraInfo("peername") as Inet6Address;
          assert.equal(peer.length, 4);
          assert.equal(peer[0], "::1");
          assert.equal(peer[1], port);
          assert.equal((tr.getExtraInfo("sockname") as Inet6Address)[0], "::1");
          assert.equal((tr.getExtraInfo("socket") as Socket).family, AF_INET6);
          await pr.done;
          assert.match(pr.text(), /^HTTP\/1\.0 200 OK/);
          tr.close();
        } finally {
          await httpd.close();
        }
      }),
  );

  it("sock= takes a connected socket (test_create_connection_sock)", () =>
    runNet(async (loop) => {
      const httpd = startHttpServer(loop);
      let sock: Socket | null = null;
      try {
        const [host, port] = inet(httpd.address);
        const infos = await loop.getaddrinfo(host, port, {
          type: SOCK_STREAM,
        });
        assert.ok(infos.length > 0);
        const [family, type, proto, , address] = infos[0];
        sock = new Socket(family, type, proto);
        await loop.sockConnect(sock, address);
        const fd = sock.fileno();
        const [tr, pr] = await loop.createConnection(
          () => new MyProto(loop, GET),
          undefined,
          undefined,
          { sock },
        );
        assert.ok(tr instanceof Transport);
        assert.equal((tr.getExtraInfo("socket") as Socket).fileno(), fd);
        await pr.done;
        assert.ok(pr.nbytes > 0);
        tr.close();
      } finally {
        sock?.close();
        await httpd.close();
      }
    }));

  it("localAddr binds the client side (test_create_connection_local_addr)", () =>
    runNet(async (loop) => {
      const httpd = startHttpServer(loop);
      try {
        const [host, port] = inet(httpd.address);
        // find_unused_port(): a port the kernel gave us, free again.
        const probe = new Socket(AF_INET, SOCK_STREAM);
        probe.bind(["127.0.0.1", 0]);
        const localPort = portOf(probe);
        probe.close();
        const [tr, pr] = await loop.createConnection(
          () => new MyProto(loop, GET),
          host,
          port,
          { localAddr: ["127.0.0.1", localPort] },
        );
        assert.deepEqual(tr.getExtraInfo("sockname"), [
          "127.0.0.1",
          localPort,
        ]);
        await pr.done;
        tr.close();
      } finally {
        await httpd.close();
      }
    }));

  it("localAddr in use: OSError EADDRINUSE naming the address (test_create_connection_local_addr_in_use)", () =>
    runNet(async (loop) => {
      const httpd = startHttpServer(loop);
      try {
        const [host, port] = inet(httpd.address);
        await assertRejects(
          loop.createConnection(() => new MyProto(loop), host, port, {
            localAddr: [host, port],
          }),
          (e) => {
            assert.ok(e instanceof OSError, `got ${String(e)}`);
            assert.equal(e.code, "EADDRINUSE");
            assert.equal(e.errno, hostTable.errno.EADDRINUSE);
            assert.ok(
              e.message.includes(host) && e.message.includes(String(port)),
              `address missing from: ${e.message}`,
            );
          },
        );
      } finally {
        await httpd.close();
      }
    }));

  it("a refused connection is ConnectionRefusedError (ECONNREFUSED) with the address", () =>
    runNet(async (loop) => {
      const [bound, address] = refusingAddress();
      try {
        await assertRejects(
          loop.createConnection(
            () => new MyProto(loop),
            address[0],
            address[1],
          ),
          isRefused(address),
        );
      } finally {
        bound.close();
      }
    }));

  it("a host name (localhost) resolves and connects, with happyEyeballsDelay too", () =>
    runNet(async (loop) => {
      const httpd = startHttpServer(loop);
      try {
        const port = inet(httpd.address)[1];
        for (const options of [{}, { happyEyeballsDelay: 250 }]) {
          const [tr, pr] = await loop.createConnection(
            () => new MyProto(loop, GET),
            "localhost",
            port,
            options,
          );
          assert.deepEqual(tr.getExtraInfo("peername"), ["127.0.0.1", port]);
          await pr.done;
          assert.match(pr.text(), /^HTTP\/1\.0 200 OK/);
          tr.close();
        }
      } finally {
        await httpd.close();
      }
    }));

  it("host/port together with sock, or neither, is a RangeError", () =>
    runNet(async (loop) => {
      const sock = new Socket(AF_INET, SOCK_STREAM);
      try {
        await assertRejects(
          loop.createConnection(
            () => new MyProto(loop),
            "127.0.0.1",
            1,
            { sock },
          ),
          (e) => {
            assert.ok(e instanceof RangeError, `got ${String(e)}`);
            assert.match(
              e.message,
              /host\/port and sock can not be specified at the same time/,
            );
          },
        );
        await assertRejects(
          loop.createConnection(() => new MyProto(loop)),
          (e) => {
            assert.ok(e instanceof RangeError, `got ${String(e)}`);
            assert.match(
              e.message,
              /Neither host\/port nor sock were specified/,
            );
          },
        );
        const udp = new Socket(AF_INET, SOCK_DGRAM);
        try {
          await assertRejects(
            loop.createConnection(
              () => new MyProto(loop),
              undefined,
              undefined,
              {
                sock: udp,
              },
            ),
            (e) => {
              assert.ok(e instanceof RangeError, `got ${String(e)}`);
              assert.match(e.message, /A Stream Socket was expected/i);
            },
          );
        } finally {
          udp.close();
        }
      } finally {
        sock.close();
      }
    }));
});

describe("createServer (test_events.py)", () => {
  it("serves 127.0.0.1 port 0: data, extra info, close (test_create_server)", () =>
    runNet(async (loop) => {
      const accepted = new Accepted(loop);
      const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
      assert.equal(server.getLoop(), loop);
      assert.equal(server.isServing(), true);
      assert.equal(server.sockets.length, 1);
      const [host, port] = inet(server.sockets[0].getsockname());
      assert.equal(host, "127.0.0.1");
      assert.ok(port > 0);
      const client = await connectTo(loop, ["127.0.0.1", port]);
      try {
        await loop.sockSendall(client, enc("xxx"));
        const proto = await accepted.next();
        assert.equal(proto.state, "CONNECTED");
        await proto.waitBytes(3);
        assert.equal(proto.nbytes, 3);
        assert.equal(proto.text(), "xxx");
        const tr = proto.transport!;
        assert.deepEqual(tr.getExtraInfo("sockname"), ["127.0.0.1", port]);
        assert.equal(inet(tr.getExtraInfo("peername"))[0], "127.0.0.1");
        assert.deepEqual(tr.getExtraInfo("peername"), client.getsockname());
        // Close the connection from the server side; the client sees EOF.
        tr.close();
        assert.equal(await proto.done, null);
        assert.equal(proto.state, "CLOSED");
        assert.deepEqual(proto.problems, []);
        assert.equal((await loop.sockRecv(client, 10)).length, 0);
      } finally {
        client.close();
      }
      server.close();
      await server.waitClosed();
      assert.equal(server.isServing(), false);
    }));

  it(
    "several hosts: one socket per distinct address (test_create_server_multiple_hosts)",
    { skip: NO_IPV6 },
    () =>
      runNet(async (loop) => {
        const accepted = new Accepted(loop);
        const server = await loop.createServer(
          accepted.factory,
          ["127.0.0.1", "::1", "127.0.0.1"],
          0,
        );
        try {
          assert.equal(server.sockets.length, 2);
          const hosts = server.sockets.map((s) => inet(s.getsockname())[0]);
          assert.deepEqual(new Set(hosts), new Set(["127.0.0.1", "::1"]));
          for (const sock of server.sockets) {
            const address = inet(sock.getsockname());
            const client = await connectTo(loop, [address[0], address[1]]);
            try {
              await loop.sockSendall(client, enc("hi"));
              const proto = await accepted.next();
              await proto.waitBytes(2);
              assert.equal(
                inet(proto.transport!.getExtraInfo("sockname"))[0],
                address[0],
              );
              proto.transport!.close();
              await proto.done;
            } finally {
              client.close();
            }
          }
        } finally {
          server.close();
          await server.waitClosed();
        }
      }),
  );

  it("a host already bound: OSError EADDRINUSE (test_create_server_addr_in_use)", () =>
    runNet(async (loop) => {
      const server = await loop.createServer(
        () => new MyProto(loop),
        "127.0.0.1",
        0,
      );
      try {
        const [host, port] = inet(server.sockets[0].getsockname());
        await assertRejects(
          loop.createServer(() => new MyProto(loop), host, port),
          (e) => {
            assert.ok(e instanceof OSError, `got ${String(e)}`);
            assert.equal(e.code, "EADDRINUSE");
            assert.equal(e.errno, hostTable.errno.EADDRINUSE);
            assert.ok(e.message.includes(String(port)), e.message);
          },
        );
      } finally {
        server.close();
        await server.waitClosed();
      }
    }));

  it("sock= serves a listening socket we made (test_create_server_sock)", () =>
    runNet(async (loop) => {
      const accepted = new Accepted(loop);
      const sock = listener();
      const fd = sock.fileno();
      const server = await loop.createServer(
        accepted.factory,
        undefined,
        undefined,
        { sock },
      );
      try {
        assert.equal(server.sockets.length, 1);
        assert.equal(server.sockets[0].fileno(), fd);
        const [host, port] = inet(server.sockets[0].getsockname());
        assert.equal(host, "127.0.0.1");
        const client = await connectTo(loop, ["127.0.0.1", port]);
        try {
          await loop.sockSendall(client, enc("xxx"));
          const proto = await accepted.next();
          await proto.waitBytes(3);
          proto.transport!.close();
          await proto.done;
        } finally {
          client.close();
        }
      } finally {
        server.close();
        await server.waitClosed();
      }
      // The server owned the socket: close() closed it (checked by the fd
      // count at the end).
    }));

  it("sock= with host/port, or a datagram socket, is a RangeError", () =>
    runNet(async (loop) => {
      const sock = listener();
      const udp = new Socket(AF_INET, SOCK_DGRAM);
      try {
        await assertRejects(
          loop.createServer(() => new MyProto(loop), "127.0.0.1", 0, { sock }),
          (e) => {
            assert.ok(e instanceof RangeError, `got ${String(e)}`);
            assert.match(e.message, /host\/port and sock can not be specified/);
          },
        );
        await assertRejects(
          loop.createServer(() => new MyProto(loop), undefined, undefined, {
            sock: udp,
          }),
          (e) => {
            assert.ok(e instanceof RangeError, `got ${String(e)}`);
            assert.match(e.message, /A Stream Socket was expected/i);
          },
        );
      } finally {
        sock.close();
        udp.close();
      }
    }));

  it("reusePort sets SO_REUSEPORT and lets two servers share a port (test_create_server_reuse_port)", () =>
    runNet(async (loop) => {
      const plain = await loop.createServer(
        () => new MyProto(loop),
        "127.0.0.1",
        0,
      );
      assert.equal(
        plain.sockets[0].getsockopt(SOL_SOCKET, SO_REUSEPORT),
        0,
      );
      plain.close();
      await plain.waitClosed();

      const a = await loop.createServer(
        () => new MyProto(loop),
        "127.0.0.1",
        0,
        { reusePort: true },
      );
      const port = portOf(a.sockets[0]);
      assert.notEqual(a.sockets[0].getsockopt(SOL_SOCKET, SO_REUSEPORT), 0);
      const b = await loop.createServer(
        () => new MyProto(loop),
        "127.0.0.1",
        port,
        { reusePort: true },
      );
      assert.equal(portOf(b.sockets[0]), port);
      for (const s of [a, b]) {
        s.close();
        await s.waitClosed();
      }
    }));

  it("SO_REUSEADDR is on by default (POSIX), off with reuseAddress: false; keepAlive sets SO_KEEPALIVE", () =>
    runNet(async (loop) => {
      const servers = [
        await loop.createServer(() => new MyProto(loop), "127.0.0.1", 0),
        await loop.createServer(() => new MyProto(loop), "127.0.0.1", 0, {
          reuseAddress: false,
        }),
        await loop.createServer(() => new MyProto(loop), "127.0.0.1", 0, {
          keepAlive: true,
        }),
      ];
      try {
        const [dflt, noReuse, keep] = servers.map((s) => s.sockets[0]);
        assert.notEqual(dflt.getsockopt(SOL_SOCKET, SO_REUSEADDR), 0);
        assert.equal(noReuse.getsockopt(SOL_SOCKET, SO_REUSEADDR), 0);
        assert.equal(dflt.getsockopt(SOL_SOCKET, SO_KEEPALIVE), 0);
        assert.notEqual(keep.getsockopt(SOL_SOCKET, SO_KEEPALIVE), 0);
      } finally {
        for (const s of servers) {
          s.close();
          await s.waitClosed();
        }
      }
    }));

  it("backlog 1: clients that connect at once are all accepted", () =>
    runNet(async (loop) => {
      const accepted = new Accepted(loop);
      const server = await loop.createServer(
        accepted.factory,
        "127.0.0.1",
        0,
        { backlog: 1 },
      );
      const port = portOf(server.sockets[0]);
      const clients: Socket[] = [];
      try {
        for (let i = 0; i < 5; i++) {
          clients.push(await connectTo(loop, ["127.0.0.1", port]));
        }
        for (let i = 0; i < 5; i++) {
          await loop.sockSendall(clients[i], enc(`client ${i}`));
        }
        const texts: string[] = [];
        for (let i = 0; i < 5; i++) {
          const proto = await accepted.next();
          await proto.waitBytes(8);
          texts.push(proto.text());
        }
        assert.deepEqual(
          texts.sort(),
          [0, 1, 2, 3, 4].map((i) => `client ${i}`),
        );
      } finally {
        for (const c of clients) c.close();
        server.close();
        server.closeClients();
        await server.waitClosed();
      }
    }));

  it("startServing: false binds without listening; startServing() starts", () =>
    runNet(async (loop) => {
      const accepted = new Accepted(loop);
      const server = await loop.createServer(
        accepted.factory,
        "127.0.0.1",
        0,
        { startServing: false },
      );
      try {
        assert.equal(server.isServing(), false);
        assert.equal(server.sockets.length, 1);
        const address = inet(server.sockets[0].getsockname());
        // Not listening yet: a connect is refused.
        await assertRejects(
          connectTo(loop, [address[0], address[1]]),
          isRefused(address),
        );
        await server.startServing();
        assert.equal(server.isServing(), true);
        await server.startServing(); // a second call changes nothing
        assert.equal(server.isServing(), true);
        const client = await connectTo(loop, [address[0], address[1]]);
        try {
          const proto = await accepted.next();
          proto.transport!.close();
          await proto.done;
        } finally {
          client.close();
        }
      } finally {
        server.close();
        await server.waitClosed();
      }
    }));

  it("serveForever() serves until cancelled, then the server is closed", () =>
    runNet(async (loop) => {
      const accepted = new Accepted(loop);
      const server = await loop.createServer(
        accepted.factory,
        "127.0.0.1",
        0,
        { startServing: false },
      );
      const address = inet(server.sockets[0].getsockname());
      const task = loop.createTask(() => server.serveForever());
      for (let i = 0; i < 10 && !server.isServing(); i++) await sleep(0);
      assert.equal(server.isServing(), true);
      const client = await connectTo(loop, [address[0], address[1]]);
      const proto = await accepted.next();
      client.close();
      await proto.done;
      // Only one serveForever() at a time.
      await assertRejects(server.serveForever(), (e) => {
        assert.ok(e instanceof RuntimeError, `got ${String(e)}`);
        assert.match(
          e.message,
          /is already being awaited on serveForever\(\)/i,
        );
      });
      assert.equal(task.done(), false);
      task.cancel();
      await assertRejects(task, (e) => assert.ok(e instanceof CancelledError));
      assert.equal(server.isServing(), false);
      await assertRejects(
        connectTo(loop, [address[0], address[1]]),
        isRefused(address),
      );
      await server.waitClosed();
      await assertRejects(server.serveForever(), (e) => {
        assert.ok(e instanceof RuntimeError, `got ${String(e)}`);
        assert.match(e.message, /is closed/);
      });
    }));
});

describe("server close (test_events.py)", () => {
  it("after close() a connect is refused; sockets empty; waitClosed resolves (test_server_close)", () =>
    runNet(async (loop) => {
      const accepted = new Accepted(loop);
      const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
      const address = inet(server.sockets[0].getsockname());
      const client = await connectTo(loop, [address[0], address[1]]);
      await loop.sockSendall(client, enc("xxx"));
      client.close();
      const proto = await accepted.next();
      await proto.done;
      assert.equal(proto.text(), "xxx");
      assert.deepEqual(proto.states, ["CONNECTED", "EOF", "CLOSED"]);

      server.close();
      assert.equal(server.isServing(), false);
      assert.equal(server.sockets.length, 0);
      server.close(); // idempotent
      await server.waitClosed();
      await assertRejects(
        connectTo(loop, [address[0], address[1]]),
        isRefused(address),
      );
    }));

  it("waitClosed() waits for live connections; close() leaves them open", () =>
    runNet(async (loop) => {
      const accepted = new Accepted(loop);
      const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
      const client = await connectTo(loop, [
        "127.0.0.1",
        portOf(server.sockets[0]),
      ]);
      try {
        const proto = await accepted.next();
        server.close();
        let closed = false;
        const waiting = server.waitClosed().then(() => {
          closed = true;
        });
        await sleep(30); // nothing can end the connection meanwhile
        assert.equal(closed, false);
        assert.equal(proto.state, "CONNECTED");
        assert.equal(proto.transport!.isClosing(), false);
        // The connection still carries data after the server closed.
        proto.transport!.write(enc("still here"));
        assert.equal(dec(await loop.sockRecv(client, 100)), "still here");
        client.close();
        await proto.done;
        await waiting;
        assert.equal(closed, true);
      } finally {
        client.close();
      }
    }));

  it("closeClients() closes live connections after flushing their buffers", () =>
    runNet(async (loop) => {
      const accepted = new Accepted(loop);
      const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
      const port = portOf(server.sockets[0]);
      const clients = [
        await connectTo(loop, ["127.0.0.1", port], { rcvbuf: 4096 }),
        await connectTo(loop, ["127.0.0.1", port], { rcvbuf: 4096 }),
      ];
      try {
        const protos = [await accepted.next(), await accepted.next()];
        const N = 1 << 20;
        for (const p of protos) {
          const sock = p.transport!.getExtraInfo("socket") as Socket;
          sock.setsockopt(SOL_SOCKET, SO_SNDBUF, 4096);
          p.transport!.write(digits(N));
          assert.ok(p.transport!.getWriteBufferSize() > 0);
        }
        server.close();
        server.closeClients();
        for (const p of protos) assert.equal(p.transport!.isClosing(), true);
        const received = await Promise.all(
          clients.map((c) => readAll(loop, c)),
        );
        for (const data of received) {
          assert.equal(data.length, N);
          assert.deepEqual(data, digits(N));
        }
        for (const p of protos) assert.equal(await p.done, null);
        await server.waitClosed();
      } finally {
        for (const c of clients) c.close();
      }
    }));

  it("abortClients() drops buffered data and closes at once", () =>
    runNet(async (loop) => {
      const accepted = new Accepted(loop);
      const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
      const port = portOf(server.sockets[0]);
      const client = await connectTo(loop, ["127.0.0.1", port], {
        rcvbuf: 4096,
      });
      try {
        const proto = await accepted.next();
        const N = 1 << 20;
        const sock = proto.transport!.getExtraInfo("socket") as Socket;
        sock.setsockopt(SOL_SOCKET, SO_SNDBUF, 4096);
        proto.transport!.write(digits(N));
        assert.ok(proto.transport!.getWriteBufferSize() > 0);
        server.close();
        server.abortClients();
        assert.equal(await proto.done, null);
        assert.equal(proto.state, "CLOSED");
        await server.waitClosed();
        const data = await readAll(loop, client, true);
        assert.ok(data.length < N, `${data.length} bytes arrived of ${N}`);
      } finally {
        client.close();
      }
    }));

  it("await using closes the server and its socket", () =>
    runNet(async (loop) => {
      let port = 0;
      let fd = -1;
      let kept: { isServing(): boolean } | null = null;
      {
        await using server = await loop.createServer(
          () => new MyProto(loop),
          "127.0.0.1",
          0,
        );
        kept = server;
        port = portOf(server.sockets[0]);
        fd = server.sockets[0].fileno();
        assert.equal(server.isServing(), true);
        assert.ok(existsSync(`/proc/self/fd/${fd}`));
      }
      assert.equal(kept.isServing(), false);
      await assertRejects(
        connectTo(loop, ["127.0.0.1", port]),
        isRefused(["127.0.0.1", port]),
      );
    }));
});

describe("unix sockets (test_events.py)", () => {
  it("createUnixServer/createUnixConnection on a path; the path goes at close (test_create_unix_server)", () =>
    runNet(async (loop) => {
      const path = tmpSockPath("net");
      const accepted = new Accepted(loop);
      const server = await loop.createUnixServer(accepted.factory, path);
      try {
        assert.equal(server.sockets.length, 1);
        assert.equal(server.sockets[0].family, AF_UNIX);
        assert.equal(server.sockets[0].getsockname(), path);
        assert.ok(statSync(path).isSocket());
        const [tr, pr] = await loop.createUnixConnection(
          () => new MyProto(loop),
          path,
        );
        assert.ok(tr instanceof Transport);
        assert.equal(tr.getExtraInfo("peername"), path);
        assert.equal(tr.getExtraInfo("sockname"), ""); // unnamed client
        assert.equal(tr.canWriteEof(), true);
        tr.write(enc("xxx"));
        const proto = await accepted.next();
        await proto.waitBytes(3);
        assert.equal(proto.nbytes, 3);
        assert.equal(proto.transport!.getExtraInfo("sockname"), path);
        proto.transport!.close();
        await proto.done;
        await pr.done;
        assert.deepEqual(pr.states, ["CONNECTED", "EOF", "CLOSED"]);
        assert.equal(proto.state, "CLOSED");
      } finally {
        server.close();
        await server.waitClosed();
      }
      assert.equal(existsSync(path), false, "cleanupSocket removes the path");
    }));

  it("cleanupSocket: false leaves the path behind", () =>
    runNet(async (loop) => {
      const path = tmpSockPath("net");
      try {
        const server = await loop.createUnixServer(
          () => new MyProto(loop),
          path,
          { cleanupSocket: false },
        );
        server.close();
        await server.waitClosed();
        assert.ok(statSync(path).isSocket());
      } finally {
        rmSync(path, { force: true });
      }
    }));

  it("a stale socket file is replaced; a regular file is not (EADDRINUSE)", () =>
    runNet(async (loop) => {
      const path = tmpSockPath("net");
      try {
        const stale = new Socket(AF_UNIX, SOCK_STREAM);
        stale.bind(path);
        stale.close();
        assert.ok(statSync(path).isSocket());
        const accepted = new Accepted(loop);
        const server = await loop.createUnixServer(accepted.factory, path);
        const client = await connectTo(loop, path);
        (await accepted.next()).transport!.close();
        client.close();
        server.close();
        await server.waitClosed();
        assert.equal(existsSync(path), false);

        writeFileSync(path, "not a socket");
        await assertRejects(
          loop.createUnixServer(() => new MyProto(loop), path),
          (e) => {
            assert.ok(e instanceof OSError, `got ${String(e)}`);
            assert.equal(e.code, "EADDRINUSE");
          },
        );
        assert.equal(readFileSync(path, "utf8"), "not a socket");
      } finally {
        rmSync(path, { force: true });
      }
    }));

  it("abstract namespace addresses (\\0name) work and create no file", () =>
    runNet(async (loop) => {
      const name = abstractName("net");
      const accepted = new Accepted(loop);
      const server = await loop.createUnixServer(accepted.factory, name);
      try {
        assert.equal(server.sockets[0].getsockname(), name);
        assert.equal(existsSync(name.slice(1)), false);
        const [tr, pr] = await loop.createUnixConnection(
          () => new MyProto(loop),
          name,
        );
        assert.equal(tr.getExtraInfo("peername"), name);
        const proto = await accepted.next();
        proto.transport!.write(enc("from abstract"));
        await pr.waitBytes(13);
        assert.equal(pr.text(), "from abstract");
        tr.close();
        await proto.done;
        await pr.done;
      } finally {
        server.close();
        await server.waitClosed();
      }
    }));

  it("path and sock together is a RangeError (test_create_unix_server_path_socket_error)", () =>
    runNet(async (loop) => {
      const sock = new Socket(AF_UNIX, SOCK_STREAM);
      try {
        await assertRejects(
          loop.createUnixServer(() => new MyProto(loop), "/test", { sock }),
          (e) => {
            assert.ok(e instanceof RangeError, `got ${String(e)}`);
            assert.match(
              e.message,
              /path and sock can not be specified at the same time/,
            );
          },
        );
      } finally {
        sock.close();
      }
    }));

  it("sock client ops over a unix socket (test_unix_sock_client_ops)", () =>
    runNet(async (loop) => {
      const path = tmpSockPath("net");
      const httpd = startHttpServer(loop, path);
      try {
        const sock = new Socket(AF_UNIX, SOCK_STREAM);
        try {
          await loop.sockConnect(sock, path);
          assert.equal(sock.getpeername(), path);
          await loop.sockSendall(sock, enc("GET / HTTP/1.0\r\n\r\n"));
          const data = await readAll(loop, sock);
          assert.match(dec(data), /^HTTP\/1\.0 200 OK/);
        } finally {
          sock.close();
        }
      } finally {
        await httpd.close();
      }
    }));
});

describe("connectAcceptedSocket (test_events.py)", () => {
  it("wraps an accepted socket: data, reply, close (test_connect_accepted_socket)", () =>
    runNet(async (loop) => {
      class Replier extends MyProto {
        override dataReceived(data: Uint8Array): void {
          super.dataReceived(data);
          this.transport!.write(enc("roger"));
        }
      }
      const lsock = listener(1);
      const client = new Socket(AF_INET, SOCK_STREAM);
      try {
        const connecting = loop.sockConnect(client, lsock.getsockname());
        const [conn, peer] = await loop.sockAccept(lsock);
        await connecting;
        assert.deepEqual(peer, client.getsockname());
        const proto = new Replier(loop);
        const [tr, pr] = await loop.connectAcceptedSocket(() => proto, conn);
        assert.equal(pr, proto);
        assert.equal(proto.transport, tr);
        assert.deepEqual(tr.getExtraInfo("peername"), client.getsockname());
        await loop.sockSendall(client, enc("test data"));
        assert.equal(dec(await loop.sockRecv(client, 99)), "roger");
        client.close();
        await proto.done;
        assert.equal(proto.state, "CLOSED");
        assert.equal(proto.nbytes, "test data".length);
        tr.close();
      } finally {
        client.close();
        lsock.close();
      }
    }));

  it("a datagram socket is a RangeError", () =>
    runNet(async (loop) => {
      const udp = new Socket(AF_INET, SOCK_DGRAM);
      try {
        await assertRejects(
          loop.connectAcceptedSocket(() => new MyProto(loop), udp),
          (e) => {
            assert.ok(e instanceof RangeError, `got ${String(e)}`);
            assert.match(e.message, /A Stream Socket was expected/i);
          },
        );
      } finally {
        udp.close();
      }
    }));
});

describe("createDatagramEndpoint (test_events.py)", () => {
  for (
    const [family, host, skip] of [
      [AF_INET, "127.0.0.1", false],
      [AF_INET6, "::1", NO_IPV6],
    ] as const
  ) {
    it(
      `local and remote endpoints exchange datagrams over ${host} (test_create_datagram_endpoint${
        family === AF_INET6 ? "_ipv6" : ""
      })`,
      {
        skip,
      },
      () =>
        runNet(async (loop) => {
          const [st, sp] = await loop.createDatagramEndpoint(
            () => new EchoDatagramProto(loop),
            { localAddr: [host, 0], family },
          );
          assert.ok(st instanceof DatagramTransport);
          assert.ok(sp instanceof EchoDatagramProto);
          assert.equal(sp.state, "INITIALIZED");
          assert.equal(sp.transport, st);
          const saddr = inet(st.getExtraInfo("sockname"));
          assert.equal(saddr[0], host);
          const [host2, port] = await loop.getnameinfo(
            saddr,
            NI_NUMERICHOST | NI_NUMERICSERV,
          );
          assert.equal(host2, host);

          const [ct, cp] = await loop.createDatagramEndpoint(
            () => new MyDatagramProto(loop),
            { remoteAddr: [host2, Number(port)] },
          );
          assert.equal(cp.state, "INITIALIZED");
          assert.equal(cp.transport, ct);
          assert.deepEqual(ct.getExtraInfo("peername"), saddr);
          const caddr = ct.getExtraInfo("sockname");
          assert.ok(caddr);

          const atServer = sp.nextDatagram();
          const atClient = cp.nextDatagram();
          ct.sendto(enc("xxx"));
          const [sdata, from] = await atServer;
          assert.equal(dec(sdata), "xxx");
          assert.equal(sp.nbytes, 3);
          assert.deepEqual(from, caddr);
          const [cdata, replier] = await atClient;
          assert.equal(dec(cdata), "resp:xxx");
          assert.equal(cp.nbytes, 8);
          assert.deepEqual(replier, saddr);

          ct.close();
          assert.equal(await cp.done, null);
          assert.equal(cp.state, "CLOSED");
          st.close();
          await sp.done;
          assert.deepEqual([...sp.problems, ...cp.problems], []);
        }),
    );
  }

  it("sock= takes a bound datagram socket (test_create_datagram_endpoint_sock)", () =>
    runNet(async (loop) => {
      const infos = await loop.getaddrinfo("127.0.0.1", 0, {
        type: SOCK_DGRAM,
      });
      const [family, type, proto, , address] = infos[0];
      assert.equal(type, SOCK_DGRAM);
      const sock = new Socket(family, type, proto);
      sock.bind(address);
      const [tr, pr] = await loop.createDatagramEndpoint(
        () => new MyDatagramProto(loop),
        { sock },
      );
      assert.ok(tr instanceof DatagramTransport);
      assert.ok(pr instanceof MyDatagramProto);
      assert.deepEqual(tr.getExtraInfo("sockname"), sock.getsockname());
      assert.equal(
        (tr.getExtraInfo("socket") as Socket).fileno(),
        sock.fileno(),
      );
      tr.close();
      assert.equal(await pr.done, null);
    }));

  it("sock= with localAddr, or a stream socket, is a RangeError", () =>
    runNet(async (loop) => {
      const udp = new Socket(AF_INET, SOCK_DGRAM);
      const tcp = new Socket(AF_INET, SOCK_STREAM);
      try {
        await assertRejects(
          loop.createDatagramEndpoint(() => new MyDatagramProto(loop), {
            sock: udp,
            localAddr: ["127.0.0.1", 0],
          }),
          (e) => {
            assert.ok(e instanceof RangeError, `got ${String(e)}`);
            assert.match(e.message, /localAddr|local_addr/);
          },
        );
        await assertRejects(
          loop.createDatagramEndpoint(() => new MyDatagramProto(loop), {
            sock: tcp,
          }),
          (e) => {
            assert.ok(e instanceof RangeError, `got ${String(e)}`);
            assert.match(e.message, /A datagram socket was expected/i);
          },
        );
      } finally {
        udp.close();
        tcp.close();
      }
    }));

  it("unconnected endpoints sendto any address; a send to a dead port does not stop receiving (test_datagram_send_to_non_listening_address)", () =>
    runNet(async (loop) => {
      const make = () =>
        loop.createDatagramEndpoint(() => new MyDatagramProto(loop), {
          localAddr: ["127.0.0.1", 0],
        });
      const [t1, p1] = await make();
      const [t2, p2] = await make();
      const [t3] = await make();
      const addr1 = inet(t1.getExtraInfo("sockname"));
      const addr2 = inet(t2.getExtraInfo("sockname"));
      const addr3 = inet(t3.getExtraInfo("sockname"));
      assert.equal(t1.getExtraInfo("peername", null), null);
      t3.abort();

      let got = p2.nextDatagram();
      t1.sendto(enc("a"), addr2);
      let [data, from] = await got;
      assert.equal(dec(data), "a");
      assert.deepEqual(from, addr1);

      got = p1.nextDatagram();
      t2.sendto(enc("b"), addr1);
      [data, from] = await got;
      assert.equal(dec(data), "b");
      assert.deepEqual(from, addr2);

      t1.sendto(enc("c"), addr3); // nobody there any more
      await sleep(0);

      got = p1.nextDatagram();
      t2.sendto(enc("d"), addr1);
      [data] = await got;
      assert.equal(dec(data), "d");
      // An unconnected UDP socket gets no ICMP errors.
      assert.deepEqual(p1.errors, []);
      for (const t of [t1, t2]) t.close();
      await p1.done;
      await p2.done;
    }));

  it("a connected endpoint reports ECONNREFUSED from a dead port through errorReceived", () =>
    runNet(async (loop) => {
      const dead = new Socket(AF_INET, SOCK_DGRAM);
      dead.bind(["127.0.0.1", 0]);
      const deadAddr = inet(dead.getsockname());
      dead.close();
      const [tr, pr] = await loop.createDatagramEndpoint(
        () => new MyDatagramProto(loop),
        { remoteAddr: deadAddr },
      );
      const error = pr.nextError();
      tr.sendto(enc("anyone?"));
      const exc = await error;
      assert.ok(exc instanceof ConnectionRefusedError, `got ${String(exc)}`);
      assert.equal((exc as OSError).code, "ECONNREFUSED");
      // The endpoint stays usable.
      assert.equal(pr.state, "INITIALIZED");
      assert.equal(tr.isClosing(), false);
      tr.close();
      await pr.done;
    }));

  it("a connected endpoint refuses another address: RangeError", () =>
    runNet(async (loop) => {
      const [st, sp] = await loop.createDatagramEndpoint(
        () => new MyDatagramProto(loop),
        { localAddr: ["127.0.0.1", 0] },
      );
      const saddr = inet(st.getExtraInfo("sockname"));
      const [ct, cp] = await loop.createDatagramEndpoint(
        () => new MyDatagramProto(loop),
        { remoteAddr: saddr },
      );
      try {
        assert.throws(
          () => ct.sendto(enc("x"), ["127.0.0.1", saddr[1] === 9 ? 10 : 9]),
          (e: unknown) => {
            assert.ok(e instanceof RangeError, `got ${String(e)}`);
            assert.match(e.message, /Invalid address/);
            return true;
          },
        );
        // The connected address itself is fine.
        const got = sp.nextDatagram();
        ct.sendto(enc("ok"), saddr);
        assert.equal(dec((await got)[0]), "ok");
      } finally {
        ct.close();
        st.close();
        await cp.done;
        await sp.done;
      }
    }));

  it("allowBroadcast sets SO_BROADCAST; reusePort lets two endpoints share a port", () =>
    runNet(async (loop) => {
      const [plain, pp] = await loop.createDatagramEndpoint(
        () => new MyDatagramProto(loop),
        { localAddr: ["127.0.0.1", 0] },
      );
      const [bcast, bp] = await loop.createDatagramEndpoint(
        () => new MyDatagramProto(loop),
        { localAddr: ["127.0.0.1", 0], allowBroadcast: true },
      );
      const sockOf = (t: DatagramTransport) =>
        t.getExtraInfo("socket") as Socket;
      assert.equal(sockOf(plain).getsockopt(SOL_SOCKET, SO_BROADCAST), 0);
      assert.notEqual(sockOf(bcast).getsockopt(SOL_SOCKET, SO_BROADCAST), 0);

      const [r1, rp1] = await loop.createDatagramEndpoint(
        () => new MyDatagramProto(loop),
        { localAddr: ["127.0.0.1", 0], reusePort: true },
      );
      const port = inet(r1.getExtraInfo("sockname"))[1];
      const [r2, rp2] = await loop.createDatagramEndpoint(
        () => new MyDatagramProto(loop),
        { localAddr: ["127.0.0.1", port], reusePort: true },
      );
      assert.equal(inet(r2.getExtraInfo("sockname"))[1], port);
      assert.notEqual(sockOf(r2).getsockopt(SOL_SOCKET, SO_REUSEPORT), 0);
      for (const t of [plain, bcast, r1, r2]) t.close();
      for (const p of [pp, bp, rp1, rp2]) await p.done;
    }));
});

describe("sock_* operations (test_sock_lowlevel.py)", () => {
  it("sockConnect, sockSendall, sockRecv against a server (test_sock_client_ops)", () =>
    runNet(async (loop) => {
      const httpd = startHttpServer(loop);
      const sock = new Socket(AF_INET, SOCK_STREAM);
      try {
        await loop.sockConnect(sock, httpd.address);
        assert.deepEqual(sock.getpeername(), httpd.address);
        await loop.sockSendall(sock, enc("GET / HTTP/1.0\r\n\r\n"));
        const data = await loop.sockRecv(sock, 1024);
        assert.ok(data instanceof Uint8Array);
        // consume data
        const rest = await readAll(loop, sock);
        assert.match(dec(concat([data, rest])), /^HTTP\/1\.0 200 OK/);
        // At EOF sockRecv resolves with an empty array.
        assert.equal((await loop.sockRecv(sock, 1024)).length, 0);
      } finally {
        sock.close();
        await httpd.close();
      }
    }));

  it("sockRecvInto fills a buffer and its subarrays (test_sock_client_ops recv_into)", () =>
    runNet(async (loop) => {
      const httpd = startHttpServer(loop);
      const sock = new Socket(AF_INET, SOCK_STREAM);
      try {
        await loop.sockConnect(sock, httpd.address);
        await loop.sockSendall(sock, enc("GET / HTTP/1.0\r\n\r\n"));
        const data = new Uint8Array(1024);
        let total = 0;
        for (;;) {
          const n = await loop.sockRecvInto(sock, data.subarray(total));
          if (n === 0) break;
          total += n;
        }
        assert.ok(total > 0);
        assert.match(dec(data.subarray(0, total)), /^HTTP\/1\.0 200 OK/);
      } finally {
        sock.close();
        await httpd.close();
      }
    }));

  it("sockConnect to a closed port: ConnectionRefusedError (test_sock_client_fail)", () =>
    runNet(async (loop) => {
      const [bound, address] = refusingAddress();
      const sock = new Socket(AF_INET, SOCK_STREAM);
      try {
        await assertRejects(
          loop.sockConnect(sock, address),
          isRefused(address),
        );
        // The failed connect left no watcher behind.
        assert.equal(watchedEvents(loop, sock), 0);
      } finally {
        sock.close();
        bound.close();
      }
    }));

  it("sockConnect resolves a host name (localhost)", () =>
    runNet(async (loop) => {
      const lsock = listener();
      const sock = new Socket(AF_INET, SOCK_STREAM);
      try {
        const port = portOf(lsock);
        const accepting = loop.sockAccept(lsock);
        await loop.sockConnect(sock, ["localhost", port]);
        assert.deepEqual(sock.getpeername(), ["127.0.0.1", port]);
        const [conn] = await accepting;
        conn.close();
      } finally {
        sock.close();
        lsock.close();
      }
    }));

  it("sockAccept returns a non-blocking close-on-exec socket and the peer (test_sock_accept)", () =>
    runNet(async (loop) => {
      const lsock = listener(1);
      const client = new Socket(AF_INET, SOCK_STREAM);
      try {
        const connecting = loop.sockConnect(client, lsock.getsockname());
        const [conn, addr] = await loop.sockAccept(lsock);
        await connecting;
        try {
          assert.ok(conn instanceof Socket);
          assert.equal(conn.family, AF_INET);
          assert.equal(conn.type, SOCK_STREAM);
          const flags = fdFlags(conn.fileno());
          assert.ok(flags & O_NONBLOCK, "accepted socket is non-blocking");
          assert.ok(flags & O_CLOEXEC, "accepted socket is close-on-exec");
          assert.deepEqual(addr, client.getsockname());
          assert.deepEqual(client.getpeername(), lsock.getsockname());
          assert.deepEqual(conn.getpeername(), client.getsockname());
        } finally {
          conn.close();
        }
        // Our own sockets are non-blocking and close-on-exec too.
        const own = fdFlags(client.fileno());
        assert.ok(own & O_NONBLOCK && own & O_CLOEXEC);
      } finally {
        client.close();
        lsock.close();
      }
    }));

  it("a timed-out sockAccept removes its watcher; the next one works (test_cancel_sock_accept)", () =>
    runNet(async (loop) => {
      const lsock = listener(1);
      const address = inet(lsock.getsockname());
      try {
        await assertRejects(
          waitFor(loop.sockAccept(lsock), 50),
          (e) => assert.ok(e instanceof TimeoutError, `got ${String(e)}`),
        );
        await sleep(0);
        assert.equal(watchedEvents(loop, lsock), 0);
        // The next accept works.
        const client = new Socket(AF_INET, SOCK_STREAM);
        try {
          const connecting = loop.sockConnect(client, address);
          const [conn] = await loop.sockAccept(lsock);
          await connecting;
          conn.close();
        } finally {
          client.close();
        }
      } finally {
        lsock.close();
      }
      const client = new Socket(AF_INET, SOCK_STREAM);
      try {
        await assertRejects(
          loop.sockConnect(client, address),
          isRefused(address),
        );
      } finally {
        client.close();
      }
    }));

  it("cancelling a pending sockRecv removes its watcher; the next recv gets the data (test_prompt_cancellation)", () =>
    runNet(async (loop) => {
      const [r, w] = socketpair();
      try {
        // As a task, cancelled from a callback.
        const f = loop.createTask(() => loop.sockRecv(r, 1));
        const main = loop.createTask(async () => {
          try {
            loop.callSoon(() => f.cancel());
            await f;
          } catch (e) {
            if (e instanceof CancelledError) return "cancelled";
            throw e;
          }
          return null;
        });
        assert.equal(await main, "cancelled");
        assert.equal(f.cancelled(), true);
        await sleep(0);
        assert.equal(watchedEvents(loop, r), 0);

        // The future itself, cancelled directly.
        const fut = loop.sockRecv(r, 1) as Future<Uint8Array>;
        assert.equal(typeof fut.cancel, "function");
        await sleep(0);
        assert.ok(watchedEvents(loop, r) & EVENT_READ, "waits for readable");
        assert.equal(fut.cancel(), true);
        await assertRejects(fut, (e) => assert.ok(e instanceof CancelledError));
        await sleep(0);
        assert.equal(watchedEvents(loop, r), 0);

        await loop.sockSendall(w, enc("x"));
        assert.equal(dec(await loop.sockRecv(r, 1)), "x");
      } finally {
        r.close();
        w.close();
      }
    }));

  it("a task cancelled while it awaits a native promise cancels the sock op it awaits next (no watcher left)", () =>
    runNet(async (loop) => {
      const [a, b] = socketpair();
      try {
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        const started = loop.createFuture<void>();
        let op: Future<Uint8Array> | null = null;
        const task = loop.createTask(async () => {
          started.setResult();
          await gate; // a native promise: the cancel waits for the next await
          op = loop.sockRecv(a, 1) as Future<Uint8Array>;
          await op;
        });
        await started;
        assert.equal(task.cancel(), true);
        release();
        await assertRejects(
          task,
          (e) => assert.ok(e instanceof CancelledError),
        );
        await sleep(0);
        assert.ok(op !== null, "the task went on to sockRecv");
        const pending = op as Future<Uint8Array>;
        // asyncio's Task.__step cancels the future it is about to wait for
        // when a cancel is pending, and that removes the watcher.
        assert.equal(pending.cancelled(), true);
        assert.equal(watchedEvents(loop, a), 0);
      } finally {
        a.close();
        b.close();
      }
    }));

  it("a cancelled sockRecv does not eat the data of the next one (test_sock_client_racing recv)", () =>
    runNet(async (loop) => {
      const httpd = startHttpServer(loop);
      const sock = new Socket(AF_INET, SOCK_STREAM);
      try {
        await loop.sockConnect(sock, httpd.address);
        const task = loop.createTask(() => loop.sockRecv(sock, 1024));
        await sleep(0);
        task.cancel();
        const sending = loop.createTask(() =>
          loop.sockSendall(sock, enc("GET / HTTP/1.0\r\n\r\n"))
        );
        const data = await loop.sockRecv(sock, 1024);
        await readAll(loop, sock); // consume data
        await sending;
        assert.equal(task.cancelled(), true);
        assert.match(dec(data), /^HTTP\/1\.0 200 OK/);
      } finally {
        sock.close();
        await httpd.close();
      }
    }));

  it("a cancelled sockRecvInto does not eat the data of the next one (test_sock_client_racing recv_into)", () =>
    runNet(async (loop) => {
      const httpd = startHttpServer(loop);
      const sock = new Socket(AF_INET, SOCK_STREAM);
      try {
        await loop.sockConnect(sock, httpd.address);
        const data = new Uint8Array(1024);
        const task = loop.createTask(() => loop.sockRecvInto(sock, data));
        await sleep(0);
        task.cancel();
        const sending = loop.createTask(() =>
          loop.sockSendall(sock, enc("GET / HTTP/1.0\r\n\r\n"))
        );
        let total = await loop.sockRecvInto(sock, data);
        for (;;) {
          const n = await loop.sockRecvInto(sock, data.subarray(total));
          if (n === 0) break;
          total += n;
        }
        await sending;
        assert.match(dec(data.subarray(0, total)), /^HTTP\/1\.0 200 OK/);
      } finally {
        sock.close();
        await httpd.close();
      }
    }));

  it("a cancelled blocked sockSendall sends nothing; the next one goes through (test_sock_client_racing send)", () =>
    runNet(async (loop) => {
      const lsock = listener(1);
      const sock = new Socket(AF_INET, SOCK_STREAM);
      try {
        sock.setsockopt(SOL_SOCKET, SO_SNDBUF, 1024);
        const connecting = loop.createTask(() =>
          loop.sockConnect(sock, lsock.getsockname())
        );
        await sleep(0);
        const [server] = await loop.sockAccept(lsock);
        try {
          await connecting;
          // Fill the buffers until sending 4 bytes would block.
          for (let size = 8192; size >= 4; size = Math.floor(size / 2)) {
            const chunk = new Uint8Array(size).fill(0x20);
            while (nb(sock).send(chunk) !== null) { /* fill */ }
          }
          const blocked = loop.createTask(() =>
            loop.sockSendall(sock, enc("hello"))
          );
          await sleep(0);
          assert.ok(watchedEvents(loop, sock) & EVENT_WRITE);
          blocked.cancel();
          // Receive everything that is not a space.
          const receiving = loop.createTask(async () => {
            const kept: number[] = [];
            for (;;) {
              const buf = await loop.sockRecv(server, 8192);
              if (buf.length === 0) return dec(new Uint8Array(kept));
              for (const b of buf) if (b !== 0x20) kept.push(b);
            }
          });
          await loop.sockSendall(sock, enc("world"));
          sock.shutdown(SHUT_WR);
          assert.equal(await receiving, "world");
          assert.equal(blocked.cancelled(), true);
        } finally {
          server.close();
        }
      } finally {
        sock.close();
        lsock.close();
      }
    }));

  it("a 1 MB sockSendall takes several writable events; the echo comes back intact (test_huge_content)", () =>
    runNet(async (loop) => {
      const httpd = startHttpServer(loop);
      const sock = new Socket(AF_INET, SOCK_STREAM);
      try {
        sock.setsockopt(SOL_SOCKET, SO_SNDBUF, 4096);
        const DATA_SIZE = 1_000_000;
        await loop.sockConnect(sock, httpd.address);
        await loop.sockSendall(
          sock,
          enc(`POST /loop HTTP/1.0\r\nContent-Length: ${DATA_SIZE}\r\n\r\n`),
        );
        const sending = loop.sockSendall(sock, digits(DATA_SIZE)) as Future<
          void
        >;
        // The kernel took a part; the rest waits for writable events.
        assert.equal(sending.done(), false);
        await sleep(0);
        assert.ok(watchedEvents(loop, sock) & EVENT_WRITE);

        let data = await loop.sockRecv(sock, DATA_SIZE);
        assert.match(dec(data.subarray(0, 15)), /^HTTP\/1\.0 200 OK/);
        while (find(data, enc("\r\n\r\n")) < 0) {
          data = concat([data, await loop.sockRecv(sock, DATA_SIZE)]);
        }
        let body = data.subarray(find(data, enc("\r\n\r\n")) + 4);
        let size = 0;
        for (;;) {
          assert.deepEqual(body, digits(body.length, size));
          size += body.length;
          body = await loop.sockRecv(sock, DATA_SIZE);
          if (body.length === 0) break;
        }
        assert.equal(size, DATA_SIZE);
        await sending;
        assert.equal(watchedEvents(loop, sock) & EVENT_WRITE, 0);
      } finally {
        sock.close();
        await httpd.close();
      }
    }));

  it("sockSendto and sockRecvfrom with a UDP echo server (test_recvfrom)", () =>
    runNet(async (loop) => {
      const echo = startUdpEchoServer(loop);
      const sock = new Socket(AF_INET, SOCK_DGRAM);
      try {
        const data = new Uint8Array(4096).fill(1);
        assert.equal(await loop.sockSendto(sock, data, echo.address), 4096);
        const [received, from] = await loop.sockRecvfrom(sock, 4096);
        assert.deepEqual(received, data);
        assert.deepEqual(from, echo.address);
      } finally {
        sock.close();
        await echo.close();
      }
    }));

  it("sockRecvfromInto with and without nbytes (test_recvfrom_into)", () =>
    runNet(async (loop) => {
      const echo = startUdpEchoServer(loop);
      const sock = new Socket(AF_INET, SOCK_DGRAM);
      try {
        const data = new Uint8Array(4096).fill(1);
        let buf = new Uint8Array(4096);
        await loop.sockSendto(sock, data, echo.address);
        let [n, from] = await loop.sockRecvfromInto(sock, buf);
        assert.equal(n, 4096);
        assert.deepEqual(buf, data);
        assert.deepEqual(from, echo.address);

        buf = new Uint8Array(8192);
        await loop.sockSendto(sock, data, echo.address);
        [n, from] = await loop.sockRecvfromInto(sock, buf, 4096);
        assert.equal(n, 4096);
        assert.deepEqual(buf.subarray(0, 4096), data);
        assert.deepEqual(buf.subarray(4096), new Uint8Array(4096));
        assert.deepEqual(from, echo.address);
      } finally {
        sock.close();
        await echo.close();
      }
    }));

  it("sockSendfile sends a slice of a file, then the rest", () =>
    runNet(async (loop) => {
      const path = join(tmpdir(), `aioloop-net-${pid}-sendfile.bin`);
      const SIZE = 1 << 20;
      writeFileSync(path, digits(SIZE));
      const fd = openSync(path, "r");
      const [a, b] = socketpair();
      try {
        // A slice, with a file object.
        let reading = loop.createTask(async () => {
          const chunks: Uint8Array[] = [];
          let n = 0;
          while (n < 5000) {
            const d = await loop.sockRecv(b, 65536);
            if (d.length === 0) break;
            chunks.push(d);
            n += d.length;
          }
          return concat(chunks);
        });
        const sent = await loop.sockSendfile(a, { fileno: () => fd }, 7, 5000);
        assert.equal(sent, 5000);
        assert.deepEqual(await reading, digits(5000, 7));

        // The rest of the file from an offset, with a number: several
        // writable events for a 1 MiB file over a socketpair.
        reading = loop.createTask(() => readAll(loop, b));
        const total = await loop.sockSendfile(a, fd, 1000);
        assert.equal(total, SIZE - 1000);
        a.shutdown(SHUT_WR);
        const rest = await reading;
        assert.equal(rest.length, SIZE - 1000);
        assert.deepEqual(rest, digits(SIZE - 1000, 1000));
      } finally {
        a.close();
        b.close();
        closeSync(fd);
        rmSync(path, { force: true });
      }
    }));

  it("sock ops on a closed loop fail with RuntimeError", async () => {
    const before = openFds();
    const loop = newLoop();
    const [a, b] = socketpair();
    loop.close();
    try {
      let settled: unknown = "pending";
      const timer = new Promise((r) => setTimeout(r, 1000));
      await Promise.race([
        (async () => {
          try {
            await loop.sockRecv(a, 1);
            settled = "resolved";
          } catch (e) {
            settled = e;
          }
        })(),
        timer,
      ]);
      assert.ok(settled instanceof RuntimeError, `got ${String(settled)}`);
      assert.match((settled as Error).message, /Event loop is closed/);
    } finally {
      a.close();
      b.close();
    }
    await assertNoNewFds(before);
  });

  it("sock ops refuse a socket that a transport owns (RuntimeError)", () =>
    runNet(async (loop) => {
      const [a, b] = socketpair();
      const [tr, pr] = await loop.connectAcceptedSocket(
        () => new MyProto(loop),
        a,
      );
      try {
        const sock = tr.getExtraInfo("socket") as Socket;
        await assertRejects(loop.sockRecv(sock, 1), (e) => {
          assert.ok(e instanceof RuntimeError, `got ${String(e)}`);
          assert.match(e.message, /is used by transport/);
        });
        assert.throws(() => loop.addReader(sock, () => {}), {
          name: "RuntimeError",
          message: /is used by transport/,
        });
        assert.throws(() => loop.removeWriter(sock), {
          name: "RuntimeError",
          message: /is used by transport/,
        });
      } finally {
        tr.close();
        b.close();
        await pr.done;
      }
    }));
});

describe("addReader/addWriter on Socket objects (test_events.py reader/writer callbacks)", () => {
  it("reader and writer callbacks on a socketpair of Sockets", () =>
    runNet(async (loop) => {
      const [r, w] = socketpair();
      try {
        const got: string[] = [];
        const eof = loop.createFuture<boolean>();
        loop.addReader(r, () => {
          const data = nb(r).recv(1024);
          if (data === null) return; // spurious wakeup
          if (data.length > 0) {
            got.push(dec(data));
            return;
          }
          eof.setResult(loop.removeReader(r));
        });
        let writes = 0;
        const wrote = loop.createFuture<void>();
        loop.addWriter(w, (text: string) => {
          assert.equal(nb(w).send(enc(text)), text.length);
          if (++writes === 2) {
            assert.equal(loop.removeWriter(w), true);
            assert.equal(loop.removeWriter(w), false);
            wrote.setResult();
          }
        }, "abc");
        await wrote;
        loop.callSoon(() => w.shutdown(SHUT_WR));
        assert.equal(await eof, true);
        assert.equal(got.join(""), "abcabc");
        assert.equal(loop.removeReader(r), false);
      } finally {
        r.close();
        w.close();
      }
    }));
});

describe("getaddrinfo / getnameinfo", () => {
  it("numeric IPv4: one entry per socket type asked for", () =>
    runNet(async (loop) => {
      assert.deepEqual(
        await loop.getaddrinfo("127.0.0.1", 80, { type: SOCK_STREAM }),
        [[AF_INET, SOCK_STREAM, IPPROTO_TCP, "", ["127.0.0.1", 80]]],
      );
      const dgram = await loop.getaddrinfo("127.0.0.1", "53", {
        type: SOCK_DGRAM,
      });
      assert.deepEqual(dgram, [
        [AF_INET, SOCK_DGRAM, IPPROTO_UDP, "", ["127.0.0.1", 53]],
      ]);
    }));

  it("numeric IPv6 (::1) gives 4-tuples", () =>
    runNet(async (loop) => {
      assert.deepEqual(
        await loop.getaddrinfo("::1", 443, { type: SOCK_STREAM }),
        [[AF_INET6, SOCK_STREAM, IPPROTO_TCP, "", ["::1", 443, 0, 0]]],
      );
      const all = await loop.getaddrinfo("::1", 0);
      assert.ok(all.length >= 2);
      for (const [family, , , , addr] of all) {
        assert.equal(family, AF_INET6);
        assert.deepEqual(addr, ["::1", 0, 0, 0]);
      }
    }));

  it("localhost resolves to 127.0.0.1; family filters", () =>
    runNet(async (loop) => {
      const infos = await loop.getaddrinfo("localhost", 8080, {
        family: AF_INET,
        type: SOCK_STREAM,
      });
      assert.ok(infos.length >= 1);
      for (const [family, type, , , addr] of infos) {
        assert.equal(family, AF_INET);
        assert.equal(type, SOCK_STREAM);
        assert.equal(inet(addr)[1], 8080);
      }
      assert.ok(
        infos.some(([, , , , addr]) => inet(addr)[0] === "127.0.0.1"),
        JSON.stringify(infos),
      );
    }));

  it("a name that does not resolve is a GaiError (an OSError)", () =>
    runNet(async (loop) => {
      await assertRejects(
        loop.getaddrinfo("nonexistent.invalid", 80),
        (e) => {
          assert.ok(e instanceof GaiError, `got ${String(e)}`);
          assert.ok(e instanceof OSError);
          assert.equal(e.syscall, "getaddrinfo");
          // NXDOMAIN, or no answer at all on a machine without DNS.
          assert.match(e.code, /^EAI_(NONAME|AGAIN|FAIL|NODATA)$/);
          // The OS's number for that name (glibc's are negative, macOS's not).
          assert.equal(e.errno, hostTable.gaiErrors[e.code], e.code);
        },
      );
      // A name where only a number is allowed: EAI_NONAME, no DNS involved.
      await assertRejects(
        loop.getaddrinfo("localhost", 80, { flags: AI_NUMERICHOST }),
        (e) => {
          assert.ok(e instanceof GaiError, `got ${String(e)}`);
          assert.equal(e.code, "EAI_NONAME");
          assert.equal(e.errno, hostTable.gaiErrors.EAI_NONAME);
        },
      );
    }));

  it("getnameinfo: numeric and named", () =>
    runNet(async (loop) => {
      assert.deepEqual(
        await loop.getnameinfo(
          ["127.0.0.1", 80],
          NI_NUMERICHOST | NI_NUMERICSERV,
        ),
        ["127.0.0.1", "80"],
      );
      assert.deepEqual(
        await loop.getnameinfo(
          ["::1", 8080, 0, 0],
          NI_NUMERICHOST | NI_NUMERICSERV,
        ),
        ["::1", "8080"],
      );
      // /etc/hosts and /etc/services.
      assert.deepEqual(await loop.getnameinfo(["127.0.0.1", 80]), [
        "localhost",
        "http",
      ]);
    }));
});

describe("transports", () => {
  /** A connected pair: the client's [transport, protocol] and the server side. */
  async function connectedPair(
    loop: SelectorEventLoop,
    { serverProto, rcvbuf }: {
      serverProto?: () => MyProto;
      rcvbuf?: number;
    } = {},
  ) {
    const accepted = new Accepted(loop, serverProto);
    const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
    const port = portOf(server.sockets[0]);
    let client: Socket | null = null;
    if (rcvbuf !== undefined) {
      client = await connectTo(loop, ["127.0.0.1", port], { rcvbuf });
    }
    const [tr, pr] = client
      ? await loop.connectAcceptedSocket(() => new MyProto(loop), client)
      : await loop.createConnection(
        () => new MyProto(loop),
        "127.0.0.1",
        port,
      );
    const sp = await accepted.next();
    return {
      server,
      port,
      tr,
      pr,
      sp,
      async close() {
        tr.close();
        sp.transport!.close();
        await pr.done;
        await sp.done;
        server.close();
        await server.waitClosed();
      },
    };
  }

  it("getExtraInfo: peername, sockname, socket, defaults; TCP_NODELAY is on", () =>
    runNet(async (loop) => {
      const c = await connectedPair(loop);
      try {
        const { tr, sp, port } = c;
        assert.deepEqual(tr.getExtraInfo("peername"), ["127.0.0.1", port]);
        assert.deepEqual(
          tr.getExtraInfo("sockname"),
          sp.transport!.getExtraInfo("peername"),
        );
        const sock = tr.getExtraInfo("socket") as Socket;
        assert.equal(typeof sock.fileno(), "number");
        assert.ok(sock.fileno() >= 0);
        assert.deepEqual(sock.getsockname(), tr.getExtraInfo("sockname"));
        assert.equal(sock.family, AF_INET);
        assert.equal(sock.type, SOCK_STREAM);
        assert.notEqual(sock.getsockopt(IPPROTO_TCP, TCP_NODELAY), 0);
        assert.equal(tr.getExtraInfo("no such thing"), undefined);
        assert.equal(tr.getExtraInfo("no such thing", "dflt"), "dflt");
      } finally {
        await c.close();
      }
    }));

  it("write, writelines, setProtocol / getProtocol", () =>
    runNet(async (loop) => {
      const c = await connectedPair(loop);
      try {
        const { tr, pr, sp } = c;
        tr.write(enc("a"));
        tr.writelines([enc("b"), enc("c"), new Uint8Array(0)]);
        await sp.waitBytes(3);
        assert.equal(sp.text(), "abc");
        assert.equal(tr.getProtocol(), pr);
        const other = new MyProto(loop);
        tr.setProtocol(other);
        assert.equal(tr.getProtocol(), other);
        sp.transport!.write(enc("to the new one"));
        await other.waitBytes(14);
        assert.equal(other.text(), "to the new one");
        assert.equal(pr.nbytes, 0);
        tr.setProtocol(pr);
      } finally {
        await c.close();
      }
    }));

  it("pauseReading / resumeReading / isReading (test_selector_events pause_reading)", () =>
    runNet(async (loop) => {
      const c = await connectedPair(loop);
      try {
        const { tr, sp } = c;
        const st = sp.transport!;
        const ssock = st.getExtraInfo("socket") as Socket;
        assert.equal(st.isReading(), true);
        assert.ok(watchedEvents(loop, ssock) & EVENT_READ);
        st.pauseReading();
        assert.equal(st.isReading(), false);
        assert.equal(watchedEvents(loop, ssock) & EVENT_READ, 0);
        st.pauseReading(); // idempotent
        assert.equal(st.isReading(), false);
        tr.write(enc("while paused"));
        await sleep(30); // the data sits in the kernel meanwhile
        assert.equal(sp.nbytes, 0);
        st.resumeReading();
        assert.equal(st.isReading(), true);
        st.resumeReading(); // idempotent
        await sp.waitBytes(12);
        assert.equal(sp.text(), "while paused");
        st.close();
        assert.equal(st.isReading(), false);
        st.pauseReading(); // no-ops once closing
        st.resumeReading();
        assert.equal(st.isReading(), false);
      } finally {
        await c.close();
      }
    }));

  it("write buffer limits: defaults, setWriteBufferLimits, bad values", () =>
    runNet(async (loop) => {
      const c = await connectedPair(loop);
      try {
        const { tr } = c;
        assert.deepEqual(tr.getWriteBufferLimits(), [16384, 65536]);
        tr.setWriteBufferLimits(4096);
        assert.deepEqual(tr.getWriteBufferLimits(), [1024, 4096]);
        tr.setWriteBufferLimits(8192, 2048);
        assert.deepEqual(tr.getWriteBufferLimits(), [2048, 8192]);
        tr.setWriteBufferLimits(null, 100);
        assert.deepEqual(tr.getWriteBufferLimits(), [100, 400]);
        tr.setWriteBufferLimits(0);
        assert.deepEqual(tr.getWriteBufferLimits(), [0, 0]);
        assert.throws(() => tr.setWriteBufferLimits(100, 200), RangeError);
        assert.throws(() => tr.setWriteBufferLimits(100, -1), RangeError);
        tr.setWriteBufferLimits();
        assert.deepEqual(tr.getWriteBufferLimits(), [16384, 65536]);
        assert.equal(tr.getWriteBufferSize(), 0);
      } finally {
        await c.close();
      }
    }));

  it("pauseWriting above the high mark, resumeWriting at the low mark", () =>
    runNet(async (loop) => {
      class FlowProto extends MyProto {
        readonly flow: [string, number][] = [];
        readonly resumed = this.loop.createFuture<void>();
        override pauseWriting(): void {
          this.flow.push(["pause", this.transport!.getWriteBufferSize()]);
        }
        override resumeWriting(): void {
          this.flow.push(["resume", this.transport!.getWriteBufferSize()]);
          if (!this.resumed.done()) this.resumed.setResult();
        }
      }
      const c = await connectedPair(loop, {
        serverProto: () => new FlowProto(loop),
        rcvbuf: 4096,
      });
      try {
        const sp = c.sp as FlowProto;
        const st = sp.transport!;
        (st.getExtraInfo("socket") as Socket).setsockopt(
          SOL_SOCKET,
          SO_SNDBUF,
          4096,
        );
        c.tr.pauseReading(); // the client reads nothing for now
        st.setWriteBufferLimits(8192, 2048);
        const N = 256 * 1024;
        st.write(digits(N));
        // Called from write() itself, once.
        assert.equal(sp.flow.length, 1);
        assert.equal(sp.flow[0][0], "pause");
        assert.ok(sp.flow[0][1] > 8192, `buffer ${sp.flow[0][1]}`);
        st.write(digits(10, N % 10));
        assert.equal(sp.flow.length, 1, "no second pauseWriting");
        c.tr.resumeReading();
        await sp.resumed;
        assert.equal(sp.flow.length, 2);
        assert.equal(sp.flow[1][0], "resume");
        assert.ok(sp.flow[1][1] <= 2048, `buffer ${sp.flow[1][1]}`);
        await c.pr.waitBytes(N + 10);
        assert.deepEqual(concat(c.pr.chunks), digits(N + 10));
        assert.equal(st.getWriteBufferSize(), 0);
        assert.deepEqual(sp.flow.map(([what]) => what), ["pause", "resume"]);
      } finally {
        await c.close();
      }
    }));

  it("lowering the high mark under the buffered size pauses at once", () =>
    runNet(async (loop) => {
      class FlowProto extends MyProto {
        paused = 0;
        override pauseWriting(): void {
          this.paused++;
        }
      }
      const c = await connectedPair(loop, {
        serverProto: () => new FlowProto(loop),
        rcvbuf: 4096,
      });
      try {
        const sp = c.sp as FlowProto;
        const st = sp.transport!;
        (st.getExtraInfo("socket") as Socket).setsockopt(
          SOL_SOCKET,
          SO_SNDBUF,
          4096,
        );
        c.tr.pauseReading();
        st.write(digits(40000));
        const buffered = st.getWriteBufferSize();
        assert.ok(buffered > 1024 && buffered <= 65536, `buffer ${buffered}`);
        assert.equal(sp.paused, 0);
        st.setWriteBufferLimits(1024);
        assert.equal(sp.paused, 1);
        c.tr.resumeReading();
        await c.pr.waitBytes(40000);
      } finally {
        await c.close();
      }
    }));

  it("writeEof: the peer's eofReceived() keeping the transport open (half-close)", () =>
    runNet(async (loop) => {
      const c = await connectedPair(loop, {
        serverProto: () => {
          const p = new MyProto(loop);
          p.keepOpenOnEof = true;
          return p;
        },
      });
      try {
        const { tr, pr, sp } = c;
        assert.equal(tr.canWriteEof(), true);
        tr.write(enc("hello"));
        tr.writeEof();
        assert.throws(() => tr.write(enc("more")), {
          name: "RuntimeError",
          message: /Cannot call write\(\) after writeEof\(\)|write_eof/,
        });
        await sp.eof;
        assert.equal(sp.text(), "hello");
        assert.equal(sp.state, "EOF");
        assert.equal(sp.transport!.isClosing(), false);
        // The other direction still works.
        sp.transport!.write(enc("bye"));
        await pr.waitBytes(3);
        assert.equal(pr.text(), "bye");
        sp.transport!.close();
        await pr.done;
        await sp.done;
        assert.deepEqual(pr.states, ["CONNECTED", "EOF", "CLOSED"]);
        assert.deepEqual(sp.states, ["CONNECTED", "EOF", "CLOSED"]);
        assert.deepEqual([...pr.problems, ...sp.problems], []);
      } finally {
        await c.close();
      }
    }));

  it("writeEof: a falsy eofReceived() closes the peer's transport", () =>
    runNet(async (loop) => {
      const c = await connectedPair(loop);
      try {
        const { tr, pr, sp } = c;
        tr.writeEof();
        await sp.done;
        assert.deepEqual(sp.states, ["CONNECTED", "EOF", "CLOSED"]);
        await pr.done;
        assert.deepEqual(pr.states, ["CONNECTED", "EOF", "CLOSED"]);
      } finally {
        await c.close();
      }
    }));

  it("abort() drops the write buffer and calls connectionLost(null)", () =>
    runNet(async (loop) => {
      const c = await connectedPair(loop, { rcvbuf: 4096 });
      try {
        const st = c.sp.transport!;
        (st.getExtraInfo("socket") as Socket).setsockopt(
          SOL_SOCKET,
          SO_SNDBUF,
          4096,
        );
        c.tr.pauseReading();
        const N = 1 << 20;
        st.write(digits(N));
        assert.ok(st.getWriteBufferSize() > 0);
        st.abort();
        assert.equal(st.isClosing(), true);
        assert.equal(await c.sp.done, null);
        assert.equal(c.sp.state, "CLOSED");
        c.tr.resumeReading();
        await c.pr.done;
        assert.ok(c.pr.nbytes < N, `${c.pr.nbytes} bytes arrived`);
      } finally {
        await c.close();
      }
    }));

  it("a BufferedProtocol receives through getBuffer/bufferUpdated", () =>
    runNet(async (loop) => {
      class Buffered extends BufferedProtocol {
        readonly buf = new Uint8Array(16);
        readonly hints: number[] = [];
        readonly pieces: Uint8Array[] = [];
        readonly done = loop.createFuture<void>();
        sawEof = false;
        override getBuffer(sizehint: number): Uint8Array {
          this.hints.push(sizehint);
          return this.buf;
        }
        override bufferUpdated(nbytes: number): void {
          assert.ok(nbytes > 0 && nbytes <= 16);
          this.pieces.push(this.buf.slice(0, nbytes));
        }
        override eofReceived(): void {
          this.sawEof = true;
        }
        override connectionLost(): void {
          this.done.setResult();
        }
      }
      const proto = new Buffered();
      const server = await loop.createServer(() => proto, "127.0.0.1", 0);
      const client = await connectTo(loop, [
        "127.0.0.1",
        portOf(server.sockets[0]),
      ]);
      try {
        await loop.sockSendall(client, digits(100));
        client.shutdown(SHUT_WR);
        await proto.done;
        assert.equal(proto.sawEof, true);
        assert.deepEqual(concat(proto.pieces), digits(100));
        assert.ok(proto.pieces.length >= 7);
        assert.ok(proto.hints.length >= 7);
      } finally {
        client.close();
        server.close();
        await server.waitClosed();
      }
    }));
});
