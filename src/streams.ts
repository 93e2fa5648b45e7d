/**
 * Streams (asyncio's `streams.py`): `StreamReader` and `StreamWriter` over
 * a transport, `openConnection()` / `startServer()` and their Unix
 * variants, plus adapters to web `ReadableStream` / `WritableStream`.
 *
 * ```ts
 * const [reader, writer] = await openConnection("127.0.0.1", 8888);
 * writer.write(new TextEncoder().encode("ping\n"));
 * await writer.drain();
 * const line = await reader.readline();
 * writer.close();
 * await writer.waitClosed();
 * ```
 *
 * @module
 */
import type { Socket } from "../ffi/socket.ts";
import { bytesOf, describeValue } from "../ffi/validate.ts";
import { concatBytes, copyBytes } from "./bytes.ts";
import {
  type AbstractEventLoop,
  type CreateConnectionOptions,
  type CreateServerOptions,
  type CreateUnixServerOptions,
  getRunningLoop,
} from "./events.ts";
import { ConnectionResetError, RuntimeError } from "./exceptions.ts";
import type { Future } from "./futures.ts";
import { Protocol } from "./protocols.ts";
import type { Server } from "./server.ts";
import type { BaseTransport, Transport } from "./transports.ts";

/** The default buffer limit of a StreamReader: 64 KiB. */
export const STREAM_LIMIT = 64 * 1024;

/** readexactly() hit EOF first; `partial` holds what was read. */
export class IncompleteReadError extends Error {
  /** The bytes read before EOF. */
  readonly partial: Uint8Array;
  /** The bytes wanted (null: until a separator). */
  readonly expected: number | null;
  /** Creates the error. */
  constructor(partial: Uint8Array, expected: number | null) {
    super(
      `${partial.length} bytes read on a total of ${
        expected === null ? "undefined" : expected
      } expected bytes`,
    );
    this.name = "IncompleteReadError";
    this.partial = partial;
    this.expected = expected;
  }
}

/** The separator was not found within the buffer limit. */
export class LimitOverrunError extends Error {
  /** How many bytes to consume to get past the overrun. */
  readonly consumed: number;
  /** Creates the error. */
  constructor(message: string, consumed: number) {
    super(message);
    this.name = "LimitOverrunError";
    this.consumed = consumed;
  }
}

const NEWLINE = new Uint8Array([10]);
const RESOLVED: Promise<void> = Promise.resolve();
const EMPTY = new Uint8Array(0);

/** Options of the stream helpers. */
export interface StreamOptions {
  /** The reader's buffer limit (default 64 KiB). */
  limit?: number;
}

/**
 * A byte count argument: TypeError when it is not a number, RangeError
 * when it is NaN or not an integer.
 */
function checkCount(value: unknown, name: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `${name} must be an integer, got ${describeValue(value)}`,
    );
  }
  if (!Number.isInteger(value)) {
    throw new RangeError(`${name} must be an integer, got ${value}`);
  }
  return value;
}

/** The `limit` of a reader: a positive integer. */
function checkLimit(limit: unknown): number {
  checkCount(limit, "limit");
  if ((limit as number) <= 0) {
    throw new RangeError(`Limit cannot be <= 0, got ${limit}`);
  }
  return limit as number;
}

/** A growable byte buffer with a read position. */
class ByteBuffer {
  /** Chunks as received; [head] is the oldest not fully read. */
  private chunks: Uint8Array[] = [];
  private head = 0;
  /** Bytes held. */
  length = 0;

