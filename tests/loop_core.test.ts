// The loop core against asyncio's contract: ports of test_events.py and
// test_base_events.py scenarios (ordering, stop, closed-loop errors, timer
// compaction, exception handler, debug mode, handles, policy).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { captureLog, newLoop, policy, runLoop } from "./helpers.ts";
import { scheduleFromApp } from "./fixtures/src/app.ts";
import {
  AbstractEventLoop,
  AbstractEventLoopPolicy,
  AbstractServer,
  DefaultEventLoopPolicy,
  EVENT_READ,
  FatalError,
  getEventLoop,
  getEventLoopPolicy,
  getRunningLoop,
  Handle,
  MIN_SCHEDULED_TIMER_HANDLES,
  newEventLoop,
  NotImplementedError,
  os,
  run,
  RuntimeError,
  setEventLoop,
  setEventLoopPolicy,
  sleep,
  Task,
  TimerHandle,
} from "../mod.ts";

const noop = () => {};

describe("ordering (test_base_events / asyncio-semantics §3)", () => {
  it("callSoon is FIFO", async () => {
    const loop = newLoop();
    const got: number[] = [];
    for (let i = 0; i < 50; i++) loop.callSoon((n: number) => got.push(n), i);
    loop.callSoon(() => loop.stop());
    await loop.runForever();
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
    loop.close();
  });

  it("callLater(0) made before callSoon runs after it", async () => {
    const loop = newLoop();
    const got: string[] = [];
    loop.callLater(0, () => got.push("later0"));
    loop.callSoon(() => got.push("soon"));
    loop.callLater(1, () => loop.stop());
    await loop.runForever();
    assert.deepEqual(got, ["soon", "later0"]);
    loop.close();
  });

  it("callbacks scheduled by a callback run in the next iteration", async () => {
    const loop = newLoop();
    const got: string[] = [];
    loop.callSoon(() => {
      got.push("a");
      loop.callSoon(() => got.push("c"));
    });
    loop.callSoon(() => {
      got.push("b");
      loop.stop();
    });
    await loop.runForever();
    assert.deepEqual(got, ["a", "b"]); // c is left queued
    assert.equal(loop._ready.length, 1);
    loop.callSoon(() => loop.stop());
    await loop.runForever();
    assert.deepEqual(got, ["a", "b", "c"]);
    loop.close();
  });

  it("an earlier callback can cancel a later one in the same batch", async () => {
    const loop = newLoop();
    const got: string[] = [];
    let h2: Handle | null = null;
    loop.callSoon(() => h2!.cancel());
    h2 = loop.callSoon(() => got.push("cancelled one ran"));
    loop.callSoon(() => loop.stop());
    await loop.runForever();
    assert.deepEqual(got, []);
    loop.close();
  });

  it("negative delays run earliest first (test_call_later_negative_delays)", async () => {
    const loop = newLoop();
    const got: string[] = [];
    loop.callLater(-1, (x: string) => got.push(x), "a");
    loop.callLater(-2, (x: string) => got.push(x), "b");
    loop.callLater(0, () => loop.stop());
    await loop.runForever();
    assert.deepEqual(got, ["b", "a"]);
    loop.close();
  });

  it("timers with equal when all run in one iteration", async () => {
    const loop = newLoop();
    const when = loop.time() + 5;
    const got: number[] = [];
    for (let i = 0; i < 12; i++) loop.callAt(when, () => got.push(i));
    loop.callAt(when + 1, () => loop.stop());
    await loop.runForever();
    assert.deepEqual(
      [...got].sort((a, b) => a - b),
      Array.from({ length: 12 }, (_, i) => i),
    );
    loop.close();
  });

  it("stop() before runForever runs exactly one iteration (test_run_forever_pre_stopped)", async () => {
    const loop = newLoop();
    const got: string[] = [];
    loop.callSoon(() => {
      got.push("first");
      loop.callSoon(() => got.push("second"));
    });
    loop.stop();
    await loop.runForever();
    assert.deepEqual(got, ["first"]);
    loop.close();
  });

  it("runUntilComplete on a done future runs one full iteration", async () => {
    const loop = newLoop();
    const got: string[] = [];
    loop.callSoon(() => got.push("queued earlier"));
    const fut = loop.createFuture<number>();
    fut.setResult(7);
    assert.equal(await loop.runUntilComplete(fut), 7);
    assert.deepEqual(got, ["queued earlier"]);
    loop.close();
  });

  it("stopped before the future completed -> RuntimeError (test_run_until_complete_stopped)", async () => {
    const loop = newLoop();
    await assert.rejects(
      loop.runUntilComplete(async () => {
        loop.stop();
        await sleep(10);
      }),
      {
        name: "RuntimeError",
        message: "Event loop stopped before Future completed.",
      },
    );
    loop.close();
  });

  it("another running loop -> RuntimeError", async () => {
    const a = newLoop();
    const b = newLoop();
    await a.runUntilComplete(async () => {
      await assert.rejects(b.runUntilComplete(async () => {}), {
        message: "Cannot run the event loop while another loop is running",
      });
    });
    a.close();
    b.close();
  });
});

