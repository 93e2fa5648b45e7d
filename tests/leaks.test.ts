// Nothing outlives loop.close(): no fd, no Worker, no thread. Counts
// /proc/self/fd and /proc/self/task before and after.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { assertNoNewFds, newLoop, openFds, threadNames } from "./helpers.ts";
import { closeAll, pipe, readStr, writeStr } from "./sys.ts";
import { Protocol, sleep, SOCK_STREAM } from "../mod.ts";
import { runtime } from "../ffi/runtime.ts";

function threads(): number {
  return readdirSync("/proc/self/task").length;
}

/** Threads of ours: Bun Workers named aioloop-waiter / aioloop-dns. */
function ourThreads(): string[] {
  return threadNames().filter((name) => name.startsWith("aioloop"));
}

async function settleThreads(atMost: number, ms = 3000): Promise<number> {
  const deadline = performance.now() + ms;
  let now = threads();
  while (now > atMost && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    now = threads();
  }
  return now;
}

describe("the fd check itself", () => {
  it("names an fd left open, and never the fd its own listing used", async () => {
    // Free the lowest numbers by closing a pipe: the next listing's own
    // directory fd takes the lowest of them.
    const [r0, w0] = pipe();
    closeAll(r0, w0);
    assert.equal(openFds().has(String(Math.min(r0, w0))), false);
    const before = openFds();
    await assertNoNewFds(before, 100);
    const [r, w] = pipe();
    try {
      await assert.rejects(assertNoNewFds(before, 100), (e: Error) => {
        assert.match(e.message, new RegExp(`\\b${r} -> `));
        assert.match(e.message, new RegExp(`\\b${w} -> `));
        return true;
      });
    } finally {
      closeAll(r, w);
    }
  });
});

describe("no leaks after close()", () => {
  it("20 loops that waited, watched a pipe and ran timers leave no fd", async () => {
    // Warm the runtime up (its own lazily opened fds and threads).
    const warm = newLoop();
    await warm.runUntilComplete(() => sleep(5));
    warm.close();
    const before = openFds();
    for (let i = 0; i < 20; i++) {
      const loop = newLoop();
      const [r, w] = pipe();
      let got = "";
      loop.addReader(r, () => {
        got = readStr(r) ?? "";
        loop.removeReader(r);
        loop.stop();
      });
      loop.callLater(3, () => writeStr(w, `round ${i}`));
      await loop.runForever();
      assert.equal(got, `round ${i}`);
      await loop.runUntilComplete(() => sleep(1));
      loop.close();
      closeAll(r, w);
    }
    await assertNoNewFds(before);
  });

  it("closing a loop leaves no thread behind (waiter Worker or pool call)", async () => {
    const warm = newLoop();
    await warm.runUntilComplete(() => sleep(5));
    warm.close();
    const baseline = await settleThreads(0, 300);
    for (let i = 0; i < 5; i++) {
      const loop = newLoop();
      await loop.runUntilComplete(() => sleep(5));
      loop.close();
    }
    const after = await settleThreads(baseline);
    assert.ok(after <= baseline, `threads: ${baseline} before, ${after} after`);
  });

  it("a loop that resolved names and served TCP leaves no thread and no fd", async () => {
    // Warm up: the runtime's own lazily made fds.
    const warm = newLoop();
    await warm.runUntilComplete(async () => {
      await warm.getaddrinfo("localhost", 80);
    });
    warm.close();
    const before = openFds();
    for (let i = 0; i < 3; i++) {
      const loop = newLoop();
      await loop.runUntilComplete(async () => {
        // A name: the resolver (Deno's pool, or a Worker in Bun) is used.
        const infos = await loop.getaddrinfo("localhost", 0, {
          type: SOCK_STREAM,
        });
        const server = await loop.createServer(
          () => new Protocol(),
          "127.0.0.1",
          0,
        );
        const port = (server.sockets[0].getsockname() as [string, number])[1];
        await loop.createConnection(() => new Protocol(), "127.0.0.1", port);
        assert.ok(infos.length > 0);
        if (runtime === "bun") {
          assert.ok(ourThreads().includes("aioloop-dns"), "resolver Worker");
        }
        // Left open on purpose: close() must take the connection and server.
      });
      loop.close();
    }
    // Our Worker threads end with the loop. (Deno's resolver calls run on
    // the runtime's own blocking pool, whose idle threads Deno keeps.)
    const deadline = performance.now() + 3000;
    while (ourThreads().length > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.deepEqual(ourThreads(), []);
    await assertNoNewFds(before);
  });

  it("a loop closed while a remote handle is out leaves no fd", async () => {
    const before = openFds();
    const loop = newLoop();
    loop.createRemoteCallback(() => {});
    await loop.runUntilComplete(() => sleep(2));
    loop.close();
    loop.close(); // idempotent
    await assertNoNewFds(before);
  });

  it("close() right after a run does not hang on the waiter thread", async () => {
    // Regression: the waiter Worker could miss the exit notification and
    // make close() sit out its 1 s safety timeout.
    for (let i = 0; i < 10; i++) {
      const loop = newLoop();
      await loop.runUntilComplete(() => sleep(1));
      const t0 = performance.now();
      loop.close();
      const took = performance.now() - t0;
      assert.ok(took < 500, `close() took ${took.toFixed(0)} ms`);
    }
  });

  it("a loop that never ran closes cleanly", async () => {
    const before = openFds();
    for (let i = 0; i < 50; i++) newLoop().close();
    await assertNoNewFds(before);
  });
});
