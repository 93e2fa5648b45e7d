// Waking the loop from another thread: a real Worker submits calls through
// a RemoteCallback (SharedArrayBuffer queue + write to the loop's eventfd or
// self-pipe). Ports test_call_soon_threadsafe(_same_thread).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { newLoop, policy } from "./helpers.ts";
import { os, SelectorEventLoop, type Waker } from "../mod.ts";
import { platform } from "../ffi/runtime.ts";
import { EventFdWaker } from "../ffi/sys/linux/eventfd.ts";
import { PipeWaker, signalFd, WAKE_BYTES } from "../ffi/sys/posix/waker.ts";

function startWorker(): Worker {
  return new Worker(new URL("./fixtures/remote_worker.ts", import.meta.url), {
    type: "module",
  });
}

function nextMessage(worker: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    worker.onmessage = (e) => resolve(e.data);
    worker.onerror = (e) => reject(e);
  });
}

describe("threads and Workers", () => {
  it("a Worker's calls wake an idle loop and run in order", async () => {
    const loop = newLoop();
    const worker = startWorker();
    const got: unknown[] = [];
    const handle = loop.createRemoteCallback((word: string, n: number) => {
      got.push([word, n]);
      if (got.length === 3) loop.stop();
    });
    // Nothing else is scheduled: only the wakeup can stop the loop. The
    // safety timer keeps a broken wakeup from hanging the suite.
    const safety = loop.callLater(10_000, () => loop.stop());
    const t0 = performance.now();
    worker.postMessage({ handle, calls: [["a", 1], ["b", 2], ["c", 3]] });
    await loop.runForever();
    const took = performance.now() - t0;
    assert.deepEqual(got, [["a", 1], ["b", 2], ["c", 3]]);
    assert.ok(took < 10_000, `woke only by the safety timer (${took} ms)`);
    assert.equal(safety.cancelled(), false);
    safety.cancel();
    worker.terminate();
    loop.close();
  });

  it("a call made before a local callSoon runs first (test_call_soon_threadsafe)", async () => {
    const loop = newLoop();
    const worker = startWorker();
    const results: string[] = [];
    const record = (word: string) => {
      results.push(word);
      if (results.length === 2) loop.stop();
    };
    const handle = loop.createRemoteCallback(record);
    const sync = new SharedArrayBuffer(4);
    const sent = nextMessage(worker);
    worker.postMessage({ handle, calls: [["hello"]], sync });
    // Block until the Worker has made its call, then schedule ours.
    const word = new Int32Array(sync);
    while (Atomics.load(word, 0) === 0) Atomics.wait(word, 0, 0, 50);
    loop.callSoon(record, "world");
    await loop.runForever();
    assert.deepEqual(results, ["hello", "world"]);
    await sent;
    worker.terminate();
    loop.close();
  });

  it("callSoonThreadsafe shares the FIFO with callSoon (test_call_soon_threadsafe_same_thread)", async () => {
    const loop = newLoop();
    const results: string[] = [];
    loop.callSoon((x: string) => results.push(x), "a");
    loop.callSoonThreadsafe((x: string) => results.push(x), "b");
    loop.callSoon((x: string) => results.push(x), "c");
    loop.callSoonThreadsafe(() => loop.stop());
    await loop.runForever();
    assert.deepEqual(results, ["a", "b", "c"]);
    loop.close();
  });

  it("after close(), a Worker's call throws RuntimeError", async () => {
    const loop = newLoop();
    const handle = loop.createRemoteCallback(() => {});
    loop.close();
    const worker = startWorker();
    const reply = nextMessage(worker);
    worker.postMessage({ handle, probeClosed: true });
    assert.equal(await reply, "RuntimeError: Event loop is closed");
    worker.terminate();
  });

  it("createRemoteCallback checks its argument and the loop state", () => {
    const loop = newLoop();
    assert.throws(
      () => loop.createRemoteCallback(42 as unknown as () => void),
      { name: "TypeError" },
    );
    loop.close();
    assert.throws(() => loop.createRemoteCallback(() => {}), {
      name: "RuntimeError",
      message: "Event loop is closed",
    });
  });

  it("each Worker has its own current loop", async () => {
    const worker = new Worker(
      new URL("./fixtures/policy_worker.ts", import.meta.url),
      { type: "module", name: "policy-worker" },
    );
    const reply = nextMessage(worker);
    worker.postMessage("go");
    const { same, result, error } = await reply as {
      same: boolean;
      result: string;
      error: string;
    };
    worker.terminate();
    assert.equal(same, true);
    assert.equal(result, "ran in worker");
    assert.match(error, /^There is no current event loop in thread '.+'\.$/);
    assert.doesNotMatch(error, /MainThread/);
  });
});

// Both wakers, whatever the OS picks: the eventfd (Linux) and the
// self-pipe (elsewhere) must wake the loop the same way.
const WAKERS: [string, () => Waker, string | false][] = [
  [
    "eventfd",
    () => new EventFdWaker(),
    platform !== "linux" && "eventfd exists on Linux only",
  ],
  ["self-pipe", () => new PipeWaker(), false],
];

for (const [name, makeWaker, skip] of WAKERS) {
  describe(`the ${name} waker`, { skip }, () => {
    const loopWith = () =>
      new SelectorEventLoop(new policy.selectorClass(), { waker: makeWaker() });

    it("a remote callback handle names the descriptor other threads write", () => {
      const loop = loopWith();
      try {
        const handle = loop.createRemoteCallback(() => {});
        // Writing it (as RemoteCallback.call does from a Worker) must work
        // and make the loop's waker readable.
        signalFd(handle.wakeFd);
        assert.equal(os.write(handle.wakeFd, WAKE_BYTES), WAKE_BYTES.length);
      } finally {
        loop.close();
      }
    });

    it("callSoonThreadsafe from a host timer wakes a waiting loop", async () => {
      const loop = loopWith();
      let ran = false;
      setTimeout(() =>
        loop.callSoonThreadsafe(() => {
          ran = true;
          loop.stop();
        }), 20);
      const safety = loop.callLater(10_000, () => loop.stop());
      await loop.runForever();
      assert.equal(ran, true);
      assert.equal(safety.cancelled(), false);
      safety.cancel();
      loop.close();
    });

    it("a Worker's calls wake an idle loop", async () => {
      const loop = loopWith();
      const worker = startWorker();
      const got: unknown[] = [];
      const handle = loop.createRemoteCallback((word: string) => {
        got.push(word);
        if (got.length === 2) loop.stop();
      });
      const safety = loop.callLater(10_000, () => loop.stop());
      worker.postMessage({ handle, calls: [["a"], ["b"]] });
      await loop.runForever();
      assert.deepEqual(got, ["a", "b"]);
      safety.cancel();
      worker.terminate();
      loop.close();
    });
  });
}
