/**
 * Protocols (asyncio's `protocols.py`): the callbacks a transport calls.
 * Subclass one and override what you need; every method has a no-op
 * default.
 *
 * ```ts
 * class Echo extends Protocol {
 *   transport!: Transport;
 *   override connectionMade(transport: BaseTransport) {
 *     this.transport = transport as Transport;
 *   }
 *   override dataReceived(data: Uint8Array) {
 *     this.transport.write(data);
 *   }
 * }
 * ```
 *
 * @module
 */
import type { Address } from "../ffi/sys/sockaddr.ts";
import type { BaseTransport } from "./transports.ts";

/** What every protocol has: connection state and flow control. */
export class BaseProtocol {
  /** The connection is up; `transport` is how to talk back. */
  connectionMade(_transport: BaseTransport): void {}
  /**
   * The connection is gone: `exc` is the error, or null for a regular end
   * of file or a close(). Called once, last.
   */
  connectionLost(_exc: Error | null): void {}
  /** The transport's write buffer went over the high-water mark. */
  pauseWriting(): void {}
  /** The transport's write buffer drained to the low-water mark. */
  resumeWriting(): void {}
}

/** A streaming protocol: data arrives as byte chunks of any size. */
export class Protocol extends BaseProtocol {
  /** Some bytes arrived; the protocol owns `data`. */
  dataReceived(_data: Uint8Array): void {}
  /**
   * The peer sent EOF. Return true to keep the transport open for writing
   * (half-close); anything else closes it.
   */
  eofReceived(): boolean | void {}
}

/**
 * A streaming protocol that supplies its own receive buffers, saving a
 * copy: the transport reads straight into `getBuffer()`'s array.
 */
export class BufferedProtocol extends BaseProtocol {
  /** A buffer to receive into; at least 1 byte, `sizehint` wanted. */
  getBuffer(_sizehint: number): Uint8Array {
    throw new TypeError("BufferedProtocol.getBuffer() must be overridden");
  }
  /** `nbytes` bytes were written into the last buffer. */
  bufferUpdated(_nbytes: number): void {}
  /** The peer sent EOF (see {@link Protocol.eofReceived}). */
  eofReceived(): boolean | void {}
}

/** A datagram (UDP or Unix datagram) protocol. */
export class DatagramProtocol extends BaseProtocol {
  /** A datagram arrived from `addr`. */
  datagramReceived(_data: Uint8Array, _addr: Address): void {}
  /** A send or receive failed (ICMP errors such as ECONNREFUSED). */
  errorReceived(_exc: Error): void {}
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