  /** Appends a chunk the buffer now owns (not copied). */
  push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  /**
   * Removes and returns the first `n` bytes. A read of a whole chunk (or
   * of its front) hands out that chunk without copying.
   */
  take(n: number): Uint8Array {
    if (n === 0) return EMPTY;
    const first = this.chunks[this.head];
    let out: Uint8Array;
    if (first.length === n) {
      out = first;
      this.chunks[this.head++] = EMPTY;
    } else if (first.length > n) {
      out = first.subarray(0, n);
      this.chunks[this.head] = first.subarray(n);
    } else {
      this.flatten();
      return this.take(n);
    }
    this.length -= n;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    }
    return out;
  }

  /** The length of the oldest chunk (0 when empty). */
  firstLength(): number {
    return this.length === 0 ? 0 : this.chunks[this.head].length;
  }

  /** Joins the chunks into one (for searching across them). */
  private flatten(): void {
    if (this.chunks.length - this.head <= 1) return;
    const joined = new Uint8Array(this.length);
    let at = 0;
    for (let i = this.head; i < this.chunks.length; i++) {
      joined.set(this.chunks[i], at);
      at += this.chunks[i].length;
    }
    this.chunks = [joined];
    this.head = 0;
  }

  /** The index of `sep` at or after `from` (relative), or -1. */
  indexOf(sep: Uint8Array, from: number): number {
    if (this.length === 0) return -1;
    this.flatten();
    const view = this.chunks[this.head];
    if (sep.length === 1) return view.indexOf(sep[0], from);
    const last = view.length - sep.length;
    outer: for (
      let i = view.indexOf(sep[0], from);
      i >= 0 && i <= last;
      i = view.indexOf(sep[0], i + 1)
    ) {
      for (let j = 1; j < sep.length; j++) {
        if (view[i + j] !== sep[j]) continue outer;
      }
      return i;
    }
    return -1;
  }

  /** Drops everything. */
  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.length = 0;
  }
}

/**
 * Buffered reading from a stream: the protocol feeds it, coroutines read.
 * Reading pauses the transport while more than twice `limit` bytes wait.
 */
export class StreamReader {
  private readonly _limit: number;
  private readonly _loop: AbstractEventLoop;
  private readonly _buffer = new ByteBuffer();
  private _eof = false;
  private _waiter: Future<void> | null = null;
  private _exception: unknown = null;
  private _transport: Transport | null = null;
  private _paused = false;
  /** @internal Called when a web ReadableStream of this reader ended. */
  _onWebEnd: (() => void) | null = null;

  /**
   * Creates a reader; `limit` (a positive integer) bounds lines and the
   * buffered bytes.
   */
  constructor(limit: number = STREAM_LIMIT, loop?: AbstractEventLoop) {
    this._limit = checkLimit(limit);
    this._loop = loop ?? getRunningLoop();
  }

  /** The error set by setException(), or null. */
  exception(): unknown {
    return this._exception;
  }

  /** Fails pending and future reads with `exc`. */
  setException(exc: unknown): void {
    this._exception = exc;
    const waiter = this._waiter;
    if (waiter !== null) {
      this._waiter = null;
      if (!waiter.cancelled()) waiter.setException(exc);
    }
  }

  /** Resolves the pending read, if any. */
  private _wakeupWaiter(): void {
    const waiter = this._waiter;
    if (waiter !== null) {
      this._waiter = null;
      if (!waiter.cancelled()) waiter.setResult(undefined);
    }
  }

  /** @internal Attaches the transport (for flow control). */
  setTransport(transport: Transport): void {
    if (this._transport !== null) {
      throw new RuntimeError("Transport already set");
    }
    this._transport = transport;
  }

  /** Resumes the transport once the buffer is at or below the limit. */
  private _maybeResumeTransport(): void {
    if (this._paused && this._buffer.length <= this._limit) {
      this._paused = false;
      this._transport?.resumeReading();
    }
  }

  /** The peer sent EOF. */
  feedEof(): void {
    this._eof = true;
    this._wakeupWaiter();
  }

  /** Whether EOF was fed and the buffer is empty. */
  atEof(): boolean {
    return this._eof && this._buffer.length === 0;
  }

  /** Adds a copy of `data` to the buffer. */
  feedData(data: Uint8Array): void {
    this._feedOwned(copyBytes(bytesOf(data)));
  }

  /** @internal Adds `data`, which the reader now owns (no copy). */
  _feedOwned(data: Uint8Array): void {
    if (this._eof) throw new RuntimeError("feedData after feedEof");
    if (data.length === 0) return;
    this._buffer.push(data);
    this._wakeupWaiter();
    if (
      this._transport !== null && !this._paused &&
      this._buffer.length > 2 * this._limit
    ) {
      try {
        this._transport.pauseReading();
        this._paused = true;
      } catch {
        // The transport cannot pause: keep buffering.
        this._transport = null;
      }
    }
  }

