// Streams, ported from CPython's Lib/test/test_asyncio/test_streams.py:
// StreamReader fed by hand (read, readline, readuntil, readexactly, limits,
// EOF, exceptions), then openConnection/startServer over TCP, IPv6 and unix
// sockets (echo, drain under back-pressure, close/waitClosed, writeEof,
// async iteration, extra info, 1 MiB payloads) and the web adapters
// (toReadableStream, toWritableStream, pipeTo).
//
// Loopback and unix paths under os.tmpdir() only; every port is 0. Each
// test runs on its own loop with a deadline, fails on anything that reaches
// the loop's exception handler, and checks that no fd outlives the loop.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { assertRejects, runBriefly, runNet } from "./net_helpers.ts";
import { inet, serverPort, tmpSockPath } from "./net_helpers.ts";
import {
  assertSameBytes,
  concat,
  dec,
  enc,
  NO_IPV6,
  pattern,
} from "./net_helpers.ts";
import {
  BrokenPipeError,
  CancelledError,
  ConnectionAbortedError,
  ConnectionResetError,
  IncompleteReadError,
  LimitOverrunError,
  openConnection,
  openUnixConnection,
  Protocol,
  RuntimeError,
  type Server,
  SO_SNDBUF,
  Socket,
  SOL_SOCKET,
  startServer,
  startUnixServer,
  StreamReader,
  type StreamWriter,
  type Transport,
} from "../mod.ts";

// ---------------------------------------------------------------------------
// Bytes.

/** Splits `data` into chunks of uneven sizes. */
function unevenChunks(data: Uint8Array): Uint8Array[] {
  const sizes = [1, 7, 4096, 65536, 100_003, 3, 262_144];
  const out: Uint8Array[] = [];
  let at = 0;
  for (let k = 0; at < data.length; k++) {
    const size = sizes[k % sizes.length];
    out.push(data.subarray(at, at + size));
    at += size;
  }
  return out;
}

/** How many bytes the reader holds, from its repr ("<StreamReader 4 bytes>"). */
function buffered(reader: StreamReader): number {
  const m = /(\d+) bytes/.exec(String(reader));
  return m ? Number(m[1]) : 0;
}

/** The bytes the reader holds now, as text (consumes them; never waits). */
async function bufferText(reader: StreamReader): Promise<string> {
  const n = buffered(reader);
  return n === 0 ? "" : dec(await reader.read(n));
}

// ---------------------------------------------------------------------------
// The harness.

const DATA = "line1\nline2\nline3\n";

// ---------------------------------------------------------------------------

