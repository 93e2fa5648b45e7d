// The harness the networking tests share: one loop per test with a
// deadline, a failure on any call of the exception handler, and a check
// that no fd outlives the loop.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pid } from "node:process";
import {
  type AbstractServer,
  type ExceptionContext,
  type InetAddress,
  type SelectorEventLoop,
  sleep,
  Socket,
  waitFor,
} from "../mod.ts";
import { assertNoNewFds, newLoop, openFds } from "./helpers.ts";

/** Expects `p` to reject; hands the error to `check` (which asserts). */
export async function assertRejects(
  p: PromiseLike<unknown> | (() => PromiseLike<unknown>),
  check: (e: unknown) => void,
): Promise<void> {
  let result: unknown;
  try {
    result = await (typeof p === "function" ? p() : p);
  } catch (e) {
    check(e);
    return;
  }
  assert.fail(`expected a rejection, got ${String(result)}`);
}

/** A few loop iterations (asyncio's run_briefly). */
export async function runBriefly(times = 3): Promise<void> {
  for (let i = 0; i < times; i++) await sleep(0);
}

let warmedUp = false;
/** Lets the runtime open what it opens lazily (Workers, the resolver). */
async function warmUp(): Promise<void> {
  if (warmedUp) return;
  warmedUp = true;
  const loop = newLoop();
  try {
    await loop.runUntilComplete(async () => {
      await sleep(5);
      try {
        await loop.getaddrinfo("localhost", 80);
      } catch { /* only warming up */ }
    });
  } finally {
    loop.close();
  }
}

/** Options of {@link runNet}. */
export interface RunOptions {
  /** Deadline for the whole test body, ms (default 8000). */
  timeout?: number;
  /** Check that no fd outlives the loop (default true). */
  fds?: boolean;
}

/**
 * Runs `main` on a new loop, then closes it. Fails when the exception
 * handler is called (at once: the loop stops), when the deadline passes,
 * or when an fd outlives the loop.
 */
export async function runNet(
  main: (loop: SelectorEventLoop) => Promise<void>,
  { timeout = 8000, fds = true }: RunOptions = {},
): Promise<void> {
  await warmUp();
  const before = openFds();
  const loop = newLoop();
  const handled: ExceptionContext[] = [];
  const describeHandled = () =>
    handled.map((c) =>
      `${c.message}: ${String(c.exception)}` +
      (c.handle ? ` (in ${c.handle})` : "")
    );
  loop.setExceptionHandler((_loop, context) => {
    handled.push(context);
    loop.stop();
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    loop.stop();
  }, timeout);
  try {
    await loop.runUntilComplete(() => main(loop));
  } catch (e) {
    if (handled.length > 0) {
      throw new Error(
        `the exception handler was called: ${describeHandled().join("; ")}`,
        { cause: e },
      );
    }
    if (timedOut) {
      throw new Error(`the test did not finish within ${timeout} ms`, {
        cause: e,
      });
    }
    throw e;
  } finally {
    clearTimeout(timer);
    loop.close();
  }
  assert.deepEqual(
    describeHandled(),
    [],
    "nothing should reach the exception handler",
  );
  if (fds) await assertNoNewFds(before);
}

/** Whether this machine has the IPv6 loopback. */
export const HAS_IPV6 = (() => {
  try {
    return readFileSync("/proc/net/if_inet6", "utf8")
      .includes("00000000000000000000000000000001");
  } catch {
    return false;
  }
})();
/** A skip reason for tests that need ::1, or false. */
export const NO_IPV6: string | false = HAS_IPV6
  ? false
  : "no IPv6 loopback (::1) on this machine";

/** UTF-8 bytes of a string. */
export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
/** The string of UTF-8 bytes. */
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** The chunks joined. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** `n` bytes of a pattern that is not periodic in any small power of 2. */
export function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Byte equality without dumping megabytes into the failure message. */
export function assertSameBytes(
  actual: Uint8Array,
  expected: Uint8Array,
): void {
  const n = Math.min(actual.length, expected.length);
  let i = 0;
  while (i < n && actual[i] === expected[i]) i++;
  if (i === n && actual.length === expected.length) return;
  assert.fail(
    `bytes differ: ${actual.length} bytes received, ${expected.length} expected, first difference at offset ${i}`,
  );
}

/** An IPv4/IPv6 address, asserted to be one. */
export function inet(addr: unknown): InetAddress {
  assert.ok(Array.isArray(addr), `not an inet address: ${String(addr)}`);
  return addr as unknown as InetAddress;
}

/** The port of a server's first listening socket. */
export function serverPort(server: AbstractServer): number {
  assert.ok(server.sockets.length > 0, "the server has no socket");
  return inet(server.sockets[0].getsockname())[1];
}

let pathCounter = 0;
/** A fresh unix socket path under the temp dir (not created). */
export function tmpSockPath(prefix: string): string {
  const tag = Math.random().toString(36).slice(2, 8);
  return join(
    tmpdir(),
    `aioloop-${prefix}-${pid}-${++pathCounter}-${tag}.sock`,
  );
}

/** A fresh abstract-namespace unix address. */
export function abstractName(prefix: string): string {
  const tag = Math.random().toString(36).slice(2, 10);
  return `\0aioloop-${prefix}-${pid}-${++pathCounter}-${tag}`;
}

/**
 * A listener that connects stall on: its accept queue (backlog 0) is full
 * with one connection never accepted, so further SYNs are dropped.
 */
export async function stalledListener(
  loop: SelectorEventLoop,
): Promise<{ address: [string, number]; close(): void }> {
  const listener = new Socket();
  listener.bind(["127.0.0.1", 0]);
  listener.listen(0);
  const address = listener.getsockname() as [string, number];
  const fillers = [new Socket(), new Socket()];
  // Bounded: a dropped SYN would otherwise be retried for two minutes.
  await waitFor(loop.sockConnect(fillers[0], address), 2000);
  fillers[1].connectEx(address);
  return {
    address,
    close() {
      for (const sock of fillers) sock.close();
      listener.close();
    },
  };
}
