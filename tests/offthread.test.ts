// The off-thread runner (ffi/offthread.ts): calls run on another thread and
// come back with their result, at most `threads` at once, a queued call can
// be cancelled, close() ends every thread; and the waiter's native path
// (WaitSet.native), driven through a SelectorEventLoop over a selector
// whose wait is its own poll(2) call.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { SelectorEventLoop } from "../mod.ts";
import { allocate, libc, libcPath } from "../ffi/libc.ts";
import {
  createRunner,
  type NativeCall,
  type OffThreadRunner,
} from "../ffi/offthread.ts";
import { type NativeMemory, runtime } from "../ffi/runtime.ts";
import type {
  FileLike,
  NativeWait,
  ReadyEvent,
  Selector,
  SelectorKey,
  WaitSet,
} from "../ffi/selector.ts";
import {
  POLLFD_LAYOUT,
  POLLIN,
  toPollEvents,
  writePollfd,
} from "../ffi/sys/posix/poll.ts";
import {
  assertNoNewFds,
  eventually,
  openFds,
  policy,
  threadNames,
} from "./helpers.ts";
import { closeAll, pipe, readStr, writeStr } from "./sys.ts";

// int getpid(void);
const GETPID: NativeCall = {
  library: libcPath,
  symbol: "getpid",
  parameters: [],
  result: "i32",
};
// size_t strlen(const char *s);
const STRLEN: NativeCall = {
  library: libcPath,
  symbol: "strlen",
  parameters: ["pointer"],
  result: "u64",
};
// char *strchr(const char *s, int c);
const STRCHR: NativeCall = {
  library: libcPath,
  symbol: "strchr",
  parameters: ["pointer", "i32"],
  result: "pointer",
};
// int poll(struct pollfd *fds, nfds_t nfds, int timeout);
const POLL: NativeCall = {
  library: libcPath,
  symbol: "poll",
  parameters: ["pointer", "u64", "i32"],
  result: "i32",
};
// ssize_t read(int fd, void *buf, size_t count);
const READ: NativeCall = {
  library: libcPath,
  symbol: "read",
  parameters: ["i32", "pointer", "u64"],
  result: "i64",
};
// ssize_t write(int fd, const void *buf, size_t count);
const WRITE: NativeCall = {
  library: libcPath,
  symbol: "write",
  parameters: ["i32", "pointer", "u64"],
  result: "i64",
};

const THREAD_NAME = "aioloop-offtest";

/** How many threads named `name` run (Bun's runner Workers). */
function threadsNamed(name: string): number {
  return threadNames().filter((n) => n === name).length;
}

const tick = (ms = 30) => new Promise((r) => setTimeout(r, ms));

const F_SETFL = 4; // Linux, macOS and the BSDs

/** A pipe whose read end blocks (a read() waits for a byte). */
function blockingPipe(): [number, number] {
  const [r, w] = pipe();
  assert.equal(libc.fcntl(r, F_SETFL, 0), 0);
  return [r, w];
}

/** One pollfd in native memory: `fd` for reading. */
function pollfd(fd: number): NativeMemory {
  const memory = allocate(POLLFD_LAYOUT.size);
  const view = new DataView(memory.bytes.buffer);
  view.setInt32(POLLFD_LAYOUT.fdOffset, fd, true);
  view.setInt16(POLLFD_LAYOUT.eventsOffset, POLLIN, true);
  return memory;
}

/** Tracks a promise's outcome without awaiting it. */
function track<T>(promise: Promise<T>) {
  const state: { done: boolean; value?: T; error?: unknown } = { done: false };
  promise.then(
    (value) => Object.assign(state, { done: true, value }),
    (error) => Object.assign(state, { done: true, error }),
  );
  return state;
}

async function withRunner(
  threads: number,
  body: (runner: OffThreadRunner) => Promise<void>,
): Promise<void> {
  const runner = createRunner({ name: THREAD_NAME, threads });
  try {
    await body(runner);
  } finally {
    runner.close();
  }
  assert.ok(
    await eventually(() => threadsNamed(THREAD_NAME) === 0),
    `${threadsNamed(THREAD_NAME)} runner threads left after close()`,
  );
}