describe("closed and running loops (test_close)", () => {
  it("every scheduling call on a closed loop raises 'Event loop is closed'", async () => {
    const loop = newLoop();
    loop.close();
    loop.close(); // idempotent
    assert.equal(loop.isClosed(), true);
    const closed = { name: "RuntimeError", message: "Event loop is closed" };
    assert.throws(() => loop.callSoon(noop), closed);
    assert.throws(() => loop.callLater(1, noop), closed);
    assert.throws(() => loop.callAt(1, noop), closed);
    assert.throws(() => loop.callSoonThreadsafe(noop), closed);
    assert.throws(() => loop.createTask(async () => {}), closed);
    assert.throws(() => loop.addReader(0, noop), closed);
    assert.throws(() => loop.addWriter(1, noop), closed);
    await assert.rejects(loop.runForever(), closed);
    await assert.rejects(loop.runUntilComplete(loop.createFuture()), closed);
  });

  it("close() of a running loop throws (test_close_running_event_loop)", async () => {
    const loop = newLoop();
    // deno-lint-ignore require-await
    await loop.runUntilComplete(async () => {
      assert.throws(() => loop.close(), {
        name: "RuntimeError",
        message: "Cannot close a running event loop",
      });
      assert.equal(loop.isRunning(), true);
    });
    assert.equal(loop.isRunning(), false);
    loop.close();
  });

  it("close() drops queued callbacks and timers", () => {
    const loop = newLoop();
    const h = loop.callSoon(noop);
    const t = loop.callLater(10, noop);
    loop.close();
    assert.equal(loop._ready.length, 0);
    assert.equal(loop._scheduled.size, 0);
    assert.equal(h.cancelled(), true);
    assert.equal(t.cancelled(), false); // asyncio leaves timers as they are
  });
});

describe("argument checks", () => {
  it("null delay / when -> TypeError with asyncio's message", () => {
    const loop = newLoop();
    assert.throws(() => loop.callLater(null as unknown as number, noop), {
      name: "TypeError",
      message: "delay must not be null",
    });
    assert.throws(() => loop.callAt(null as unknown as number, noop), {
      name: "TypeError",
      message: "when cannot be null",
    });
    assert.throws(
      () => loop.callLater("1" as unknown as number, noop),
      TypeError,
    );
    loop.close();
  });

  it("non-callables -> TypeError naming the method (test_call_soon_non_callable)", () => {
    const loop = newLoop();
    assert.throws(() => loop.callSoon(1 as unknown as () => void), {
      name: "TypeError",
      message: "a callable object was expected by callSoon(), got 1",
    });
    assert.throws(() => loop.callLater(1, "x" as unknown as () => void), {
      message: "a callable object was expected by callLater(), got x",
    });
    assert.throws(
      () => loop.callSoon(Promise.resolve() as unknown as () => void),
      { message: "coroutines cannot be used with callSoon()" },
    );
    loop.setDebug(true);
    assert.throws(() => loop.callSoon(async () => {}), {
      message: "coroutines cannot be used with callSoon()",
    });
    loop.close();
  });

  it("setExceptionHandler and setTaskFactory validate (test_set_exc_handler_invalid)", () => {
    const loop = newLoop();
    assert.throws(() => loop.setExceptionHandler("spam" as unknown as null), {
      name: "TypeError",
      message: "A callable object or null is expected, got 'spam'",
    });
    assert.throws(() => loop.setTaskFactory(1 as unknown as null), {
      name: "TypeError",
      message: "task factory must be a callable or null",
    });
    loop.close();
  });
});