describe("StreamReader fed by hand (test_streams.py)", () => {
  it("feedData of nothing keeps the buffer empty; of data, holds it (test_feed_empty_data, test_feed_nonempty_data)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      stream.feedData(new Uint8Array(0));
      assert.equal(buffered(stream), 0);
      stream.feedData(enc(DATA));
      assert.equal(buffered(stream), DATA.length);
      assert.equal(await bufferText(stream), DATA);
    }));

  it("read(0) is empty and leaves the buffer (test_read_zero)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      stream.feedData(enc(DATA));
      const data = await stream.read(0);
      assert.ok(data instanceof Uint8Array);
      assert.equal(data.length, 0);
      assert.equal(await bufferText(stream), DATA);
    }));

  it("read(n) waits for data fed later (test_read)", () =>
    runNet(async (loop) => {
      const stream = new StreamReader(undefined, loop);
      const task = loop.createTask(() => stream.read(30));
      loop.callSoon(() => stream.feedData(enc(DATA)));
      assert.equal(dec(await task), DATA);
      assert.equal(buffered(stream), 0);
    }));

  it("read(n) returns at most n bytes across fed chunks (test_read_line_breaks)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      stream.feedData(enc("line1"));
      stream.feedData(enc("line2"));
      assert.equal(dec(await stream.read(5)), "line1");
      assert.equal(await bufferText(stream), "line2");
    }));

  it("read(n) at EOF is empty (test_read_eof)", () =>
    runNet(async (loop) => {
      const stream = new StreamReader();
      const task = loop.createTask(() => stream.read(1024));
      loop.callSoon(() => stream.feedEof());
      assert.equal((await task).length, 0);
      assert.equal(buffered(stream), 0);
    }));

  it("read(-1) reads until EOF (test_read_until_eof)", () =>
    runNet(async (loop) => {
      const stream = new StreamReader();
      const task = loop.createTask(() => stream.read(-1));
      loop.callSoon(() => {
        stream.feedData(enc("chunk1\n"));
        stream.feedData(enc("chunk2"));
        stream.feedEof();
      });
      assert.equal(dec(await task), "chunk1\nchunk2");
      assert.equal(buffered(stream), 0);
      assert.equal(stream.atEof(), true);
    }));

  it("read(-1) of more than the limit, fed in many chunks, is whole", () =>
    runNet(async (loop) => {
      const stream = new StreamReader(1000);
      const payload = pattern(50_000);
      const task = loop.createTask(() => stream.read());
      let at = 0;
      const feed = () => {
        if (at >= payload.length) return stream.feedEof();
        stream.feedData(payload.subarray(at, at + 777));
        at += 777;
        loop.callSoon(feed);
      };
      loop.callSoon(feed);
      assertSameBytes(await task, payload);
    }));

  it("read after setException() throws that very error (test_read_exception)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      stream.feedData(enc("line\n"));
      assert.equal(dec(await stream.read(2)), "li");
      const error = new TypeError("boom");
      stream.setException(error);
      await assertRejects(stream.read(2), (e) => assert.equal(e, error));
    }));

  it("a limit <= 0 is a RangeError (test_invalid_limit)", () =>
    runNet(async () => {
      await Promise.resolve();
      assert.throws(() => new StreamReader(0), {
        name: "RangeError",
        message: /imit/,
      });
      assert.throws(() => new StreamReader(-1), {
        name: "RangeError",
        message: /imit/,
      });
    }));

  it("read(n) is not bounded by the limit (test_read_limit)", () =>
    runNet(async () => {
      const stream = new StreamReader(3);
      stream.feedData(enc("chunk"));
      assert.equal(dec(await stream.read(5)), "chunk");
      assert.equal(buffered(stream), 0);
    }));

  it("readline waits for the newline across chunks (test_readline)", () =>
    runNet(async (loop) => {
      const stream = new StreamReader();
      stream.feedData(enc("chunk1 "));
      const task = loop.createTask(() => stream.readline());
      loop.callSoon(() => {
        stream.feedData(enc("chunk2 "));
        stream.feedData(enc("chunk3 "));
        stream.feedData(enc("\n chunk4"));
      });
      assert.equal(dec(await task), "chunk1 chunk2 chunk3 \n");
      assert.equal(await bufferText(stream), " chunk4");
    }));

  // asyncio's readline() raises ValueError on an overrun; aioloop throws
  // LimitOverrunError (documented in StreamReader.readline). Either way the
  // line is dropped from the buffer.
  it("readline over the limit with the data already there throws and drops the line (test_readline_limit_with_existing_data)", () =>
    runNet(async () => {
      let stream = new StreamReader(3);
      stream.feedData(enc("li"));
      stream.feedData(enc("ne1\nline2\n"));
      await assertRejects(stream.readline(), (e) => {
        assert.ok(e instanceof LimitOverrunError, `got ${String(e)}`);
      });
      assert.equal(await bufferText(stream), "line2\n");

      stream = new StreamReader(3);
      stream.feedData(enc("li"));
      stream.feedData(enc("ne1"));
      stream.feedData(enc("li"));
      await assertRejects(stream.readline(), (e) => {
        assert.ok(e instanceof LimitOverrunError, `got ${String(e)}`);
      });
      // No newline: everything read so far is dropped.
      assert.equal(buffered(stream), 0);
    }));

  it("atEof: only after feedEof and once the buffer is empty (test_at_eof)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      assert.equal(stream.atEof(), false);
      stream.feedData(enc("some data\n"));
      assert.equal(stream.atEof(), false);
      await stream.readline();
      assert.equal(stream.atEof(), false);
      stream.feedData(enc("some data\n"));
      stream.feedEof();
      assert.equal(stream.atEof(), false);
      await stream.readline();
      assert.equal(stream.atEof(), true);
    }));

  it("readline over the limit with data fed later; the limit is strict (test_readline_limit)", () =>
    runNet(async (loop) => {
      let stream = new StreamReader(7);
      loop.callSoon(() => {
        stream.feedData(enc("chunk1"));
        stream.feedData(enc("chunk2"));
        stream.feedData(enc("chunk3\n"));
        stream.feedEof();
      });
      await assertRejects(stream.readline(), (e) => {
        assert.ok(e instanceof LimitOverrunError, `got ${String(e)}`);
      });
      assert.equal(buffered(stream), 0);

      stream = new StreamReader(7);
      loop.callSoon(() => {
        stream.feedData(enc("chunk1"));
        stream.feedData(enc("chunk2\n"));
        stream.feedData(enc("chunk3\n"));
        stream.feedEof();
      });
      await assertRejects(stream.readline(), (e) => {
        assert.ok(e instanceof LimitOverrunError, `got ${String(e)}`);
      });
      assert.equal(await bufferText(stream), "chunk3\n");

      // Strictness: 7 bytes and the newline fit a limit of 7; 8 do not.
      stream = new StreamReader(7);
      stream.feedData(enc("1234567\n"));
      assert.equal(dec(await stream.readline()), "1234567\n");
      assert.equal(buffered(stream), 0);
      stream.feedData(enc("12345678\n"));
      await assertRejects(stream.readline(), (e) => {
        assert.ok(e instanceof LimitOverrunError, `got ${String(e)}`);
      });
      assert.equal(buffered(stream), 0);
      stream.feedData(enc("12345678"));
      await assertRejects(stream.readline(), (e) => {
        assert.ok(e instanceof LimitOverrunError, `got ${String(e)}`);
      });
      assert.equal(buffered(stream), 0);
    }));

  it("readline with everything buffered returns one line (test_readline_nolimit_nowait)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      stream.feedData(enc(DATA.slice(0, 6)));
      stream.feedData(enc(DATA.slice(6)));
      assert.equal(dec(await stream.readline()), "line1\n");
      assert.equal(await bufferText(stream), "line2\nline3\n");
    }));

  it("readline at EOF: the partial line, then empty (test_readline_eof, test_readline_empty_eof)", () =>
    runNet(async () => {
      let stream = new StreamReader();
      stream.feedData(enc("some data"));
      stream.feedEof();
      assert.equal(dec(await stream.readline()), "some data");
      assert.equal((await stream.readline()).length, 0);

      stream = new StreamReader();
      stream.feedEof();
      assert.equal((await stream.readline()).length, 0);
    }));

  it("read(n) after readline continues where it stopped (test_readline_read_byte_count)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      stream.feedData(enc(DATA));
      await stream.readline();
      assert.equal(dec(await stream.read(7)), "line2\nl");
      assert.equal(await bufferText(stream), "ine3\n");
    }));

  it("readline after setException() throws it (test_readline_exception)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      stream.feedData(enc("line\n"));
      assert.equal(dec(await stream.readline()), "line\n");
      const error = new TypeError("boom");
      stream.setException(error);
      await assertRejects(stream.readline(), (e) => assert.equal(e, error));
      assert.equal(buffered(stream), 0);
    }));

  it("readuntil of an empty separator is a RangeError (test_readuntil_separator)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      await assertRejects(stream.readuntil(new Uint8Array(0)), (e) => {
        assert.ok(e instanceof RangeError, `got ${String(e)}`);
        assert.match(e.message, /Separator should be/);
      });
      await assertRejects(stream.readuntil(""), (e) => {
        assert.ok(e instanceof RangeError, `got ${String(e)}`);
      });
    }));

  it("readuntil a multi-byte separator (test_readuntil_multi_chunks)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      stream.feedData(enc("lineAAA"));
      assert.equal(dec(await stream.readuntil(enc("AAA"))), "lineAAA");
      assert.equal(buffered(stream), 0);

      stream.feedData(enc("lineAAA"));
      assert.equal(dec(await stream.readuntil("AAA")), "lineAAA");
      assert.equal(buffered(stream), 0);

      stream.feedData(enc("lineAAAxxx"));
      assert.equal(dec(await stream.readuntil(enc("AAA"))), "lineAAA");
      assert.equal(await bufferText(stream), "xxx");
    }));

  it("readuntil a separator split across chunks and overlapping itself (test_readuntil_multi_chunks_1)", () =>
    runNet(async (loop) => {
      const stream = new StreamReader();
      const sep = enc("aaa");
      const cases: [string[], string][] = [
        [["QWEaa", "XYaa", "a"], "QWEaaXYaaa"],
        [["QWEaa", "XYa", "aa"], "QWEaaXYaaa"],
        [["aaa"], "aaa"],
        [["Xaaa"], "Xaaa"],
        [["XXX", "a", "a", "a"], "XXXaaa"],
      ];
      for (const [chunks, expected] of cases) {
        for (const chunk of chunks) stream.feedData(enc(chunk));
        assert.equal(dec(await stream.readuntil(sep)), expected);
        assert.equal(buffered(stream), 0);
      }
      // The same, with the chunks arriving while readuntil waits.
      for (const [chunks, expected] of cases) {
        const task = loop.createTask(() => stream.readuntil(sep));
        let i = 0;
        const feed = () => {
          stream.feedData(enc(chunks[i++]));
          if (i < chunks.length) loop.callSoon(feed);
        };
        loop.callSoon(feed);
        assert.equal(dec(await task), expected);
        assert.equal(buffered(stream), 0);
      }
    }));

  it("readuntil at EOF: IncompleteReadError with the partial data and expected null (test_readuntil_eof)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      stream.feedData(enc("some dataAA"));
      stream.feedEof();
      await assertRejects(stream.readuntil(enc("AAA")), (e) => {
        assert.ok(e instanceof IncompleteReadError, `got ${String(e)}`);
        assert.match(e.message, /undefined expected bytes/);
        assert.equal(dec(e.partial), "some dataAA");
        assert.equal(e.expected, null);
      });
      assert.equal(buffered(stream), 0);
    }));

  it("readuntil over the limit: LimitOverrunError, the data stays (test_readuntil_limit_found_sep)", () =>
    runNet(async () => {
      const stream = new StreamReader(3);
      stream.feedData(enc("some dataAA"));
      await assertRejects(stream.readuntil(enc("AAA")), (e) => {
        assert.ok(e instanceof LimitOverrunError, `got ${String(e)}`);
        assert.match(e.message, /not found/);
        assert.equal(typeof e.consumed, "number");
      });
      assert.equal(buffered(stream), "some dataAA".length);

      stream.feedData(enc("A"));
      await assertRejects(stream.readuntil(enc("AAA")), (e) => {
        assert.ok(e instanceof LimitOverrunError, `got ${String(e)}`);
        assert.match(e.message, /is found/);
        assert.equal(e.consumed, "some data".length);
      });
      assert.equal(await bufferText(stream), "some dataAAA");
    }));

  it("readexactly(0) is empty; readexactly(-1) is a RangeError; the buffer stays (test_readexactly_zero_or_less)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      stream.feedData(enc(DATA));
      assert.equal((await stream.readexactly(0)).length, 0);
      assert.equal(buffered(stream), DATA.length);
      await assertRejects(stream.readexactly(-1), (e) => {
        assert.ok(e instanceof RangeError, `got ${String(e)}`);
        assert.match(e.message, /less than zero/);
      });
      assert.equal(await bufferText(stream), DATA);
    }));

  it("readexactly waits for exactly n bytes (test_readexactly)", () =>
    runNet(async (loop) => {
      const stream = new StreamReader();
      const n = 2 * DATA.length;
      const task = loop.createTask(() => stream.readexactly(n));
      loop.callSoon(() => {
        stream.feedData(enc(DATA));
        stream.feedData(enc(DATA));
        stream.feedData(enc(DATA));
      });
      assert.equal(dec(await task), DATA + DATA);
      assert.equal(await bufferText(stream), DATA);
    }));

  it("readexactly is not bounded by the limit (test_readexactly_limit)", () =>
    runNet(async () => {
      const stream = new StreamReader(3);
      stream.feedData(enc("chunk"));
      assert.equal(dec(await stream.readexactly(5)), "chunk");
      assert.equal(buffered(stream), 0);
    }));

  it("readexactly at EOF: IncompleteReadError with partial and expected (test_readexactly_eof)", () =>
    runNet(async (loop) => {
      const stream = new StreamReader();
      const n = 2 * DATA.length;
      const task = loop.createTask(() => stream.readexactly(n));
      loop.callSoon(() => {
        stream.feedData(enc(DATA));
        stream.feedEof();
      });
      await assertRejects(task, (e) => {
        assert.ok(e instanceof IncompleteReadError, `got ${String(e)}`);
        assert.equal(dec(e.partial), DATA);
        assert.equal(e.expected, n);
        assert.equal(
          e.message,
          "18 bytes read on a total of 36 expected bytes",
        );
      });
      assert.equal(buffered(stream), 0);
    }));

  it("readexactly after setException() throws it (test_readexactly_exception)", () =>
    runNet(async () => {
      const stream = new StreamReader();
      stream.feedData(enc("line\n"));
      assert.equal(dec(await stream.readexactly(2)), "li");
      const error = new TypeError("boom");
      stream.setException(error);
      await assertRejects(stream.readexactly(2), (e) => assert.equal(e, error));
    }));

  it("exception() is null, then the error set (test_exception)", () =>
    runNet(async () => {
      await Promise.resolve();
      const stream = new StreamReader();
      assert.equal(stream.exception(), null);
      const error = new TypeError("boom");
      stream.setException(error);
      assert.equal(stream.exception(), error);
    }));

  it("setException() fails a pending readline (test_exception_waiter)", () =>
    runNet(async (loop) => {
      const stream = new StreamReader();
      const error = new TypeError("boom");
      const t1 = loop.createTask(() => stream.readline());
      const t2 = loop.createTask(async () => {
        await Promise.resolve();
        stream.setException(error);
      });
      await t2;
      await assertRejects(t1, (e) => assert.equal(e, error));
    }));

  it("setException() after the waiting task was cancelled is harmless (test_exception_cancel)", () =>
    runNet(async (loop) => {
      const stream = new StreamReader();
      const t = loop.createTask(() => stream.readline());
      await runBriefly();
      assert.match(String(stream), /waiter/);
      t.cancel();
      await runBriefly();
      await assertRejects(
        t,
        (e) => assert.ok(e instanceof CancelledError, `got ${String(e)}`),
      );
      stream.setException(new RuntimeError("message"));
      await runBriefly();
      assert.doesNotMatch(String(stream), /waiter/);
    }));

  it("two coroutines waiting on one reader: the second is a RuntimeError", () =>
    runNet(async (loop) => {
      const stream = new StreamReader();
      const first = loop.createTask(() => stream.read(10));
      await runBriefly(1);
      await assertRejects(stream.readline(), (e) => {
        assert.ok(e instanceof RuntimeError, `got ${String(e)}`);
        assert.match(e.message, /already waiting/);
      });
      stream.feedData(enc("x"));
      assert.equal(dec(await first), "x");
    }));

  it("async iteration yields lines until EOF, the last one without newline", () =>
    runNet(async (loop) => {
      const stream = new StreamReader();
      loop.callSoon(() => {
        stream.feedData(enc("a\nbb\n"));
        loop.callSoon(() => {
          stream.feedData(enc("ccc\ndd"));
          stream.feedEof();
        });
      });
      const lines: string[] = [];
      for await (const line of stream) lines.push(dec(line));
      assert.deepEqual(lines, ["a\n", "bb\n", "ccc\n", "dd"]);
    }));
});

