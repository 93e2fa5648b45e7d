// Scheduling order and handles: ports of CPython test_events/test_base_events
// scenarios (call_soon, call_later, ordering, stop, nesting).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { newLoop, runLoop } from "./helpers.ts";
import { RuntimeError, sleep } from "../mod.ts";

describe("scheduling", () => {
  it("callSoon passes positional args (test_call_soon)", async () => {
    const loop = newLoop();
    const results: unknown[] = [];
    loop.callSoon(
      (a: string, b: string) => {
        results.push([a, b]);
        loop.stop();
      },
      "hello",
      "world",
    );
    await loop.runForever();
    assert.deepEqual(results, [["hello", "world"]]);
    loop.close();
  });

  it("callLater runs after the delay (test_call_later)", async () => {
    const loop = newLoop();
    const results: string[] = [];
    const t0 = loop.time();
    loop.callLater(100, (arg: string) => {
      results.push(arg);
      loop.stop();
    }, "hello world");
    await loop.runForever();
    assert.deepEqual(results, ["hello world"]);
    assert.ok(loop.time() - t0 >= 100 - 1, `took ${loop.time() - t0} ms`);
    loop.close();
  });

  it("nested runUntilComplete throws (test_run_until_complete_nesting)", async () => {
    const loop = newLoop();
    await assert.rejects(
      loop.runUntilComplete(async () => {
        await loop.runUntilComplete(async () => {});
      }),
      (e: Error) =>
        e instanceof RuntimeError && /already running/.test(e.message),
    );
    loop.close();
  });

  it("sleep inside runUntilComplete takes its time", async () => {
    await runLoop(async () => {
      const t0 = performance.now();
      await sleep(100);
      assert.ok(performance.now() - t0 >= 99);
    });
  });
});
