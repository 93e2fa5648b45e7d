/**
 * The resolver Worker (Bun): makes blocking getaddrinfo/getnameinfo calls
 * on its own thread and posts the results back (see ffi/dns.ts).
 *
 * Messages in: `{ id, op: "getaddrinfo", req }` or
 * `{ id, op: "getnameinfo", family, sockaddr, flags }`.
 * Messages out: {@link DnsReply}.
 *
 * @module
 */
import {
  type AddrInfoRequest,
  type DnsReply,
  getaddrinfoHere,
  getnameinfoHere,
} from "./dns.ts";
import type { OSError } from "../src/exceptions.ts";
import type { Address } from "./sys/sockaddr.ts";

type Request =
  | { id: number; op: "getaddrinfo"; req: AddrInfoRequest }
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
  try {
    const value = request.op === "getaddrinfo"
      ? await getaddrinfoHere(request.req)
      : await getnameinfoHere(request.family, request.sockaddr, request.flags);
    scope.postMessage({ id: request.id, ok: true, value });
  } catch (e) {
    const error = e as OSError;
    scope.postMessage({
      id: request.id,
      ok: false,
      error: {
        errno: error.errno ?? 0,
        code: error.code ?? "EAI_FAIL",
        message: String(error.message),
        syscall: error.syscall ?? request.op,
      },
    });
  }
});
