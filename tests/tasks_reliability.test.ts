// Native promises, tasks and shutdown never hang (issue 7): stream handlers
// run in their Task, waitFor keeps its deadline on a native promise, run()
// bounds its shutdown, and StreamReader checks its length arguments.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { captureLog, newLoop, runLoop } from "./helpers.ts";
import { runNet, serverPort, tmpSockPath } from "./net_helpers.ts";
import {
  type AbstractEventLoop,
  CancelledError,
  currentTask,
  ensureFuture,
  type ExceptionContext,
  getRunningLoop,
  openConnection,
  openUnixConnection,
  run,
  type Server,
  sleep,
  startServer,
  startUnixServer,
  type StreamReader,
  StreamReader as Reader,
  type StreamWriter,
  Task,
  TimeoutError,
  waitFor,
} from "../mod.ts";

/** Rejects with Error("hung") if `p` has not settled after `ms` (host timer). */
function orHung<T>(p: PromiseLike<T>, ms = 1000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung for ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve(p), hung]).finally(() =>
    clearTimeout(timer)
  );
}

/** Host macrotask turns, for late promise outcomes to show up. */
function hostTurns(ms = 20): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Collects what reaches the runtime's unhandled-rejection hook. */
function watchUnhandled(): { seen: unknown[]; stop(): void } {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown) => seen.push(reason);
  process.on("unhandledRejection", onUnhandled);
  return {
    seen,
    stop: () => process.off("unhandledRejection", onUnhandled),
  };
}

/** A loop under test whose exception handler records every context. */
function recordingLoop(): {
  loopFactory: () => ReturnType<typeof newLoop>;
  reports: ExceptionContext[];
} {
  const reports: ExceptionContext[] = [];
  return {
    reports,
    loopFactory: () => {
      const loop = newLoop();
      loop.setExceptionHandler((_l, context) => reports.push(context));
      return loop;
    },
  };
}

type Serve = (
  handler: (r: StreamReader, w: StreamWriter) => Promise<void>,
) => Promise<[Server, () => Promise<[StreamReader, StreamWriter]>]>;

const tcp: Serve = async (handler) => {
  const server = await startServer(handler, "127.0.0.1", 0);
  const port = serverPort(server);
  return [server, () => openConnection("127.0.0.1", port)];
};

const unix: Serve = async (handler) => {
  const path = tmpSockPath("tasks");
  const server = await startUnixServer(handler, path);
  return [server, () => openUnixConnection(path)];
};

/** The handler's task is currentTask() inside it; cancelling it reaches it. */
function handlerRunsInItsTask(serve: Serve): Promise<void> {
  return runNet(async (loop) => {
    // In an array: a Task is a thenable, and awaiting a Future whose result
    // is one would adopt it.
    const mine = loop.createFuture<[Task<unknown> | null]>();
    let inside: unknown = null;
    const [server, connect] = await serve(async (reader) => {
      mine.setResult([currentTask()]);
      try {
        await reader.read(100);
      } catch (error) {
        inside = error;
        throw error;
      }
    });
    const [reader, writer] = await connect();
    const [handlerTask] = await mine;
    assert.ok(handlerTask instanceof Task, "currentTask() in the handler");
    assert.notEqual(handlerTask, currentTask());
    assert.equal(handlerTask.cancel(), true);
    await assert.rejects(handlerTask, CancelledError);
    assert.ok(inside instanceof CancelledError, `inside: ${String(inside)}`);
    // The cancelled handler's connection is closed: the client sees EOF.
    assert.equal((await reader.read()).length, 0);
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
  });
}

describe("stream handlers run in their Task", () => {
  it("startServer: currentTask() in the handler is its task, and cancel() reaches its read()", () =>
    handlerRunsInItsTask(tcp));

  it("startUnixServer: currentTask() in the handler is its task, and cancel() reaches its read()", () =>
    handlerRunsInItsTask(unix));

  it("run() returns when main closes the server while a handler awaits read() from a silent client", async () => {
    const { loopFactory, reports } = recordingLoop();
    let clientWriter: StreamWriter | null = null;
    let inside: unknown = null;
    // The old code waits for the handler forever; after 3 s this unblocks
    // it (the client goes away) so that the test fails instead of hanging.
    let watchdogFired = false;
    const watchdog = setTimeout(() => {
      watchdogFired = true;
      clientWriter?.transport.abort();
    }, 3000);
    // No grace limit: only the cancel reaching the handler can end run().
    const options = { loopFactory, shutdownTimeout: null };
    try {
      await run(async () => {
        const loop = getRunningLoop();
        const reading = loop.createFuture<void>();
        const server = await startServer(
          async (reader) => {
            reading.setResult(undefined);
            try {
              await reader.read();
            } catch (error) {
              inside = error;
              throw error;
            }
          },
          "127.0.0.1",
          0,
        );
        const [, writer] = await openConnection(
          "127.0.0.1",
          serverPort(server),
        );
        clientWriter = writer;
        await reading;
        server.close();
      }, options);
    } finally {
      clearTimeout(watchdog);
    }
    assert.equal(watchdogFired, false, "run() waited for the handler");
    assert.ok(inside instanceof CancelledError, `inside: ${String(inside)}`);
    assert.deepEqual(reports.map((c) => c.message), []);
  });
});

