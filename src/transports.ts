/**
 * Transports (asyncio's `transports.py`): the abstract interfaces. The
 * selector loop's socket transports implement them.
 *
 * @module
 */
import type { Address } from "../ffi/sys/sockaddr.ts";
import { NotImplementedError } from "./exceptions.ts";
import type { BaseProtocol } from "./protocols.ts";

function abstract(name: string): never {
  throw new NotImplementedError(`${name} is not implemented by this transport`);
}

/** What every transport has. */
export class BaseTransport {
  /** Extra information: "peername", "sockname", "socket", ... */
  getExtraInfo(_name: string, defaultValue?: unknown): unknown {
    return defaultValue;
  }
  /** Whether close() was called (or the connection is going away). */
  isClosing(): boolean {
    return abstract("isClosing()");
  }
  /**
   * Closes the transport: buffered data is still sent, then the protocol's
   * connectionLost(null) is called.
   */
  close(): void {
    abstract("close()");
  }
  /** Replaces the protocol. */
  setProtocol(_protocol: BaseProtocol): void {
    abstract("setProtocol()");
  }
  /** The current protocol. */
  getProtocol(): BaseProtocol {
    return abstract("getProtocol()");
  }
}

/** The reading half. */
export class ReadTransport extends BaseTransport {
  /** Whether the transport is receiving. */
  isReading(): boolean {
    return abstract("isReading()");
  }
  /** Stops calling dataReceived() until resumeReading(). */
  pauseReading(): void {
    abstract("pauseReading()");
  }
  /** Resumes dataReceived() calls. */
  resumeReading(): void {
    abstract("resumeReading()");
  }
}

/** The writing half, with flow control. */
export class WriteTransport extends BaseTransport {
  /**
   * Sets the water marks, in bytes: pauseWriting() is called above
   * `high`, resumeWriting() at or below `low`. Defaults: 64 KiB and a
   * quarter of high.
   */
  setWriteBufferLimits(_high?: number | null, _low?: number | null): void {
    abstract("setWriteBufferLimits()");
  }
  /** Bytes buffered, not yet sent. */
  getWriteBufferSize(): number {
    return abstract("getWriteBufferSize()");
  }
  /** `[low, high]` water marks. */
  getWriteBufferLimits(): [number, number] {
    return abstract("getWriteBufferLimits()");
  }
  /** Sends `data` (or buffers it); never blocks. */
  write(_data: Uint8Array): void {
    abstract("write()");
  }
  /** Writes each chunk of `list`. */
  writelines(list: Iterable<Uint8Array>): void {
    for (const data of list) this.write(data);
  }
  /** Sends EOF after the buffered data (half-close). */
  writeEof(): void {
    abstract("writeEof()");
  }
  /** Whether writeEof() is supported. */
  canWriteEof(): boolean {
    return abstract("canWriteEof()");
  }
  /** Closes at once: buffered data is lost; connectionLost(null) follows. */
  abort(): void {
    abstract("abort()");
  }
}

/** A bidirectional stream transport (TCP, Unix streams). */
export class Transport extends WriteTransport {
  /** Whether the transport is receiving. */
  isReading(): boolean {
    return abstract("isReading()");
  }
  /** Stops calling dataReceived() until resumeReading(). */
  pauseReading(): void {
    abstract("pauseReading()");
  }
  /** Resumes dataReceived() calls. */
  resumeReading(): void {
    abstract("resumeReading()");
  }
}

/** A datagram transport (UDP, Unix datagrams). */
export class DatagramTransport extends BaseTransport {
  /** Sends one datagram to `addr` (the connected peer when omitted). */
  sendto(_data: Uint8Array, _addr?: Address | null): void {
    abstract("sendto()");
  }
  /** Closes at once, dropping buffered datagrams. */
  abort(): void {
    abstract("abort()");
  }
  /** Bytes of datagrams buffered, not yet sent. */
  getWriteBufferSize(): number {
    return abstract("getWriteBufferSize()");
  }
}