describe("cancelled timers (test__run_once_cancelled_event_cleanup)", () => {
  it("below the threshold only the head is cleaned", async () => {
    const loop = newLoop();
    const timers = Array.from(
      { length: 100 },
      (_, i) => loop.callLater(1000 + i, noop),
    );
    for (const t of timers.slice(1)) t.cancel();
    assert.equal(loop._timerCancelledCount, 99);
    loop.stop();
    await loop.runForever();
    // 100 entries is not more than the threshold: no rebuild; the head is
    // live, so nothing is popped.
    assert.equal(loop._scheduled.size, 100);
    timers[0].cancel();
    loop.stop();
    await loop.runForever();
    assert.equal(loop._scheduled.size, 0);
    loop.close();
  });

  it("51 cancelled of 100 plus one live: the heap is rebuilt", async () => {
    const loop = newLoop();
    const live = loop.callLater(5000, noop);
    const cancelled = Array.from(
      { length: 51 },
      () => loop.callLater(1000, noop),
    );
    const kept = Array.from({ length: 49 }, () => loop.callLater(6000, noop));
    for (const t of cancelled) t.cancel();
    assert.equal(loop._scheduled.size, 101);
    assert.ok(loop._scheduled.size > MIN_SCHEDULED_TIMER_HANDLES);
    loop.stop();
    await loop.runForever();
    assert.equal(loop._scheduled.size, 50);
    assert.equal(loop._timerCancelledCount, 0);
    for (const t of cancelled) assert.equal(t._scheduled, false);
    assert.equal(live._scheduled, true);
    void kept;
    loop.close();
  });

  it("a million schedule/cancel cycles keep the heap bounded", async () => {
    const loop = newLoop();
    let maxSize = 0;
    await runLoop(async () => {
      for (let round = 0; round < 100; round++) {
        for (let i = 0; i < 10_000; i++) loop.callLater(60_000, noop).cancel();
        maxSize = Math.max(maxSize, loop._scheduled.size);
        await sleep(0);
      }
    }, loop);
    // Without compaction the heap would hold 1,000,000 entries.
    assert.ok(
      maxSize <= 10_000 + MIN_SCHEDULED_TIMER_HANDLES,
      `heap reached ${maxSize}`,
    );
  });

  it("cancelling a timer after it fired leaves the count alone", async () => {
    const loop = newLoop();
    const t = loop.callLater(0, noop);
    await loop.runUntilComplete(() => sleep(2));
    t.cancel();
    assert.equal(loop._timerCancelledCount, 0);
    loop.close();
  });
});