  /** Waits until feedData() or feedEof() is called. */
  private async _waitForData(funcName: string): Promise<void> {
    if (this._waiter !== null) {
      throw new RuntimeError(
        `${funcName}() called while another coroutine is already waiting for incoming data`,
      );
    }
    if (this._eof) throw new RuntimeError("_waitForData after EOF");
    if (this._paused) {
      this._paused = false;
      this._transport?.resumeReading();
    }
    this._waiter = this._loop.createFuture<void>();
    try {
      await this._waiter;
    } finally {
      this._waiter = null;
    }
  }

  /**
   * Reads one line, "\n" included; at EOF, the partial line (or empty).
   * A line longer than the limit throws LimitOverrunError, and the line
   * is dropped from the buffer (asyncio raises ValueError here).
   */
  async readline(): Promise<Uint8Array> {
    try {
      return await this.readuntil(NEWLINE);
    } catch (error) {
      if (error instanceof IncompleteReadError) return error.partial;
      if (error instanceof LimitOverrunError) {
        const sepAt = this._buffer.indexOf(NEWLINE, error.consumed);
        if (sepAt >= 0) this._buffer.take(sepAt + 1);
        else this._buffer.clear();
        this._maybeResumeTransport();
        throw new LimitOverrunError(error.message, error.consumed);
      }
      throw error;
    }
  }

  /**
   * Reads up to and including `separator` (bytes or a string).
   * IncompleteReadError at EOF; LimitOverrunError when the limit is
   * reached without it (the data stays in the buffer).
   */
  async readuntil(
    separator: Uint8Array | string = NEWLINE,
  ): Promise<Uint8Array> {
    const sep = typeof separator === "string"
      ? new TextEncoder().encode(separator)
      : bytesOf(separator, "separator");
    if (sep.length === 0) {
      throw new RangeError("Separator should be at least one-byte string");
    }
    if (this._exception !== null) throw this._exception;
    let offset = 0;
    for (;;) {
      const buflen = this._buffer.length;
      if (buflen - offset >= sep.length) {
        const at = this._buffer.indexOf(sep, offset);
        if (at >= 0) {
          if (at > this._limit) {
            throw new LimitOverrunError(
              "Separator is found, but chunk is longer than limit",
              at,
            );
          }
          const chunk = this._buffer.take(at + sep.length);
          this._maybeResumeTransport();
          return chunk;
        }
        offset = buflen + 1 - sep.length;
        if (offset > this._limit) {
          throw new LimitOverrunError(
            "Separator is not found, and chunk exceed the limit",
            offset,
          );
        }
      }
      if (this._eof) {
        const chunk = this._buffer.take(this._buffer.length);
        throw new IncompleteReadError(chunk, null);
      }
      await this._waitForData("readuntil");
    }
  }

  /**
   * Reads up to `n` bytes (an integer; negative: until EOF). Resolves with
   * an empty array at EOF. TypeError / RangeError for a bad `n`.
   */
  async read(n = -1): Promise<Uint8Array> {
    checkCount(n, "n");
    if (this._exception !== null) throw this._exception;
    if (n === 0) return EMPTY;
    if (n < 0) {
      const blocks: Uint8Array[] = [];
      for (;;) {
        const block = await this.read(this._limit);
        if (block.length === 0) break;
        blocks.push(block);
      }
      return concatBytes(blocks);
    }
    if (this._buffer.length === 0 && !this._eof) {
      await this._waitForData("read");
    }
    // Up to n bytes: the oldest chunk (or its front), uncopied.
    const data = this._buffer.take(Math.min(n, this._buffer.firstLength()));
    this._maybeResumeTransport();
    return data;
  }

  /**
   * Reads exactly `n` bytes; IncompleteReadError if EOF comes first.
   * TypeError / RangeError for a bad `n` (a negative one too).
   */
  async readexactly(n: number): Promise<Uint8Array> {
    checkCount(n, "n");
    if (n < 0) {
      throw new RangeError(
        `readexactly size can not be less than zero (n=${n})`,
      );
    }
    if (this._exception !== null) throw this._exception;
    if (n === 0) return EMPTY;
    while (this._buffer.length < n) {
      if (this._eof) {
        const partial = this._buffer.take(this._buffer.length);
        throw new IncompleteReadError(partial, n);
      }
      await this._waitForData("readexactly");
    }
    const data = this._buffer.take(n);
    this._maybeResumeTransport();
    return data;
  }

