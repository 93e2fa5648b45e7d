// Futures, tasks, the helpers on them (sleep, gather, waitFor, shield) and
// PEP 567 contexts, against asyncio's behaviour.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { newLoop, runLoop } from "./helpers.ts";
import {
  allTasks,
  CancelledError,
  Context,
  ContextVar,
  copyContext,
  currentTask,
  ensureFuture,
  type Future,
  gather,
  getRunningLoop,
  InvalidStateError,
  LookupError,
  shield,
  sleep,
  Task,
  TimeoutError,
  waitFor,
  withContext,
} from "../mod.ts";

describe("Future", () => {
  it("result, exception and states", () => {
    const loop = newLoop();
    const f = loop.createFuture<number>();
    assert.equal(f.done(), false);
    assert.throws(() => f.result(), {
      name: "InvalidStateError",
      message: "Result is not ready.",
    });
    assert.throws(() => f.exception(), InvalidStateError);
    f.setResult(3);
    assert.equal(f.result(), 3);
    assert.equal(f.exception(), null);
    assert.throws(() => f.setResult(4), InvalidStateError);
    assert.equal(f.cancel(), false);
    assert.equal(String(f), "<Future finished result=3>");
    const g = loop.createFuture();
    const err = new Error("e");
    g.setException(err);
    assert.throws(() => g.result(), err);
    assert.equal(g.exception(), err);
    const c = loop.createFuture();
    assert.equal(c.cancel("why"), true);
    assert.equal(c.cancelled(), true);
    assert.throws(() => c.result(), { name: "CancelledError", message: "why" });
    loop.close();
  });

  it("done callbacks run through the loop, in the next iteration", async () => {
    const loop = newLoop();
    const f = loop.createFuture<string>();
    const seen: string[] = [];
    const cb = (fut: Future<string>) => seen.push(fut.result());
    f.addDoneCallback(cb);
    f.addDoneCallback(cb);
    f.addDoneCallback((fut) => seen.push("other " + fut.result()));
    assert.equal(f.removeDoneCallback(cb), 2);
    f.setResult("r");
    assert.deepEqual(seen, []); // not synchronous
    await loop.runUntilComplete(() => sleep(0));
    assert.deepEqual(seen, ["other r"]);
    loop.close();
  });

  it("native await of pending and done futures", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      const done = loop.createFuture<number>();
      done.setResult(1);
      assert.equal(await done, 1);
      const later = loop.createFuture<number>();
      loop.callLater(2, () => later.setResult(2));
      assert.equal(await later, 2);
      const failing = loop.createFuture();
      loop.callSoon(() => failing.setException(new RangeError("bad")));
      await assert.rejects(failing, RangeError);
    });
  });
});

