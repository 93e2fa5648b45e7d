/**
 * The resolver Worker (Bun): makes blocking getaddrinfo/getnameinfo calls
 * on its own thread and posts the results back (see ffi/dns.ts).
 *
 * Messages in: `{ id, op: "getaddrinfo", req, gate? }` or
 * `{ id, op: "getnameinfo", family, sockaddr, flags }`.
 * Messages out: {@link DnsReply}.
 *
 * @module
 */
import {
  type AddrInfoRequest,
  type DnsReply,
  errorToWire,
  getaddrinfoHere,
  getnameinfoHere,
} from "./dns.ts";
import type { Address } from "./sys/sockaddr.ts";

type Request =
  | { id: number; op: "getaddrinfo"; req: AddrInfoRequest; gate?: Int32Array }
  | {
    id: number;
    op: "getnameinfo";
    family: number;
    sockaddr: Address;
    flags: number;
  };

const scope = globalThis as unknown as {
  postMessage(message: DnsReply): void;
  addEventListener(
    type: "message",
    listener: (event: MessageEvent<Request>) => void,
  ): void;
};

scope.addEventListener("message", async (event) => {
  const request = event.data;
  // The test hook _holdNextLookup: block this thread, as a slow libc call would.
  if (request.op === "getaddrinfo" && request.gate) {
    Atomics.wait(request.gate, 0, 0);
  }
  try {
    const value = request.op === "getaddrinfo"
      ? await getaddrinfoHere(request.req)
      : await getnameinfoHere(request.family, request.sockaddr, request.flags);
    scope.postMessage({ id: request.id, ok: true, value });
  } catch (e) {
    // The caller gets the same class and fields (GaiError, RangeError...).
    scope.postMessage({ id: request.id, ok: false, error: errorToWire(e) });
  }
});