describe("native promises: waitFor keeps its deadline, cancel abandons", () => {
  it("waitFor(promise, ms) on a promise that never settles fails with TimeoutError at the deadline", async () => {
    const { loopFactory, reports } = recordingLoop();
    const unhandled = watchUnhandled();
    let rejectLate!: (e: Error) => void;
    try {
      await runLoop(async () => {
        await orHung(
          assert.rejects(waitFor(new Promise(() => {}), 20), TimeoutError),
        );
        // Abandoned, then rejected: the rejection is dropped.
        const late = new Promise<never>((_, reject) => rejectLate = reject);
        await orHung(assert.rejects(waitFor(late, 10), TimeoutError));
        rejectLate(new Error("late"));
        await hostTurns();
        await sleep(1);
      }, loopFactory());
      await hostTurns();
    } finally {
      unhandled.stop();
    }
    assert.deepEqual(unhandled.seen, []);
    assert.deepEqual(reports.map((c) => c.message), []);
  });

  it("ensureFuture(promise) is a plain Future, cancelled at once; createTask(promise) too", async () => {
    const { loopFactory, reports } = recordingLoop();
    await runLoop(async () => {
      const loop = getRunningLoop();
      assert.equal(await ensureFuture(Promise.resolve(3)), 3);
      let reject!: (e: Error) => void;
      const wrapped = ensureFuture(new Promise((_, r) => reject = r));
      assert.equal(wrapped instanceof Task, false);
      assert.equal(wrapped.cancel(), true);
      assert.equal(wrapped.cancelled(), true);
      reject(new Error("dropped"));
      await hostTurns();
      assert.equal(wrapped.cancelled(), true);

      const task = loop.createTask(new Promise(() => {}));
      await sleep(0);
      assert.equal(task.cancel(), true);
      assert.equal(task.done(), true, "cancelled at once");
      await assert.rejects(task, CancelledError);
    }, loopFactory());
    assert.deepEqual(reports.map((c) => c.message), []);
  });

  it("waitFor(fn, ms) still cancels the function's code, at its next loop-future await", async () => {
    const { loopFactory } = recordingLoop();
    await runLoop(async () => {
      const steps: string[] = [];
      await assert.rejects(
        waitFor(async () => {
          await new Promise((r) => setTimeout(r, 30));
          steps.push("native promise settled");
          try {
            await sleep(10_000);
          } catch (error) {
            steps.push(String((error as Error).name));
            throw error;
          }
        }, 5),
        TimeoutError,
      );
      assert.deepEqual(steps, ["native promise settled", "CancelledError"]);
    }, loopFactory());
  });
});