describe("Task", () => {
  it("runs lazily on the loop and gives its result to await", async () => {
    const loop = newLoop();
    let started = false;
    const t = loop.createTask(async () => {
      started = true;
      await sleep(1);
      return "value";
    });
    assert.equal(started, false);
    assert.match(t.getName(), /^Task-\d+$/);
    assert.equal(await loop.runUntilComplete(t), "value");
    assert.equal(started, true);
    const named = loop.createTask(async () => {}, { name: "worker" });
    assert.equal(named.getName(), "worker");
    named.setName("renamed");
    assert.equal(named.getName(), "renamed");
    await loop.runUntilComplete(named);
    loop.close();
  });

  it("cancel() makes the awaited sleep throw CancelledError inside (test_prompt_cancellation)", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      let inside: unknown = null;
      const t = loop.createTask(async () => {
        try {
          await sleep(10_000);
        } catch (e) {
          inside = e;
          throw e;
        }
      });
      await sleep(1);
      assert.equal(t.cancel("stop it"), true);
      assert.equal(t.cancelling(), 1);
      await assert.rejects(t, { name: "CancelledError", message: "stop it" });
      assert.ok(inside instanceof CancelledError);
      assert.equal(t.cancelled(), true);
      assert.equal(t.cancel(), false);
    });
  });

  it("a task that swallows the cancel completes normally", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      const t = loop.createTask(async () => {
        try {
          await sleep(10_000);
        } catch {
          return "swallowed";
        }
      });
      await sleep(1);
      t.cancel();
      assert.equal(await t, "swallowed");
      assert.equal(t.cancelled(), false);
    });
  });

  it("cancelled before its first step: the function never runs", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      let ran = false;
      // deno-lint-ignore require-await
      const t = loop.createTask(async () => {
        ran = true;
      });
      t.cancel();
      await assert.rejects(t, CancelledError);
      assert.equal(ran, false);
    });
  });

  it("a cancel while awaiting a native promise lands at the next loop-future await", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      const steps: string[] = [];
      let aborted = false;
      const t = loop.createTask(async () => {
        const task = currentTask()!;
        task.signal.addEventListener("abort", () => aborted = true);
        await new Promise((r) => setTimeout(r, 20));
        steps.push("native promise settled");
        await sleep(10_000);
        steps.push("never");
      });
      await sleep(5);
      t.cancel();
      assert.equal(aborted, true);
      await assert.rejects(t, CancelledError);
      assert.deepEqual(steps, ["native promise settled"]);
    });
  });

  it("uncancel() withdraws a request", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      const t = loop.createTask(() =>
        new Promise((r) => setTimeout(() => r("done"), 10))
      );
      await sleep(0);
      t.cancel();
      assert.equal(t.uncancel(), 0);
      assert.equal(await t, "done");
    });
  });

  it("currentTask inside task code, null in plain callbacks; allTasks", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      const outer = currentTask();
      assert.ok(outer instanceof Task);
      let inCallback: unknown = "unset";
      loop.callSoon(() => inCallback = currentTask());
      const t = loop.createTask(async () => {
        await sleep(1);
        // (Returning the task itself would make `await t` adopt it forever,
        // as resolving a promise with a thenable does.)
        return currentTask()?.getName();
      }, { name: "me" });
      assert.ok(allTasks().has(t));
      assert.equal(await t, "me");
      assert.equal(inCallback, null);
      assert.equal(allTasks().has(t), false);
    });
  });

  it("a task nobody references still completes (strong refs)", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      const done = loop.createFuture<string>();
      loop.createTask(async () => {
        await sleep(5);
        done.setResult("finished");
      });
      const gc = (globalThis as { gc?: () => void }).gc ??
        (Reflect.get(globalThis, "Bun") as
          | { gc?: (f: boolean) => void }
          | undefined)?.gc?.bind(null, true);
      gc?.();
      assert.equal(await done, "finished");
    });
  });

  it("createTask on a closed loop throws; a non-function is a TypeError", () => {
    const loop = newLoop();
    assert.throws(
      () => new Task(42 as unknown as () => void, { loop }),
      TypeError,
    );
    loop.close();
    assert.throws(() => loop.createTask(async () => {}), {
      message: "Event loop is closed",
    });
  });
});

describe("sleep, gather, waitFor, shield, ensureFuture", () => {
  it("sleep(0) yields one iteration; sleep passes its result", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      const order: string[] = [];
      loop.callSoon(() => order.push("callback"));
      await sleep(0);
      order.push("after sleep(0)");
      assert.deepEqual(order, ["callback", "after sleep(0)"]);
      assert.equal(await sleep(1, "x"), "x");
      assert.throws(() => sleep(NaN), TypeError);
    });
  });

  it("gather keeps order; returnExceptions; first error; cancel propagates", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      assert.deepEqual(
        await gather(sleep(5, "a"), sleep(1, "b"), () => Promise.resolve("c")),
        ["a", "b", "c"],
      );
      assert.deepEqual(await gather([]), []);
      const err = new Error("e");
      const mixed = await gather([sleep(1, 1), Promise.reject(err)], {
        returnExceptions: true,
      });
      assert.deepEqual(mixed, [1, err]);
      await assert.rejects(gather(sleep(50), Promise.reject(err)), err);
      const child = loop.createTask(() => sleep(10_000));
      const g = gather(child);
      await sleep(0);
      g.cancel();
      await assert.rejects(g, CancelledError);
      assert.equal(child.cancelled(), true);
    });
  });

  it("waitFor: result in time, TimeoutError and inner cancelled otherwise", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      assert.equal(await waitFor(sleep(1, "ok"), 1000), "ok");
      const inner = loop.createTask(() => sleep(10_000));
      await assert.rejects(waitFor(inner, 5), TimeoutError);
      assert.equal(inner.cancelled(), true);
      assert.equal(await waitFor(sleep(1, "n"), null), "n");
    });
  });

  it("shield protects the inner future from cancellation", async () => {
    await runLoop(async () => {
      const loop = getRunningLoop();
      const inner = loop.createTask(() => sleep(5, "inner"));
      const outer = shield(inner);
      outer.cancel();
      await assert.rejects(outer, CancelledError);
      assert.equal(await inner, "inner");
    });
  });

  it("ensureFuture and runUntilComplete argument errors", async () => {
    const a = newLoop();
    const b = newLoop();
    assert.throws(() => ensureFuture(42 as never, a), {
      name: "TypeError",
      message: "An asyncio.Future, a coroutine or an awaitable is required",
    });
    const f = b.createFuture();
    assert.equal(ensureFuture(f, b), f);
    await assert.rejects(a.runUntilComplete(f), {
      name: "RangeError",
      message:
        "The future belongs to a different loop than the one specified as the loop argument",
    });
    assert.equal(await a.runUntilComplete(Promise.resolve(5)), 5);
    assert.equal(await a.runUntilComplete(() => Promise.resolve(6)), 6);
    a.close();
    b.close();
  });
});