describe("exception handler (test_default_exc_handler_*, test_set_exc_handler_*)", () => {
  it("a throwing callback is reported with message/exception/handle, and the loop goes on", async () => {
    const loop = newLoop();
    const contexts: Record<string, unknown>[] = [];
    loop.setExceptionHandler((l, ctx) => {
      assert.equal(l, loop);
      contexts.push(ctx);
    });
    const err = new Error("boom");
    function failing() {
      throw err;
    }
    const h = loop.callSoon(failing);
    const after: string[] = [];
    loop.callSoon(() => after.push("still running"));
    loop.callLater(1, () => loop.stop());
    await loop.runForever();
    assert.equal(contexts.length, 1);
    assert.deepEqual(Object.keys(contexts[0]).sort(), [
      "exception",
      "handle",
      "message",
    ]);
    assert.equal(contexts[0].message, "Exception in callback failing()");
    assert.equal(contexts[0].exception, err);
    assert.equal(contexts[0].handle, h);
    assert.deepEqual(after, ["still running"]);
    loop.close();
  });

  it("the default handler logs 'Exception in callback ...'", async () => {
    const loop = newLoop();
    const { errors } = await captureLog(async () => {
      loop.callSoon(function bad() {
        throw new Error("x");
      });
      loop.callLater(1, () => loop.stop());
      await loop.runForever();
    });
    assert.equal(errors.length, 1);
    assert.match(
      errors[0][0],
      /^Exception in callback bad\(\)\nhandle: <Handle bad\(\)>/,
    );
    assert.equal((errors[0][1] as Error).message, "x");
    loop.close();
  });

  it("a broken custom handler is reported by the default one", async () => {
    const loop = newLoop();
    loop.setExceptionHandler(() => {
      throw new Error("handler broke");
    });
    const { errors } = await captureLog(() => {
      loop.callExceptionHandler({ message: "original" });
    });
    assert.equal(errors.length, 1);
    assert.match(errors[0][0], /^Unhandled error in exception handler/);
    assert.equal((errors[0][1] as Error).message, "handler broke");
    loop.close();
  });

  it("an async callback's rejection reaches the handler", async () => {
    const loop = newLoop();
    const seen: unknown[] = [];
    loop.setExceptionHandler((_l, ctx) => seen.push(ctx.exception));
    loop.callSoon(async () => {
      await null;
      throw new Error("async boom");
    });
    await loop.runUntilComplete(() => sleep(5));
    assert.equal((seen[0] as Error).message, "async boom");
    loop.close();
  });

  it("FatalError escapes runForever, skips the handler, keeps the loop usable", async () => {
    const loop = newLoop();
    const handled: unknown[] = [];
    loop.setExceptionHandler((_l, ctx) => handled.push(ctx));
    const got: string[] = [];
    loop.callSoon(() => {
      throw new FatalError("exit");
    });
    loop.callSoon(() => got.push("left queued"));
    await assert.rejects(loop.runForever(), {
      name: "FatalError",
      message: "exit",
    });
    assert.equal(handled.length, 0);
    assert.equal(loop.isRunning(), false);
    // The rest of the batch stays queued and runs next time; no stale stop.
    await loop.runUntilComplete(() => sleep(1));
    assert.deepEqual(got, ["left queued"]);
    loop.close();
  });

  it("runUntilComplete: a task raising FatalError rejects with it", async () => {
    const loop = newLoop();
    await assert.rejects(
      loop.runUntilComplete(async () => {
        await sleep(1);
        throw new FatalError("task exit");
      }),
      { name: "FatalError" },
    );
    await loop.runUntilComplete(() => sleep(1));
    loop.close();
  });
});