describe("run() shutdown is bounded", () => {
  it("a task stuck on a native promise is reported after shutdownTimeout and abandoned silently", async () => {
    const { loopFactory, reports } = recordingLoop();
    const unhandled = watchUnhandled();
    let release!: () => void;
    let fail!: (e: Error) => void;
    let releaseOver!: () => void;
    let overPromise: Task<unknown> | null = null;
    let stuck: Task<unknown> | null = null;
    let lingering: Task<unknown> | null = null;
    let loopRef: AbstractEventLoop | null = null;
    // The old code waits forever; this releases it so that the test fails.
    let watchdogFired = false;
    const watchdog = setTimeout(() => {
      watchdogFired = true;
      release();
      fail(new Error("watchdog"));
      releaseOver();
      lingering?.cancel();
    }, 3000);
    let result: string;
    try {
      result = await run(async () => {
        const loop = loopRef = getRunningLoop();
        stuck = loop.createTask(async () => {
          await new Promise<void>((r) => release = r);
          await sleep(1); // after the loop closed: throws, and is dropped
        }, { name: "stuck" });
        loop.createTask(async () => {
          await new Promise<void>((_, r) => fail = r);
        }, { name: "failing late" });
        lingering = loop.createTask(async () => {
          try {
            await sleep(60_000);
          } catch {
            await sleep(60_000); // ignores the cancel
          }
        }, { name: "lingering" });
        // A task over a promise runs no code: cancelled at once, unreported.
        overPromise = loop.createTask(
          new Promise<void>((r) => releaseOver = r),
          { name: "over a promise" },
        );
        await sleep(1);
        return "main done";
      }, { loopFactory, shutdownTimeout: 30 });
    } finally {
      clearTimeout(watchdog);
    }
    try {
      assert.equal(watchdogFired, false, "run() waited past shutdownTimeout");
      assert.equal(result, "main done");
      assert.equal(loopRef!.isClosed(), true);
      assert.equal(overPromise!.cancelled(), true);
      const byName = new Map(
        reports.map((c) => [(c.task as Task<unknown>).getName(), c]),
      );
      assert.deepEqual(
        [...byName.keys()].sort(),
        ["failing late", "lingering", "stuck"],
      );
      const report = byName.get("stuck")!;
      assert.equal(report.task, stuck);
      assert.match(report.message, /name='stuck'/);
      assert.match(report.message, /30 ms/);
      assert.match(report.message, /native promise/);
      const waiting = byName.get("lingering")!;
      assert.equal(waiting.task, lingering);
      assert.match(waiting.message, /wait_for=<Future pending/);
      assert.doesNotMatch(waiting.message, /native promise/);

      // The abandoned promises settle after the loop closed: nothing is
      // thrown or reported.
      const before = reports.length;
      release();
      fail(new Error("too late"));
      releaseOver();
      await hostTurns();
      assert.equal(reports.length, before);
      assert.deepEqual(unhandled.seen, []);
    } finally {
      unhandled.stop();
    }
  });

  it("in debug mode the report carries where the task was created", async () => {
    const { loopFactory, reports } = recordingLoop();
    let release: () => void = () => {};
    const watchdog = setTimeout(() => release(), 3000);
    try {
      await captureLog(() =>
        run(async () => {
          getRunningLoop().createTask(async function stuckInDebug() {
            await new Promise<void>((r) => release = r);
          });
          await sleep(1);
        }, { loopFactory, debug: true, shutdownTimeout: 10 })
      );
    } finally {
      clearTimeout(watchdog);
      release();
    }
    assert.equal(reports.length, 1);
    assert.match(reports[0].message, /stuckInDebug/);
    assert.match(String(reports[0].sourceTraceback), /tasks_reliability/);
  });

  it("shutdownTimeout is validated before main runs", async () => {
    let ran = false;
    const main = () => {
      ran = true;
    };
    const bad = (value: unknown) =>
      ({ loopFactory: newLoop, shutdownTimeout: value }) as {
        loopFactory: () => AbstractEventLoop;
      };
    for (const value of [-1, NaN]) {
      await assert.rejects(run(main, bad(value)), {
        name: "RangeError",
        message: /shutdownTimeout/,
      });
    }
    for (const value of ["10", false]) {
      await assert.rejects(run(main, bad(value)), {
        name: "TypeError",
        message: /shutdownTimeout/,
      });
    }
    assert.equal(ran, false);
    assert.equal(await run(() => 7, bad(0)), 7);
  });
});

describe("StreamReader length arguments", () => {
  it("read/readexactly reject NaN, fractions and non-numbers; the limit too", () =>
    runNet(async () => {
      const stream = new Reader();
      const rejects = (p: Promise<unknown>, name: string, arg: RegExp) =>
        assert.rejects(orHung(p, 500), (e: Error) => {
          assert.equal(e.name, name, `got ${String(e)}`);
          assert.match(e.message, arg);
          return true;
        });
      await rejects(stream.read(NaN), "RangeError", /\bn\b/);
      await rejects(stream.read(1.5), "RangeError", /\bn\b/);
      await rejects(stream.read("3" as never), "TypeError", /\bn\b/);
      await rejects(stream.readexactly(NaN), "RangeError", /\bn\b/);
      await rejects(stream.readexactly(2.5), "RangeError", /\bn\b/);
      await rejects(stream.readexactly(null as never), "TypeError", /\bn\b/);
      await rejects(stream.readexactly(-1), "RangeError", /less than zero/);
      for (const limit of [NaN, 1.5, Infinity]) {
        assert.throws(() => new Reader(limit), {
          name: "RangeError",
          message: /limit/i,
        });
      }
      assert.throws(() => new Reader("10" as never), {
        name: "TypeError",
        message: /limit/,
      });
      await rejects(
        startServer(async () => {}, "127.0.0.1", 0, { limit: 0.5 }),
        "RangeError",
        /limit/i,
      );
      // read(-1) still reads to EOF.
      stream.feedData(new Uint8Array([1, 2]));
      stream.feedData(new Uint8Array([3]));
      stream.feedEof();
      assert.deepEqual([...await stream.read(-1)], [1, 2, 3]);
    }));
});
