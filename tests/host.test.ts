// The host runtime keeps running while the loop runs: its timers, native
// promises, fetch and HTTP servers work whether the loop waits or is busy,
// scheduling from host callbacks wakes the loop, and an idle loop does not
// burn CPU.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { newLoop, runLoop } from "./helpers.ts";
import {
  BUSY_YIELD_INTERVAL_MS,
  type Future,
  getRunningLoop,
  sleep,
} from "../mod.ts";

type Server = { url: string; close(): Promise<void> };

/** An HTTP server of the host runtime (Deno.serve or Bun.serve). */
function hostServer(): Server {
  const bun = Reflect.get(globalThis, "Bun") as
    | {
      serve(o: unknown): { port: number; stop(force: boolean): void };
    }
    | undefined;
  const handler = (req: Request) =>
    new Response(`host says hi to ${new URL(req.url).pathname}`);
  if (bun) {
    const server = bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: handler,
    });
    return {
      url: `http://127.0.0.1:${server.port}`,
      close: () => Promise.resolve(server.stop(true)),
    };
  }
  const deno = Reflect.get(globalThis, "Deno") as {
    serve(o: unknown, h: unknown): {
      addr: { port: number };
      shutdown(): Promise<void>;
      finished: Promise<void>;
    };
  };
  const server = deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    handler,
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    close: async () => {
      await server.shutdown();
      await server.finished;
    },
  };
}

/** Keeps the loop busy: a callSoon chain until `ms` have passed. */
function busyChain(ms: number): Future<number> {
  const loop = getRunningLoop();
  const fut = loop.createFuture<number>();
  const end = loop.time() + ms;
  let n = 0;
  const step = () => {
    n++;
    if (loop.time() < end) loop.callSoon(step);
    else fut.setResult(n);
  };
  loop.callSoon(step);
  return fut;
}

describe("host integration", () => {
  it("host timers and native promises run while the loop waits", async () => {
    const events: string[] = [];
    await runLoop(async () => {
      setTimeout(() => events.push("host timer"), 10);
      queueMicrotask(() => events.push("microtask"));
      await sleep(60);
      events.push("loop sleep done");
    });
    assert.deepEqual(events, ["microtask", "host timer", "loop sleep done"]);
  });

  it("host timers fire while the loop is busy", async () => {
    const gaps: number[] = [];
    let last = performance.now();
    let ticking = true;
    const tick = () => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
      if (ticking) setTimeout(tick, 1);
    };
    setTimeout(tick, 1);
    const callbacks = await runLoop(() => busyChain(600));
    ticking = false;
    assert.ok(callbacks > 1000, `only ${callbacks} callbacks ran`);
    // The loop yields every BUSY_YIELD_INTERVAL_MS. A frozen host shows one
    // gap as long as the whole busy chain (600 ms); half of that leaves room
    // for a loaded machine (other jobs on both CPUs, a GC pause), where 150
    // ms was exceeded about once in three runs, on the old tree too.
    assert.ok(
      gaps.length >= 10,
      `host timer ran ${gaps.length} times in 600 ms`,
    );
    const worst = Math.max(...gaps.slice(1));
    assert.ok(
      worst < 300,
      `host timer gap ${worst} ms (yield interval ${BUSY_YIELD_INTERVAL_MS} ms)`,
    );
  });

  it("a host HTTP server answers fetch from a task while the loop is busy", async () => {
    const server = hostServer();
    try {
      const [text, callbacks] = await runLoop(async () => {
        const loop = getRunningLoop();
        const busy = busyChain(200);
        const task = loop.createTask(async () => {
          const res = await fetch(`${server.url}/task`);
          return await res.text();
        });
        return [await task, await busy] as [string, number];
      });
      assert.equal(text, "host says hi to /task");
      assert.ok(callbacks > 100);
    } finally {
      await server.close();
    }
  });

  it("a host HTTP server answers while the loop waits idle", async () => {
    const server = hostServer();
    try {
      const text = await runLoop(async () => {
        const res = await fetch(`${server.url}/idle`);
        return await res.text();
      });
      assert.equal(text, "host says hi to /idle");
    } finally {
      await server.close();
    }
  });

  it("callSoon from a host timer or a promise wakes a waiting loop", async () => {
    const loop = newLoop();
    const order: string[] = [];
    setTimeout(() => loop.callSoon(() => order.push("from timer")), 10);
    setTimeout(() => {
      Promise.resolve().then(() =>
        loop.callSoon(() => {
          order.push("from microtask");
          loop.stop();
        })
      );
    }, 30);
    const safety = loop.callLater(10_000, () => loop.stop());
    const t0 = performance.now();
    await loop.runForever();
    assert.deepEqual(order, ["from timer", "from microtask"]);
    assert.ok(performance.now() - t0 < 5_000);
    safety.cancel();
    loop.close();
  });

  it("a timer added from a host callback while the loop waits without deadline fires on time", async () => {
    const loop = newLoop();
    let firedAfter = -1;
    let scheduledAt = 0;
    // The loop waits with no timeout; a wake from outside may keep that
    // poll in flight, but a new deadline must replace it.
    setTimeout(() => loop.callSoon(() => {}), 10);
    setTimeout(() => {
      scheduledAt = performance.now();
      loop.callLater(30, () => {
        firedAfter = performance.now() - scheduledAt;
        loop.stop();
      });
    }, 40);
    const safety = setTimeout(() => loop.stop(), 10_000);
    await loop.runForever();
    clearTimeout(safety);
    loop.close();
    assert.ok(firedAfter >= 29, `fired after ${firedAfter} ms`);
    assert.ok(firedAfter < 2_000, `fired after ${firedAfter} ms`);
  });

  it("stop() from a host timer ends a waiting loop promptly", async () => {
    const loop = newLoop();
    loop.callLater(10_000, () => {});
    setTimeout(() => loop.stop(), 20);
    const t0 = performance.now();
    await loop.runForever();
    assert.ok(performance.now() - t0 < 5_000);
    loop.close();
  });

  it("an idle loop uses (almost) no CPU", async () => {
    const loop = newLoop();
    loop.callLater(1, () => loop.stop());
    await loop.runForever(); // start the waiter outside the measurement
    loop.callLater(600, () => loop.stop());
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await loop.runForever();
    const wall = (performance.now() - t0) * 1000;
    const used = process.cpuUsage(cpu0);
    const share = (used.user + used.system) / wall;
    loop.close();
    // Busy polling would use ~100% of a core; allow noise from the runtime.
    assert.ok(share < 0.2, `idle loop used ${(share * 100).toFixed(1)}% CPU`);
  });
});