describe("debug mode", () => {
  it("slow callbacks are logged (test_log_slow_callbacks)", async () => {
    const loop = newLoop();
    loop.setDebug(true);
    assert.equal(loop.getDebug(), true);
    loop.slowCallbackDuration = 5;
    const { warnings } = await captureLog(async () => {
      loop.callSoon(function slow() {
        const end = performance.now() + 15;
        while (performance.now() < end) { /* busy */ }
      });
      loop.callSoon(() => loop.stop());
      await loop.runForever();
    });
    assert.equal(
      warnings.filter((w) =>
        /^Executing <Handle slow\(\) created at .+> took \d+\.\d{3} ms$/.test(w)
      ).length,
      1,
    );
    loop.close();
  });

  it("handles record where they were created (test_handle_source_traceback)", () => {
    const loop = newLoop();
    loop.setDebug(true);
    const h = loop.callSoon(noop);
    assert.match(h._sourceTraceback!, /loop_core\.test\.ts/);
    assert.match(
      String(h),
      /^<Handle noop\(\) created at .*loop_core\.test\.ts/,
    );
    loop.close();
  });

  it("typed errors: selector misuse, the loop's own fd, Task.setResult", async () => {
    const loop = newLoop();
    const selector = new policy.selectorClass();
    const [r, w] = os.pipe();
    try {
      selector.register(r, EVENT_READ, null);
      assert.throws(() => selector.register(r, EVENT_READ, null), RangeError);
      assert.throws(() => selector.unregister(w), RangeError);
      selector.close();
      assert.throws(() => selector.register(w, EVENT_READ, null), RuntimeError);
      // The loop's own waker fd: the first fd the loop registered.
      const own = [...loop._selector.getMap().keys()][0];
      assert.throws(() => loop.addReader(own, () => {}), RuntimeError);
      await loop.runUntilComplete(async () => {
        const task = loop.createTask(() => sleep(0));
        assert.throws(() => task.setResult(undefined), RuntimeError);
        assert.throws(() => task.setException(new Error("x")), RuntimeError);
        await task;
      });
    } finally {
      os.close(r);
      os.close(w);
      loop.close();
    }
  });

  it("debug tracebacks keep a user's own src/ frames and drop only this package's", () => {
    const loop = newLoop();
    loop.setDebug(true);
    const h = scheduleFromApp(loop);
    const frames = h._sourceTraceback!.split("\n");
    assert.match(frames[0], /fixtures[\\/]src[\\/]app\.ts/);
    assert.ok(
      !frames.some((f) => /[\\/]src[\\/](events|base_events)\.ts/.test(f)),
      `own frames stay out: ${frames.join(" | ")}`,
    );
    loop.close();
  });
});

describe("Handle and TimerHandle (test_handle, test_timer)", () => {
  it("repr, cancel and context", () => {
    const loop = newLoop();
    function cb() {}
    const h = new Handle(cb, [1, 2], loop);
    assert.equal(String(h), "<Handle cb()>");
    assert.equal(h.cancelled(), false);
    h.cancel();
    h.cancel();
    assert.equal(h.cancelled(), true);
    assert.equal(String(h), "<Handle cancelled>");
    assert.equal(h._callback, null);
    assert.equal(h._args, null);
    assert.ok(h.getContext());
    loop.setDebug(true);
    const d = new Handle(cb, [1, "x"], loop);
    assert.match(String(d), /^<Handle cb\(1, 'x'\) created at /);
    d.cancel();
    const cached = String(d);
    assert.match(cached, /^<Handle cancelled cb\(1, 'x'\) created at /);
    d.cancel();
    assert.equal(String(d), cached);
    loop.close();
  });

  it("TimerHandle when(), repr and equals", () => {
    const loop = newLoop();
    function cb() {}
    const t = new TimerHandle(123, cb, [], loop);
    assert.equal(t.when(), 123);
    assert.equal(String(t), "<TimerHandle when=123 cb()>");
    assert.equal(t.equals(new TimerHandle(123, cb, [], loop)), true);
    assert.equal(t.equals(new TimerHandle(124, cb, [], loop)), false);
    assert.equal(t.equals(new TimerHandle(123, noop, [], loop)), false);
    t.cancel();
    assert.equal(String(t), "<TimerHandle cancelled when=123>");
    loop.close();
  });

  it("task factory is used by createTask (test_set_task_factory)", async () => {
    const loop = newLoop();
    const seen: unknown[] = [];
    loop.setTaskFactory((l, coro, options) => {
      seen.push(options?.name);
      return new Task(coro, { ...options, loop: l });
    });
    assert.equal(typeof loop.getTaskFactory(), "function");
    const t = loop.createTask(() => Promise.resolve(5), { name: "named" });
    assert.equal(await loop.runUntilComplete(t), 5);
    assert.ok(seen.includes("named"));
    loop.setTaskFactory(null);
    assert.equal(loop.getTaskFactory(), null);
    loop.close();
  });
});