  /** Iterates lines until EOF (asyncio's `async for line in reader`). */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const line = await this.readline();
      if (line.length === 0) return;
      yield line;
    }
  }

  /**
   * A web ReadableStream of the bytes (chunks of up to `limit`), for the
   * rest of the Deno and Bun world. Cancelling it closes the transport;
   * once it has ended and the writer's WritableStream is closed too, the
   * transport is closed.
   */
  toReadableStream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const chunk = await this.read(this._limit);
        if (chunk.length > 0) return controller.enqueue(chunk);
        controller.close();
        this._onWebEnd?.();
      },
      cancel: () => {
        this._transport?.close();
      },
    }, { highWaterMark: 0 });
  }

  /** "<StreamReader 12 bytes eof>". */
  toString(): string {
    const info = [`${this._buffer.length} bytes`];
    if (this._eof) info.push("eof");
    if (this._limit !== STREAM_LIMIT) info.push(`limit=${this._limit}`);
    if (this._waiter) info.push("waiter");
    if (this._exception) info.push(`exception=${this._exception}`);
    if (this._paused) info.push("paused");
    return `<StreamReader ${info.join(" ")}>`;
  }
}

/**
 * The protocol between a transport and a StreamReader (plus drain flow
 * control for the StreamWriter): asyncio's StreamReaderProtocol.
 */
export class StreamReaderProtocol extends Protocol {
  private _reader: StreamReader | null;
  private readonly _loop: AbstractEventLoop;
  private readonly _clientConnected:
    | ((reader: StreamReader, writer: StreamWriter) => unknown)
    | null;
  private _transport: Transport | null = null;
  private _streamWriter: StreamWriter | null = null;
  private _paused = false;
  private _drainWaiters: Future<void>[] = [];
  private _connectionLost = false;
  private readonly _closed: Future<void>;
  private _webEnded = 0;

  /**
   * `clientConnected(reader, writer)` runs in a Task of its own for each
   * connection.
   */
  constructor(
    reader: StreamReader,
    clientConnected:
      | ((reader: StreamReader, writer: StreamWriter) => unknown)
      | null = null,
    loop?: AbstractEventLoop,
  ) {
    super();
    this._reader = reader;
    this._loop = loop ?? getRunningLoop();
    this._clientConnected = clientConnected;
    this._closed = this._loop.createFuture<void>();
    // Nobody may ever await it: do not warn about an unretrieved error.
    this._closed.then(undefined, () => {});
  }

  /** Attaches reader and writer; starts the client callback. */
  override connectionMade(transport: BaseTransport): void {
    const t = transport as Transport;
    this._transport = t;
    this._reader?.setTransport(t);
    if (this._reader) this._reader._onWebEnd = () => this._webEnd(1);
    const handler = this._clientConnected;
    if (handler !== null) {
      const reader = this._reader!;
      const writer = new StreamWriter(t, this, reader, this._loop);
      this._streamWriter = writer;
      // The handler runs inside its Task from its first line, so
      // currentTask() is that task and cancel() (run()'s shutdown, say)
      // reaches the await it is suspended in.
      const task = this._loop.createTask(() => handler(reader, writer));
      task.addDoneCallback((done) => {
        if (done.cancelled()) {
          t.close();
          return;
        }
        const error = done.exception();
        if (error !== null) {
          this._loop.callExceptionHandler({
            message: "Unhandled exception in client_connected_cb",
            exception: error,
            transport: t,
          });
          t.close();
        }
      });
    }
  }

  /** Ends the reader (EOF or the error) and wakes drain() and waitClosed(). */
  override connectionLost(exc: Error | null): void {
    const reader = this._reader;
    if (reader !== null) {
      if (exc === null) reader.feedEof();
      else reader.setException(exc);
    }
    if (!this._closed.done()) {
      if (exc === null) this._closed.setResult(undefined);
      else this._closed.setException(exc);
    }
    this._connectionLost = true;
    for (const waiter of this._drainWaiters) {
      if (waiter.done()) continue;
      if (exc === null) waiter.setResult(undefined);
      else waiter.setException(exc);
    }
    this._drainWaiters = [];
    this._reader = null;
    this._streamWriter = null;
    this._transport = null;
  }

  /** Feeds the reader. */
  override dataReceived(data: Uint8Array): void {
    // The transport hands over a fresh copy: no need for another.
    this._reader?._feedOwned(data);
  }

  /** Feeds EOF to the reader; keeps the transport open for writing. */
  override eofReceived(): boolean {
    this._reader?.feedEof();
    // Keep the transport open for writing; the writer closes it.
    return true;
  }