describe("off-thread runner", () => {
  it("makes the call on another thread and resolves with its result", async () => {
    await withRunner(2, async (runner) => {
      assert.equal(await runner.call(GETPID, []), process.pid);
      const text = allocate(16);
      try {
        text.bytes.set(new TextEncoder().encode("hello"));
        assert.equal(await runner.call(STRLEN, [text.address]), 5);
        assert.equal(
          await runner.call(STRCHR, [text.address, "l".charCodeAt(0)]),
          text.address + 2,
        );
        assert.equal(await runner.call(STRCHR, [text.address, 0x7a]), 0);
      } finally {
        text.free();
      }
    });
  });

  it("the JS thread goes on while the call blocks", async () => {
    await withRunner(1, async (runner) => {
      const [r, w] = pipe();
      const fds = pollfd(r);
      try {
        let timerRan = false;
        // The timer can run only if the poll does not block this thread;
        // its write then ends the poll (1 ready), else poll times out (0).
        setTimeout(() => {
          timerRan = true;
          writeStr(w, "x");
        }, 20);
        const ready = await runner.call(POLL, [fds.address, 1, 5000]);
        assert.equal(timerRan, true);
        assert.equal(ready, 1);
      } finally {
        fds.free();
        closeAll(r, w);
      }
    });
  });

  it("runs at most `threads` calls at once; the others wait their turn", async () => {
    await withRunner(2, async (runner) => {
      const [r, w] = pipe();
      const [r2, w2] = pipe();
      const fds = pollfd(r);
      const byte = allocate(1);
      try {
        const first = runner.call(POLL, [fds.address, 1, 5000]);
        const second = runner.call(POLL, [fds.address, 1, 5000]);
        // Third: writes a byte to the second pipe once it gets a thread.
        const third = track(runner.call(WRITE, [w2, byte.address, 1]));
        await tick(50);
        assert.equal(third.done, false, "a third call ran beside two");
        assert.equal(readStr(r2), null, "the queued write happened");
        if (runtime === "bun") assert.equal(threadsNamed(THREAD_NAME), 2);
        writeStr(w, "x"); // both polls return
        assert.deepEqual(await Promise.all([first, second]), [1, 1]);
        assert.ok(await eventually(() => third.done));
        assert.equal(third.value, 1);
        assert.equal(readStr(r2), "\0");
      } finally {
        fds.free();
        byte.free();
        closeAll(r, w, r2, w2);
      }
    });
  });

  it("an aborted call that has not started never runs; one in flight finishes", async () => {
    await withRunner(1, async (runner) => {
      const [r, w] = pipe();
      const [r2, w2] = pipe();
      const fds = pollfd(r);
      const byte = allocate(1);
      try {
        const inFlight = new AbortController();
        const queued = new AbortController();
        const running = track(
          runner.call(POLL, [fds.address, 1, 5000], {
            signal: inFlight.signal,
          }),
        );
        const waiting = runner.call(WRITE, [w2, byte.address, 1], {
          signal: queued.signal,
        });
        await tick();
        const reason = new Error("not wanted");
        queued.abort(reason);
        inFlight.abort(new Error("too late"));
        await assert.rejects(waiting, (e) => e === reason);
        await tick();
        assert.equal(running.done, false, "the call in flight was dropped");
        writeStr(w, "x");
        assert.ok(await eventually(() => running.done));
        assert.equal(running.value, 1);
        // The thread is free again, and the aborted write never happened.
        assert.equal(await runner.call(GETPID, []), process.pid);
        assert.equal(readStr(r2), null);
        // Already aborted: never queued.
        await assert.rejects(
          runner.call(WRITE, [w2, byte.address, 1], { signal: queued.signal }),
          (e) => e === reason,
        );
        assert.equal(readStr(r2), null);
      } finally {
        fds.free();
        byte.free();
        closeAll(r, w, r2, w2);
      }
    });
  });

  it("checks the call before it leaves; a binding error comes back as an Error", async () => {
    await withRunner(1, async (runner) => {
      await assert.rejects(runner.call(STRLEN, []), RangeError);
      await assert.rejects(runner.call(STRLEN, [1.5]), TypeError);
      await assert.rejects(runner.call(STRLEN, [2 ** 60]), TypeError);
      await assert.rejects(
        runner.call({ ...STRLEN, parameters: ["buffer"] }, [0]),
        TypeError,
      );
      // Bound on the runner's thread: the error crosses back (Bun's own
      // is a TypeError, Deno's an Error); the runner keeps working.
      await assert.rejects(
        runner.call({ ...GETPID, symbol: "aioloop_no_such_symbol" }, []),
        (e) => e instanceof Error && /aioloop_no_such_symbol/.test(e.message),
      );
      assert.equal(await runner.call(GETPID, []), process.pid);
    });
  });

  it("close() rejects queued calls; a call in flight settles only once it returned", async () => {
    const [r, w] = blockingPipe();
    const buffer = allocate(8);
    try {
      const runner = createRunner({ name: THREAD_NAME, threads: 1 });
      // read() on a blocking pipe: not interrupted by ending the thread.
      const reading = track(runner.call(READ, [r, buffer.address, 1]));
      const queued = runner.call(GETPID, []);
      await tick();
      runner.close();
      assert.equal(runner.closed, true);
      await assert.rejects(queued, /closed/);
      await assert.rejects(runner.call(GETPID, []), /closed/);
      await tick(50);
      assert.equal(reading.done, false, "settled while the read still ran");
      assert.equal(libc.write(w, new Uint8Array([7]), 1), 1);
      assert.ok(await eventually(() => reading.done), "never settled");
      if (runtime === "deno") assert.equal(reading.value, 1);
      assert.equal(buffer.bytes[0], 7);
      assert.ok(
        await eventually(() => threadsNamed(THREAD_NAME) === 0),
        "the runner's thread outlived its call",
      );
    } finally {
      libc.write(w, new Uint8Array([0]), 1); // never leave a read blocked
      buffer.free();
      closeAll(r, w);
    }
  });

  it("an idle runner that was not closed does not keep the process alive", () => {
    const dir = mkdtempSync(join(tmpdir(), "aioloop-offthread-"));
    try {
      const ffi = (name: string) =>
        fileURLToPath(new URL(`../ffi/${name}`, import.meta.url));
      const script = join(dir, "idle.ts");
      writeFileSync(
        script,
        `import { createRunner } from ${JSON.stringify(ffi("offthread.ts"))};
import { libcPath } from ${JSON.stringify(ffi("libc.ts"))};
const runner = createRunner({ name: "aioloop-idle", threads: 2 });
const getpid = { library: libcPath, symbol: "getpid", parameters: [], result: "i32" } as const;
await Promise.all([runner.call(getpid, []), runner.call(getpid, [])]);
console.log("called");
`,
      );
      const argv = runtime === "deno" ? ["run", "-A", script] : [script];
      const child = spawnSync(process.execPath, argv, {
        timeout: 15000,
        encoding: "utf8",
      });
      assert.equal(child.error, undefined, `${child.error}`);
      assert.equal(child.stdout.trim(), "called", child.stderr);
      assert.equal(child.status, 0, child.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A selector whose wait is a native call: poll(2) over a malloc'd pollfd
 * array holding its own pipe (the interrupt) and what the inner selector
 * would have the waiter poll. Its WaitSet has no targets, so only the
 * native call can see an fd become ready.
 */
class NativePollSelector<T> implements Selector<T> {
  readonly name = "native-poll";
  private readonly inner = new policy.selectorClass() as Selector<T>;
  private readonly interruptPipe = pipe();
  private memory: NativeMemory | null = null;
  /** The timeouts each native wait was started with. */
  readonly timeouts: (number | null)[] = [];
  /** How often interrupt() was called. */
  interrupts = 0;
  private readonly nativeWait: NativeWait = {
    library: libcPath,
    symbol: "poll",
    parameters: ["pointer", "u64", "i32"],
    result: "i32",
    args: (timeoutMs) => {
      this.timeouts.push(timeoutMs);
      while (readStr(this.interruptPipe[0]) !== null) {
        // drained: an interrupt is meant for the call in flight only
      }
      const targets = this.inner.waitSet().targets;
      const count = targets.length + 1;
      if (
        !this.memory || this.memory.bytes.length < count * POLLFD_LAYOUT.size
      ) {
        this.memory?.free();
        this.memory = allocate(count * 2 * POLLFD_LAYOUT.size);
      }
      const view = new DataView(this.memory.bytes.buffer);
      writePollfd(view, 0, this.interruptPipe[0], POLLIN);
      targets.forEach(([fd, events], i) =>
        writePollfd(view, i + 1, fd, toPollEvents(events))
      );
      return [this.memory.address, count, timeoutMs ?? -1];
    },
    interrupt: () => {
      this.interrupts++;
      writeStr(this.interruptPipe[1], "!");
    },
  };

  register(fileobj: FileLike, events: number, data: T): SelectorKey<T> {
    return this.inner.register(fileobj, events, data);
  }
  unregister(fileobj: FileLike): SelectorKey<T> {
    return this.inner.unregister(fileobj);
  }
  modify(fileobj: FileLike, events: number, data: T): SelectorKey<T> {
    return this.inner.modify(fileobj, events, data);
  }
  select(timeoutMs: number | null): ReadyEvent<T>[] {
    return this.inner.select(timeoutMs);
  }
  get(fileobj: FileLike): SelectorKey<T> | undefined {
    return this.inner.get(fileobj);
  }
  getMap(): ReadonlyMap<number, SelectorKey<T>> {
    return this.inner.getMap();
  }
  waitSet(): WaitSet {
    return {
      version: this.inner.waitSet().version,
      targets: [],
      native: this.nativeWait,
    };
  }
  close(): void {
    this.inner.close();
    this.memory?.free();
    this.memory = null;
    closeAll(...this.interruptPipe);
  }
}

/** Runs `body` on a loop over a NativePollSelector; fails after `ms`. */
async function withNativeLoop(
  body: (
    loop: SelectorEventLoop,
    selector: NativePollSelector<unknown>,
  ) => Promise<void>,
  ms = 5000,
): Promise<void> {
  const before = openFds();
  const selector = new NativePollSelector();
  const loop = new SelectorEventLoop(selector);
  const guard = setTimeout(() => loop.stop(), ms);
  try {
    await body(loop, selector);
  } finally {
    clearTimeout(guard);
    if (loop.isRunning()) loop.stop();
    loop.close();
  }
  await assertNoNewFds(before);
}

describe("waiting through a selector's native call (WaitSet.native)", () => {
  it("a readable fd wakes the loop through the native call", async () => {
    await withNativeLoop(async (loop, selector) => {
      const [r, w] = pipe();
      try {
        let got: string | null = null;
        loop.addReader(r, () => {
          got = readStr(r);
          loop.stop();
        });
        // A host timer writes the fd: nothing wakes the loop but the poll.
        setTimeout(() => writeStr(w, "ping"), 30);
        await loop.runForever();
        assert.equal(got, "ping");
        assert.ok(selector.timeouts.length > 0, "the native call was unused");
        assert.equal(selector.timeouts.at(-1), null, "no timer: no timeout");
      } finally {
        loop.removeReader(r);
        closeAll(r, w);
      }
    });
  });

  it("interrupt() ends a native wait that has no timeout", async () => {
    await withNativeLoop(async (loop, selector) => {
      // stop() from a host timer wakes the loop at once; runForever()
      // then returns only once the native call in flight has returned,
      // which without native.interrupt() would be never.
      setTimeout(() => loop.stop(), 30);
      let hung: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([
        loop.runForever().then(() => true),
        new Promise<false>((r) => (hung = setTimeout(() => r(false), 4000))),
      ]);
      clearTimeout(hung);
      assert.ok(selector.interrupts >= 1, "native.interrupt() was not called");
      assert.ok(ended, "runForever() did not return: the wait went on");
      assert.equal(selector.timeouts.at(-1), null);
    });
  });

  it("a timer's timeout reaches the native call and is honoured", async () => {
    await withNativeLoop(async (loop, selector) => {
      const t0 = performance.now();
      let fired = 0;
      loop.callLater(80, () => {
        fired = performance.now() - t0;
        loop.stop();
      });
      await loop.runForever();
      assert.ok(fired >= 75, `the timer ran after ${fired.toFixed(1)} ms`);
      const timeouts = selector.timeouts.filter((t) => t !== 0);
      assert.ok(timeouts.length > 0, "no native wait with a timeout");
      for (const t of timeouts) {
        assert.ok(t !== null && t > 0 && t <= 80, `timeout ${t}`);
      }
      assert.equal(selector.interrupts, 0, "the timeout was not reached");
    });
  });
});