describe("policy (test_event_loop_policy, test_get_event_loop*)", () => {
  it("abstract classes throw NotImplementedError (test_not_implemented)", async () => {
    class Bare extends AbstractEventLoop {}
    class BarePolicy extends AbstractEventLoopPolicy {}
    class BareServer extends AbstractServer {}
    const loop = new Bare();
    assert.throws(() => loop.callSoon(noop), NotImplementedError);
    assert.throws(() => loop.time(), NotImplementedError);
    assert.throws(() => loop.addReader(0, noop), NotImplementedError);
    await assert.rejects(loop.runForever(), NotImplementedError);
    await assert.rejects(loop.createServer((() => null) as never), {
      name: "NotImplementedError",
      message: /createServer\(\)/,
    });
    const policy = new BarePolicy();
    assert.throws(() => policy.getEventLoop(), NotImplementedError);
    assert.throws(() => policy.newEventLoop(), NotImplementedError);
    assert.throws(() => new BareServer().close(), NotImplementedError);
    await assert.rejects(new BareServer().serveForever(), NotImplementedError);
  });

  it("later-issue methods on the real loop name themselves", async () => {
    const loop = newLoop();
    await assert.rejects(loop.subprocessExec(() => null, "true"), {
      name: "NotImplementedError",
      message: /subprocessExec\(\)/,
    });
    assert.throws(() => loop.addSignalHandler(2, noop), {
      name: "NotImplementedError",
      message: /addSignalHandler\(\)/,
    });
    loop.close();
  });

  it("getEventLoop creates one loop per thread, setEventLoop(null) makes it throw", () => {
    setEventLoopPolicy(null);
    try {
      const policy = getEventLoopPolicy();
      assert.equal(getEventLoopPolicy(), policy);
      assert.ok(policy instanceof DefaultEventLoopPolicy);
      const loop = getEventLoop();
      assert.equal(getEventLoop(), loop);
      const other = newEventLoop();
      assert.notEqual(other, loop);
      assert.equal(getEventLoop(), loop); // newEventLoop never sets
      other.close();
      setEventLoop(null);
      assert.throws(() => getEventLoop(), {
        name: "RuntimeError",
        message: "There is no current event loop in thread 'MainThread'.",
      });
      loop.close();
      assert.throws(() => setEventLoop({} as AbstractEventLoop), {
        name: "TypeError",
        message:
          "loop must be an instance of AbstractEventLoop or None, not 'Object'",
      });
      assert.throws(() => setEventLoopPolicy({} as AbstractEventLoopPolicy), {
        name: "TypeError",
        message:
          /^policy must be an instance of AbstractEventLoopPolicy or None/,
      });
    } finally {
      setEventLoopPolicy(null);
    }
  });

  it("getEventLoop returns the running loop, bypassing the policy", async () => {
    class Raising extends AbstractEventLoopPolicy {
      override getEventLoop(): AbstractEventLoop {
        throw new Error("policy consulted");
      }
    }
    const loop = newLoop();
    setEventLoopPolicy(new Raising());
    try {
      await loop.runUntilComplete(() => {
        assert.equal(getEventLoop(), loop);
        assert.equal(getRunningLoop(), loop);
      });
      assert.throws(() => getEventLoop(), /policy consulted/);
    } finally {
      setEventLoopPolicy(null);
      loop.close();
    }
    assert.throws(() => getRunningLoop(), { message: "no running event loop" });
  });

  it("DefaultEventLoopPolicy picks a backend by name", () => {
    const poll = new DefaultEventLoopPolicy({ selector: "poll" });
    const loop = poll.newEventLoop() as ReturnType<typeof newLoop>;
    assert.equal(loop.selectorName, "poll");
    loop.close();
    assert.throws(
      () => new DefaultEventLoopPolicy({ selector: "nope" }),
      RangeError,
    );
  });

  it("run() returns main's result, cancels leftovers and closes the loop", async () => {
    let leftover: { cancelled(): boolean } | null = null;
    let loopRef: AbstractEventLoop | null = null;
    const result = await run(async () => {
      loopRef = getRunningLoop();
      leftover = loopRef.createTask(() => sleep(60_000));
      await sleep(1);
      return "main done";
    });
    assert.equal(result, "main done");
    assert.equal(leftover!.cancelled(), true);
    assert.equal(loopRef!.isClosed(), true);
    await run(async () => {
      await assert.rejects(run(async () => {}), {
        message: "run() cannot be called from a running event loop",
      });
    });
  });
});