describe("contextvars (PEP 567)", () => {
  it("get/set/reset and Context.run isolation", () => {
    const v = new ContextVar<number>("v", { default: 0 });
    const w = new ContextVar<number>("w");
    assert.throws(() => w.get(), LookupError);
    assert.equal(w.get(5), 5);
    const ctx = new Context();
    ctx.run(() => {
      const token = v.set(1);
      assert.equal(v.get(), 1);
      v.reset(token);
      assert.equal(v.get(), 0);
      assert.throws(() => v.reset(token), { name: "RuntimeError" });
      v.set(2);
      assert.throws(() => ctx.run(() => {}), {
        name: "RuntimeError",
        message: /already entered/,
      });
    });
    assert.equal(ctx.get(v), 2);
    assert.equal(v.get(), 0);
    const copy = ctx.copy();
    copy.run(() => v.set(3));
    assert.equal(ctx.get(v), 2);
    assert.equal(copy.get(v), 3);
  });

  it("each callback runs in a copy of the context current when it was scheduled", async () => {
    const v = new ContextVar<string>("cb", { default: "none" });
    const loop = newLoop();
    const seen: string[] = [];
    const outer = new Context();
    outer.run(() => {
      v.set("scheduled");
      loop.callSoon(() => {
        seen.push(v.get());
        v.set("changed by first");
      });
      loop.callSoon(() => seen.push(v.get()));
    });
    const shared = copyContext();
    loop.callSoon(() => v.set("in shared"), withContext(shared));
    loop.callSoon(() => {
      seen.push(shared.get(v) ?? "unset");
      loop.stop();
    });
    await loop.runForever();
    assert.deepEqual(seen, ["scheduled", "scheduled", "in shared"]);
    assert.equal(outer.get(v), "scheduled");
    loop.close();
  });

  it("values flow across native await; each task has its own copy", async () => {
    const v = new ContextVar<string>("task", { default: "root" });
    await runLoop(async () => {
      const loop = getRunningLoop();
      v.set("main");
      const child = loop.createTask(async () => {
        assert.equal(v.get(), "main");
        v.set("child");
        await new Promise((r) => setTimeout(r, 2));
        await sleep(1);
        return v.get();
      });
      assert.equal(await child, "child");
      assert.equal(v.get(), "main");
    });
  });

  it("the first ContextVar.set inside a loop callback stays in that callback", () => {
    // Module state (whether contexts were ever used) is per process: run
    // the scenario in a fresh one.
    const script = fileURLToPath(
      new URL("./fixtures/first_set.ts", import.meta.url),
    );
    const bun = Reflect.get(globalThis, "Bun") !== undefined;
    const exe =
      (globalThis as { process?: { execPath: string } }).process!.execPath;
    const out = execFileSync(exe, bun ? [script] : ["run", "-A", script], {
      encoding: "utf8",
    });
    assert.equal(out.trim(), "first=inside second=default later=default");
  });
});