// ---------------------------------------------------------------------------
// Over connections.

/** asyncio's MyServer.handle_client: echo one line, then close. */
async function echoLine(
  reader: StreamReader,
  writer: StreamWriter,
): Promise<void> {
  const data = await reader.readline();
  writer.write(data);
  await writer.drain();
  writer.close();
  await writer.waitClosed();
}

/** asyncio's client(): send a line, read it back, close. */
async function lineClient(
  open: () => Promise<[StreamReader, StreamWriter]>,
): Promise<string> {
  const [reader, writer] = await open();
  writer.write(enc("hello world!\n"));
  const back = await reader.readline();
  writer.close();
  await writer.waitClosed();
  return dec(back);
}

/** Echoes everything until EOF, with read(n) + drain, then closes. */
async function echoAll(
  reader: StreamReader,
  writer: StreamWriter,
): Promise<void> {
  for (;;) {
    const block = await reader.read(65536);
    if (block.length === 0) break;
    writer.write(block);
    await writer.drain();
  }
  writer.close();
  await writer.waitClosed();
}

async function closeServer(server: Server): Promise<void> {
  server.close();
  await server.waitClosed();
}

describe("openConnection / startServer (test_streams.py)", () => {
  it("TCP: a line and its echo, with a coroutine handler and a plain callback (test_start_server)", () =>
    runNet(async (loop) => {
      let server = await startServer(echoLine, "127.0.0.1", 0);
      let port = serverPort(server);
      assert.equal(
        await lineClient(() => openConnection("127.0.0.1", port)),
        "hello world!\n",
      );
      await closeServer(server);

      // A plain function that starts the task itself.
      const tasks: Promise<void>[] = [];
      server = await startServer(
        (r, w) => {
          tasks.push(loop.createTask(() => echoLine(r, w)));
        },
        "127.0.0.1",
        0,
      );
      port = serverPort(server);
      assert.equal(
        await lineClient(() => openConnection("127.0.0.1", port)),
        "hello world!\n",
      );
      await Promise.all(tasks);
      assert.equal(tasks.length, 1);
      await closeServer(server);
    }));

  it("unix socket: a line and its echo; the path goes with the server (test_start_unix_server)", () =>
    runNet(async (loop) => {
      let path = tmpSockPath("streams");
      let server = await startUnixServer(echoLine, path);
      assert.ok(existsSync(path));
      assert.equal(
        await lineClient(() => openUnixConnection(path)),
        "hello world!\n",
      );
      await closeServer(server);
      assert.equal(existsSync(path), false);

      path = tmpSockPath("streams");
      const tasks: Promise<void>[] = [];
      server = await startUnixServer((r, w) => {
        tasks.push(loop.createTask(() => echoLine(r, w)));
      }, path);
      assert.equal(
        await lineClient(() => openUnixConnection(path)),
        "hello world!\n",
      );
      await Promise.all(tasks);
      await closeServer(server);
      assert.equal(existsSync(path), false);
    }));

  it("IPv6 (::1): a line and its echo; peername is a 4-tuple", {
    skip: NO_IPV6,
  }, () =>
    runNet(async () => {
      const peers: unknown[] = [];
      const server = await startServer(
        async (r, w) => {
          peers.push(w.getExtraInfo("peername"));
          await echoLine(r, w);
        },
        "::1",
        0,
      );
      const port = serverPort(server);
      const [reader, writer] = await openConnection("::1", port);
      const peer = writer.getExtraInfo("peername") as unknown[];
      assert.equal(peer.length, 4);
      assert.deepEqual(peer.slice(0, 2), ["::1", port]);
      writer.write(enc("six\n"));
      assert.equal(dec(await reader.readline()), "six\n");
      writer.close();
      await writer.waitClosed();
      await closeServer(server);
      assert.equal(peers.length, 1);
      assert.equal((peers[0] as unknown[])[0], "::1");
    }));

  it("the server writes a response and closes; readline then read() to EOF (test_open_connection)", () =>
    runNet(async () => {
      const server = await startServer(
        async (r, w) => {
          const request = await r.readuntil("\r\n\r\n");
          assert.equal(dec(request), "GET / HTTP/1.0\r\n\r\n");
          w.write(enc("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"));
          w.write(enc("Test message"));
          await w.drain();
          w.close();
          await w.waitClosed();
        },
        "127.0.0.1",
        0,
      );
      const [reader, writer] = await openConnection(
        "127.0.0.1",
        serverPort(server),
      );
      writer.write(enc("GET / HTTP/1.0\r\n\r\n"));
      assert.equal(dec(await reader.readline()), "HTTP/1.0 200 OK\r\n");
      const rest = dec(await reader.read());
      assert.ok(rest.endsWith("\r\n\r\nTest message"), rest);
      assert.equal(reader.atEof(), true);
      assert.equal(writer.isClosing(), false);
      writer.close();
      assert.equal(writer.isClosing(), true);
      await writer.waitClosed();
      await closeServer(server);
    }));

  it("connectionLost(error) on the protocol fails the reader with it (test_open_connection_error)", () =>
    runNet(async () => {
      const server = await startServer(
        async (r, w) => {
          await r.read();
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const [reader, writer] = await openConnection(
        "127.0.0.1",
        serverPort(server),
      );
      class ZeroDivisionError extends Error {}
      const error = new ZeroDivisionError("division by zero");
      writer.transport.getProtocol().connectionLost(error);
      await assertRejects(reader.read(), (e) => assert.equal(e, error));
      writer.close();
      await runBriefly();
      await closeServer(server);
    }));

  it("close() then waitClosed() with unread data; then the reader is at EOF (test_wait_closed_on_close_with_unread_data, test_eof_feed_when_closing_writer)", () =>
    runNet(async () => {
      const server = await startServer(
        async (r, w) => {
          await r.readline();
          w.write(enc("first\nsecond\n"));
          await r.read();
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const port = serverPort(server);
      let [reader, writer] = await openConnection("127.0.0.1", port);
      writer.write(enc("go\n"));
      assert.equal(dec(await reader.readline()), "first\n");
      writer.close();
      await writer.waitClosed();

      [reader, writer] = await openConnection("127.0.0.1", port);
      writer.close();
      await writer.waitClosed();
      assert.equal(reader.atEof(), true);
      assert.equal((await reader.read()).length, 0);
      await closeServer(server);
    }));

  it("write + drain after close(): ConnectionResetError (test_async_writer_api_exception_after_close)", () =>
    runNet(async () => {
      const server = await startServer(
        async (r, w) => {
          await r.read();
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const [, writer] = await openConnection("127.0.0.1", serverPort(server));
      writer.close();
      await assertRejects(async () => {
        writer.write(enc("data"));
        await writer.drain();
      }, (e) => {
        assert.ok(e instanceof ConnectionResetError, `got ${String(e)}`);
      });
      await writer.waitClosed();
      await closeServer(server);
    }));

  it("drain() fails once the peer is gone instead of spinning (test_drain_raises)", () =>
    runNet(async (loop) => {
      class CloseAtOnce extends Protocol {
        override connectionMade(transport: Transport): void {
          transport.close();
        }
      }
      const server = await loop.createServer(
        () => new CloseAtOnce(),
        "127.0.0.1",
        0,
      );
      const [, writer] = await openConnection("127.0.0.1", serverPort(server));
      let writes = 0;
      await assertRejects(async () => {
        for (;;) {
          writer.write(enc("foo\n"));
          await writer.drain();
          if (++writes > 1_000_000) throw new Error("drain() never failed");
        }
      }, (e) => {
        assert.ok(
          e instanceof ConnectionResetError ||
            e instanceof ConnectionAbortedError ||
            e instanceof BrokenPipeError,
          `got ${String(e)}`,
        );
      });
      writer.close();
      await assertRejects(writer.waitClosed(), (e) => {
        assert.ok(
          e instanceof ConnectionResetError ||
            e instanceof ConnectionAbortedError ||
            e instanceof BrokenPipeError,
          `got ${String(e)}`,
        );
      });
      await closeServer(server);
    }));

  it("drain() waits under back-pressure, ten drains at once all resolve once the peer reads (test_multiple_drain)", () =>
    runNet(async (loop) => {
      const go = loop.createFuture<void>();
      const got = loop.createFuture<Uint8Array>();
      const server = await startServer(
        async (r, w) => {
          await go;
          got.setResult(await r.read());
          w.write(enc("ok\n"));
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const [reader, writer] = await openConnection(
        "127.0.0.1",
        serverPort(server),
      );
      (writer.getExtraInfo("socket") as Socket).setsockopt(
        SOL_SOCKET,
        SO_SNDBUF,
        64 * 1024,
      );
      const payload = pattern(4 << 20, 1);
      writer.write(payload);
      const [, high] = writer.transport.getWriteBufferLimits();
      assert.ok(
        writer.transport.getWriteBufferSize() > high,
        `buffer ${writer.transport.getWriteBufferSize()} > ${high}`,
      );
      let drained = 0;
      const drains = Array.from(
        { length: 10 },
        () =>
          writer.drain().then(() => {
            drained++;
          }),
      );
      await runBriefly(5);
      assert.equal(drained, 0, "drain() resolved while the peer reads nothing");
      assert.ok(writer.transport.getWriteBufferSize() > high);
      go.setResult();
      await Promise.all(drains);
      assert.equal(drained, 10);
      assert.ok(writer.transport.getWriteBufferSize() <= high);
      writer.writeEof();
      assertSameBytes(await got, payload);
      assert.equal(dec(await reader.readline()), "ok\n");
      writer.close();
      await writer.waitClosed();
      await closeServer(server);
    }));

  it("writeEof: the server reads to EOF and still answers (half-close)", () =>
    runNet(async () => {
      const server = await startServer(
        async (r, w) => {
          const all = await r.read();
          assert.equal(r.atEof(), true);
          w.write(enc(`got ${all.length} bytes: ${dec(all)}\n`));
          await w.drain();
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const [reader, writer] = await openConnection(
        "127.0.0.1",
        serverPort(server),
      );
      assert.equal(writer.canWriteEof(), true);
      writer.writelines([enc("a"), enc("bc"), enc("def")]);
      writer.writeEof();
      assert.equal(writer.isClosing(), false);
      assert.equal(dec(await reader.readline()), "got 6 bytes: abcdef\n");
      assert.equal((await reader.read()).length, 0);
      assert.equal(reader.atEof(), true);
      writer.close();
      await writer.waitClosed();
      await closeServer(server);
    }));

  it("async iteration over the lines of a connection", () =>
    runNet(async () => {
      const server = await startServer(
        async (_r, w) => {
          w.write(enc("line1\nline2\n"));
          await w.drain();
          w.write(enc("line3"));
          w.close();
          await w.waitClosed();
        },
        "127.0.0.1",
        0,
      );
      const [reader, writer] = await openConnection(
        "127.0.0.1",
        serverPort(server),
      );
      const lines: string[] = [];
      for await (const line of reader) lines.push(dec(line));
      assert.deepEqual(lines, ["line1\n", "line2\n", "line3"]);
      writer.close();
      await writer.waitClosed();
      await closeServer(server);
    }));

  it("getExtraInfo: peername and sockname mirror each other; socket; a default", () =>
    runNet(async (loop) => {
      const serverSide = loop.createFuture<[unknown, unknown]>();
      const server = await startServer(
        async (r, w) => {
          serverSide.setResult([
            w.getExtraInfo("peername"),
            w.getExtraInfo("sockname"),
          ]);
          await r.read();
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const port = serverPort(server);
      const [, writer] = await openConnection("127.0.0.1", port);
      const peer = inet(writer.getExtraInfo("peername"));
      const name = inet(writer.getExtraInfo("sockname"));
      assert.deepEqual([...peer], ["127.0.0.1", port]);
      assert.equal(name[0], "127.0.0.1");
      const [speer, sname] = await serverSide;
      assert.deepEqual([...inet(speer)], [...name]);
      assert.deepEqual([...inet(sname)], [...peer]);
      const sock = writer.getExtraInfo("socket");
      assert.ok(sock instanceof Socket);
      assert.deepEqual([...inet(sock.getpeername())], [...peer]);
      assert.equal(writer.getExtraInfo("nonexistent"), undefined);
      assert.equal(writer.getExtraInfo("nonexistent", 42), 42);
      writer.close();
      await writer.waitClosed();
      await closeServer(server);
    }));

  it("1 MiB echoed over TCP arrives intact (uneven writes, read(-1))", () =>
    runNet(async () => {
      const server = await startServer(echoAll, "127.0.0.1", 0);
      const [reader, writer] = await openConnection(
        "127.0.0.1",
        serverPort(server),
      );
      const payload = pattern(1 << 20, 2);
      const chunks = unevenChunks(payload);
      writer.writelines(chunks.slice(0, 3));
      for (const chunk of chunks.slice(3)) {
        writer.write(chunk);
        await writer.drain();
      }
      writer.writeEof();
      assertSameBytes(await reader.read(), payload);
      writer.close();
      await writer.waitClosed();
      await closeServer(server);
    }));

  it("1 MiB echoed over a unix socket arrives intact (readexactly)", () =>
    runNet(async (loop) => {
      const path = tmpSockPath("streams");
      const server = await startUnixServer(echoAll, path);
      const [reader, writer] = await openUnixConnection(path);
      const payload = pattern(1 << 20, 3);
      const sending = loop.createTask(async () => {
        for (const chunk of unevenChunks(payload)) {
          writer.write(chunk);
          await writer.drain();
        }
        writer.writeEof();
      });
      assertSameBytes(await reader.readexactly(payload.length), payload);
      await sending;
      assert.equal((await reader.read()).length, 0);
      writer.close();
      await writer.waitClosed();
      await closeServer(server);
    }));
});

// ---------------------------------------------------------------------------
// The web stream adapters.

describe("web streams: toReadableStream / toWritableStream", () => {
  it("toReadableStream consumed with for await: 1 MiB intact, then the stream ends", () =>
    runNet(async () => {
      const payload = pattern(1 << 20, 4);
      const server = await startServer(
        async (_r, w) => {
          for (const chunk of unevenChunks(payload)) {
            w.write(chunk);
            await w.drain();
          }
          w.close();
          await w.waitClosed();
        },
        "127.0.0.1",
        0,
      );
      const [reader, writer] = await openConnection(
        "127.0.0.1",
        serverPort(server),
      );
      const chunks: Uint8Array[] = [];
      for await (const chunk of reader.toReadableStream()) {
        assert.ok(chunk instanceof Uint8Array);
        assert.ok(chunk.length > 0);
        chunks.push(chunk);
      }
      assertSameBytes(concat(chunks), payload);
      writer.close();
      await writer.waitClosed();
      await closeServer(server);
    }));

  it("toReadableStream with getReader(), and piped through a TextDecoderStream", () =>
    runNet(async () => {
      const server = await startServer(
        async (_r, w) => {
          w.write(enc("héllo "));
          await w.drain();
          w.write(enc("wörld\n").subarray(0, 2));
          await w.drain();
          w.write(enc("wörld\n").subarray(2));
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const port = serverPort(server);

      let [reader, writer] = await openConnection("127.0.0.1", port);
      const rd = reader.toReadableStream().getReader();
      const parts: Uint8Array[] = [];
      for (;;) {
        const { done, value } = await rd.read();
        if (done) break;
        parts.push(value);
      }
      rd.releaseLock();
      assert.equal(dec(concat(parts)), "héllo wörld\n");
      writer.close();
      await writer.waitClosed();

      [reader, writer] = await openConnection("127.0.0.1", port);
      const text = reader.toReadableStream().pipeThrough(
        new TextDecoderStream(),
      );
      let all = "";
      for await (const piece of text) all += piece;
      assert.equal(all, "héllo wörld\n");
      writer.close();
      await writer.waitClosed();
      await closeServer(server);
    }));

  it("toWritableStream via getWriter: 1 MiB written, close() sends EOF, the reply still comes", () =>
    runNet(async () => {
      const payload = pattern(1 << 20, 5);
      const server = await startServer(
        async (r, w) => {
          const all = await r.read();
          const same = all.length === payload.length &&
            all.every((b, i) => b === payload[i]);
          w.write(enc(`${all.length} ${same}\n`));
          await w.drain();
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const [reader, writer] = await openConnection(
        "127.0.0.1",
        serverPort(server),
      );
      const ws = writer.toWritableStream().getWriter();
      for (const chunk of unevenChunks(payload)) {
        await ws.ready;
        await ws.write(chunk);
      }
      await ws.close();
      assert.equal(writer.isClosing(), false, "close() is a half-close");
      assert.equal(dec(await reader.readline()), `${payload.length} true\n`);
      assert.equal((await reader.read()).length, 0);
      writer.close();
      await writer.waitClosed();
      await closeServer(server);
    }));

  it("pipeTo both ways: a web-stream echo server and client move 1 MiB and close the connection", () =>
    runNet(async () => {
      const serverDone: Promise<void>[] = [];
      const server = await startServer(
        (r, w) => {
          serverDone.push(
            r.toReadableStream().pipeTo(w.toWritableStream()).then(() =>
              w.waitClosed()
            ),
          );
        },
        "127.0.0.1",
        0,
      );
      const [reader, writer] = await openConnection(
        "127.0.0.1",
        serverPort(server),
      );
      const payload = pattern(1 << 20, 6);
      const chunks = unevenChunks(payload);
      const source = new ReadableStream<Uint8Array>({
        pull(controller) {
          const chunk = chunks.shift();
          if (chunk) controller.enqueue(chunk);
          else controller.close();
        },
      });
      const received: Uint8Array[] = [];
      const sink = new WritableStream<Uint8Array>({
        write(chunk) {
          received.push(chunk);
        },
      });
      await Promise.all([
        source.pipeTo(writer.toWritableStream()),
        reader.toReadableStream().pipeTo(sink),
      ]);
      assertSameBytes(concat(received), payload);
      // Both adapters ended on both sides: the connections close by themselves.
      await writer.waitClosed();
      assert.equal(serverDone.length, 1);
      await Promise.all(serverDone);
      await closeServer(server);
    }));

  it("cancelling the ReadableStream closes the connection; the peer sees EOF", () =>
    runNet(async (loop) => {
      const peerSawEof = loop.createFuture<number>();
      const server = await startServer(
        async (r, w) => {
          w.write(enc("hello"));
          await w.drain();
          peerSawEof.setResult((await r.read()).length);
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const [reader, writer] = await openConnection(
        "127.0.0.1",
        serverPort(server),
      );
      const rd = reader.toReadableStream().getReader();
      const first = await rd.read();
      assert.equal(first.done, false);
      assert.equal(dec(first.value!), "hello");
      await rd.cancel();
      await writer.waitClosed();
      assert.equal(writer.isClosing(), true);
      assert.equal(await peerSawEof, 0);
      await closeServer(server);
    }));

  it("aborting the WritableStream aborts the connection", () =>
    runNet(async (loop) => {
      const peerDone = loop.createFuture<string>();
      const server = await startServer(
        async (r, w) => {
          try {
            const all = await r.read();
            peerDone.setResult(`eof after ${dec(all)}`);
          } catch (e) {
            peerDone.setResult(`error ${(e as Error).name}`);
          }
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const [, writer] = await openConnection("127.0.0.1", serverPort(server));
      const ws = writer.toWritableStream().getWriter();
      await ws.write(enc("partial"));
      await ws.abort(new Error("stop"));
      assert.equal(writer.isClosing(), true);
      await writer.waitClosed();
      // The peer got what was sent, then EOF or a reset: never a hang.
      assert.match(await peerDone, /^(eof after partial|error \w+)$/);
      await closeServer(server);
    }));
});