  /** The transport is full: drain() waits. */
  override pauseWriting(): void {
    this._paused = true;
  }

  /** The transport drained: waiting drain() calls resolve. */
  override resumeWriting(): void {
    this._paused = false;
    for (const waiter of this._drainWaiters) {
      if (!waiter.done()) waiter.setResult(undefined);
    }
    this._drainWaiters = [];
  }

  /** @internal Whether writing is paused or the connection is gone. */
  _isPaused(): boolean {
    return this._paused || this._connectionLost;
  }

  /** @internal Waits while writing is paused. */
  async _drainHelper(): Promise<void> {
    if (this._connectionLost) {
      throw new ConnectionResetError(
        104,
        "ECONNRESET",
        "Connection lost",
        "drain",
      );
    }
    if (!this._paused) return;
    const waiter = this._loop.createFuture<void>();
    this._drainWaiters.push(waiter);
    await waiter;
  }

  /**
   * @internal A web stream adapter ended (1: readable, 2: writable); when
   * both have, the connection is closed.
   */
  _webEnd(side: number): void {
    this._webEnded |= side;
    if (this._webEnded === 3) this._transport?.close();
  }

  /** @internal Resolves when the connection is gone. */
  _getCloseWaiter(): Future<void> {
    return this._closed;
  }
}

/**
 * Writing to a stream: `write()` never blocks; `await drain()` waits
 * while the transport's buffer is over its high-water mark.
 */
export class StreamWriter {
  private readonly _transport: Transport;
  private readonly _protocol: StreamReaderProtocol;
  private readonly _reader: StreamReader | null;
  private readonly _loop: AbstractEventLoop;

  /** Made by openConnection()/startServer(). */
  constructor(
    transport: Transport,
    protocol: StreamReaderProtocol,
    reader: StreamReader | null,
    loop: AbstractEventLoop,
  ) {
    this._transport = transport;
    this._protocol = protocol;
    this._reader = reader;
    this._loop = loop;
  }

  /** The transport underneath. */
  get transport(): Transport {
    return this._transport;
  }

  /** Writes `data` (buffered if the kernel is full). */
  write(data: Uint8Array): void {
    this._transport.write(data);
  }

  /** Writes each chunk. */
  writelines(data: Iterable<Uint8Array>): void {
    this._transport.writelines(data);
  }

  /** Sends EOF after the buffered data. */
  writeEof(): void {
    this._transport.writeEof();
  }

  /** Whether writeEof() is supported. */
  canWriteEof(): boolean {
    return this._transport.canWriteEof();
  }

  /** Closes the transport (buffered data is still sent). */
  close(): void {
    this._transport.close();
  }

  /** Whether close() was called. */
  isClosing(): boolean {
    return this._transport.isClosing();
  }

  /** Resolves when the connection is closed. */
  async waitClosed(): Promise<void> {
    await this._protocol._getCloseWaiter();
  }

  /** Transport information: "peername", "sockname", "socket". */
  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    return this._transport.getExtraInfo(name, defaultValue);
  }

  /**
   * Waits until the write buffer is below its high-water mark. Throws the
   * reader's error if the connection failed.
   */
  drain(): Promise<void> {
    // The common case, writing below the high-water mark: nothing to wait for.
    if (
      !this._protocol._isPaused() && !this._transport.isClosing() &&
      (this._reader === null || this._reader.exception() === null)
    ) {
      return RESOLVED;
    }
    return this._drainSlow();
  }

  /** drain() when there is an error, a close or back-pressure. */
  private async _drainSlow(): Promise<void> {
    if (this._reader !== null) {
      const exc = this._reader.exception();
      if (exc !== null) throw exc;
    }
    if (this._transport.isClosing()) {
      // Let connectionLost() run (asyncio yields once here).
      const turn = this._loop.createFuture<void>();
      this._loop.callSoon(() => {
        if (!turn.done()) turn.setResult(undefined);
      });
      await turn;
    }
    await this._protocol._drainHelper();
  }

  /**
   * A web WritableStream into this writer: each chunk is written and
   * drained. Closing it sends EOF (a half-close: the reader goes on); the
   * connection closes once the reader's ReadableStream has ended too.
   */
  toWritableStream(): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      write: async (chunk) => {
        this.write(chunk);
        await this.drain();
      },
      close: async () => {
        if (this.canWriteEof()) this.writeEof();
        else this.close();
        await this.drain();
        this._protocol._webEnd(2);
      },
      abort: () => {
        this._transport.abort();
      },
    });
  }

  /** "<StreamWriter transport=...>". */
  toString(): string {
    return `<StreamWriter transport=${this._transport}${
      this._reader ? ` reader=${this._reader}` : ""
    }>`;
  }
}

