/**
 * The listening server that `createServer()` returns (asyncio's
 * `base_events.Server`): its sockets, its live connections, and the
 * serving state.
 *
 * @module
 */
import type { Socket } from "../ffi/socket.ts";
import { type AbstractEventLoop, AbstractServer } from "./events.ts";
import { CancelledError, RuntimeError } from "./exceptions.ts";
import type { Future } from "./futures.ts";
import type { BaseProtocol } from "./protocols.ts";
import type { Transport } from "./transports.ts";

/** What a server needs from its loop. */
export interface ServerLoop extends AbstractEventLoop {
  /** Starts accepting on `sock` for `server`. */
  _startServing(
    protocolFactory: () => BaseProtocol,
    sock: Socket,
    server: Server,
    backlog: number,
  ): void;
  /** Stops accepting on `sock` and closes it. */
  _stopServing(sock: Socket): void;
}

/** A listening server: sockets, connections, serving state. */
export class Server extends AbstractServer {
  private readonly _loop: ServerLoop;
  private _sockets: Socket[] | null;
  private readonly _protocolFactory: () => BaseProtocol;
  private readonly _backlog: number;
  private _activeCount = 0;
  private _waiters: Future<void>[] | null = [];
  private _serving = false;
  private _servingForeverFut: Future<void> | null = null;
  private readonly _clients = new Set<Transport>();
  private readonly _onClose: (() => void) | null;

  /** Created by the loop's createServer()/createUnixServer(). */
  constructor(
    loop: AbstractEventLoop,
    sockets: Socket[],
    protocolFactory: () => BaseProtocol,
    backlog: number,
    onClose: (() => void) | null = null,
  ) {
    super();
    this._loop = loop as ServerLoop;
    this._sockets = sockets;
    this._protocolFactory = protocolFactory;
    this._backlog = backlog;
    this._onClose = onClose;
  }

  /** @internal A connection of this server was made. */
  _attach(transport: Transport): void {
    this._activeCount++;
    this._clients.add(transport);
  }

  /** @internal A connection of this server is gone. */
  _detach(transport: Transport): void {
    this._activeCount--;
    this._clients.delete(transport);
    if (this._activeCount === 0 && this._sockets === null) this._wakeup();
  }

  /** Resolves every waitClosed() (closed and no connection left). */
  private _wakeup(): void {
    const waiters = this._waiters;
    this._waiters = null;
    for (const waiter of waiters ?? []) {
      if (!waiter.done()) waiter.setResult(undefined);
    }
  }

  /** @internal Listens and starts accepting. */
  _startServingNow(): void {
    if (this._serving || this._sockets === null) return;
    this._serving = true;
    for (const sock of this._sockets) {
      sock.listen(this._backlog);
      this._loop._startServing(
        this._protocolFactory,
        sock,
        this,
        this._backlog,
      );
    }
  }

  /** The listening sockets (empty once closed). */
  override get sockets(): Socket[] {
    return this._sockets === null ? [] : [...this._sockets];
  }

  /** The loop the server runs on. */
  override getLoop(): AbstractEventLoop {
    return this._loop;
  }

  /** Whether it accepts connections. */
  override isServing(): boolean {
    return this._serving;
  }

  /**
   * Stops listening and closes the listening sockets. Connections already
   * made stay open (see closeClients/abortClients). Idempotent.
   */
  override close(): void {
    const sockets = this._sockets;
    if (sockets === null) return;
    this._sockets = null;
    for (const sock of sockets) this._loop._stopServing(sock);
    this._serving = false;
    this._onClose?.();
    const forever = this._servingForeverFut;
    if (forever !== null && !forever.done()) forever.cancel();
    if (this._activeCount === 0) this._wakeup();
  }

  /** Closes every connection of this server (buffered data is sent). */
  override closeClients(): void {
    for (const transport of [...this._clients]) transport.close();
  }

  /** Aborts every connection of this server (buffered data is dropped). */
  override abortClients(): void {
    for (const transport of [...this._clients]) transport.abort();
  }

  /** Starts accepting (when created with `startServing: false`). */
  override async startServing(): Promise<void> {
    this._startServingNow();
    // Give the loop a turn, as asyncio does (sleep(0)).
    const fut = this._loop.createFuture<void>();
    this._loop.callSoon(() => {
      if (!fut.done()) fut.setResult(undefined);
    });
    await fut;
  }

  /**
   * Accepts until cancelled; cancelling closes the server and waits until
   * it is closed. RuntimeError if the server is closed or already serving
   * forever.
   */
  override async serveForever(): Promise<void> {
    if (this._servingForeverFut !== null) {
      throw new RuntimeError(
        `server ${this} is already being awaited on serveForever()`,
      );
    }
    if (this._sockets === null) {
      throw new RuntimeError(`server ${this} is closed`);
    }
    this._startServingNow();
    const fut = this._loop.createFuture<void>();
    this._servingForeverFut = fut;
    try {
      await fut;
    } catch (error) {
      if (error instanceof CancelledError) {
        try {
          this.close();
          await this.waitClosed();
        } finally {
          // deno-lint-ignore no-unsafe-finally
          throw error;
        }
      }
      throw error;
    } finally {
      this._servingForeverFut = null;
    }
  }

  /**
   * Resolves once the server is closed and every connection it made is
   * gone.
   */
  override async waitClosed(): Promise<void> {
    if (this._waiters === null) return;
    const waiter = this._loop.createFuture<void>();
    this._waiters.push(waiter);
    await waiter;
  }

  /** Closes and waits, for `await using server = ...`. */
  override async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.waitClosed();
  }

  /** "<Server sockets=[...]>". */
  override toString(): string {
    return `<Server sockets=[${this.sockets.map(String).join(", ")}]>`;
  }
}