function streamLoop(): AbstractEventLoop {
  return getRunningLoop();
}

/** A connection handler of startServer(). */
export type ClientConnected = (
  reader: StreamReader,
  writer: StreamWriter,
) => void | PromiseLike<void>;

/** Connects with `connect` and wraps the transport in a reader and writer. */
async function connectStreams(
  limit: number | undefined,
  connect: (
    loop: AbstractEventLoop,
    factory: () => StreamReaderProtocol,
  ) => Promise<[Transport, StreamReaderProtocol]>,
): Promise<[StreamReader, StreamWriter]> {
  const loop = streamLoop();
  const reader = new StreamReader(limit ?? STREAM_LIMIT, loop);
  const protocol = new StreamReaderProtocol(reader, null, loop);
  const [transport] = await connect(loop, () => protocol);
  return [reader, new StreamWriter(transport, protocol, reader, loop)];
}

/** A protocol factory that gives each connection to `clientConnected`. */
function serverProtocols(
  loop: AbstractEventLoop,
  limit: number | undefined,
  clientConnected: ClientConnected,
): () => StreamReaderProtocol {
  checkHandler(clientConnected);
  if (limit !== undefined) checkLimit(limit);
  return () =>
    new StreamReaderProtocol(
      new StreamReader(limit ?? STREAM_LIMIT, loop),
      clientConnected,
      loop,
    );
}

function checkHandler(handler: unknown): void {
  if (typeof handler !== "function") {
    throw new TypeError(
      `clientConnected must be a function, got ${String(handler)}`,
    );
  }
}

/**
 * Connects to `host`:`port` on the running loop: `[reader, writer]`.
 * Options are createConnection()'s plus `limit`. The result is a Task:
 * cancelling it (or a waitFor timeout) cancels the connect.
 */
export function openConnection(
  host?: string | null,
  port?: number | string | null,
  options: CreateConnectionOptions & StreamOptions = {},
): Promise<[StreamReader, StreamWriter]> {
  const { limit, ...rest } = options;
  return streamLoop().createTask(() =>
    connectStreams(
      limit,
      (loop, factory) => loop.createConnection(factory, host, port, rest),
    )
  );
}

/**
 * Serves on `host`:`port` from the running loop: `clientConnected(reader,
 * writer)` runs for every connection in a Task of its own, from its first
 * line (`currentTask()` is that task). Cancelling the task (run()'s
 * shutdown does) closes the connection; an error thrown by the handler
 * goes to the loop's exception handler and closes it too.
 */
export function startServer(
  clientConnected: ClientConnected,
  host?: string | string[] | null,
  port?: number | string | null,
  options: CreateServerOptions & StreamOptions = {},
): Promise<Server> {
  const loop = streamLoop();
  const { limit, ...rest } = options;
  return loop.createTask(async () =>
    await loop.createServer(
      serverProtocols(loop, limit, clientConnected),
      host,
      port,
      rest,
    ) as Server
  );
}

/** Connects to the Unix socket at `path`: `[reader, writer]`. */
export function openUnixConnection(
  path?: string | null,
  options: { sock?: Socket } & StreamOptions = {},
): Promise<[StreamReader, StreamWriter]> {
  const { limit, ...rest } = options;
  return streamLoop().createTask(() =>
    connectStreams(
      limit,
      (loop, factory) => loop.createUnixConnection(factory, path, rest),
    )
  );
}

/** Serves on the Unix socket at `path` (see startServer). */
export function startUnixServer(
  clientConnected: ClientConnected,
  path?: string | null,
  options: CreateUnixServerOptions & StreamOptions = {},
): Promise<Server> {
  const loop = streamLoop();
  const { limit, ...rest } = options;
  return loop.createTask(async () =>
    await loop.createUnixServer(
      serverProtocols(loop, limit, clientConnected),
      path,
      rest,
    ) as Server
  );
}
