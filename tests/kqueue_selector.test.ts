// The kqueue selector under load and at its edges, from an attack on it:
// large batches of queued changes (on every selector: the reference is
// epoll and poll), the interrupt when no wait is in flight, what a native
// wait returned, and close() while a native wait is in flight.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { newLoop, policy } from "./helpers.ts";
import { closeAll, pipe, readStr, socketpair, writeStr } from "./sys.ts";
import { EVENT_READ, EVENT_WRITE, type Selector } from "../ffi/selector.ts";
import { KqueueSelector } from "../ffi/selectors.ts";
import { KeventArray } from "../ffi/sys/bsd/kevent.ts";
import { createRunner } from "../ffi/offthread.ts";

const S = policy.selectorClass;
const kqueueOnly = S.backend === "kqueue"
  ? false
  : "the kqueue selector's own mechanics (run with --selector kqueue)";
const hostSleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pairs(n: number): [number, number][] {
  return Array.from({ length: n }, () => socketpair());
}

// libkqueue takes at most 512 entries per kevent() event list and failed
// the whole call (EFAULT, part of the changes applied) when the receipts
// of more changes did not fit.
describe(`more than 512 queued changes (${S.backend})`, () => {
  it("300 READ -> WRITE modifies between two selects: every writer is reported", () => {
    const s = new S();
    const ps = pairs(300);
    try {
      for (const [a] of ps) s.register(a, EVENT_READ, null);
      s.select(0);
      for (const [a] of ps) s.modify(a, EVENT_WRITE, null); // 600 changes
      const writable = new Set<number>();
      for (let i = 0; i < 6; i++) {
        for (const [key, m] of s.select(0)) {
          if (m & EVENT_WRITE) writable.add(key.fd);
        }
      }
      assert.equal(writable.size, 300);
    } finally {
      s.close();
      for (const [a, b] of ps) closeAll(a, b);
    }
  });

  it("a register() made while more than 512 changes are queued succeeds and watches its fd", () => {
    const s = new S();
    const ps = pairs(300);
    const [r, w] = pipe();
    try {
      for (const [a] of ps) s.register(a, EVENT_READ, null);
      for (const [a] of ps) s.modify(a, EVENT_WRITE, null);
      s.register(r, EVENT_READ, "r");
      writeStr(w, "x");
      let seen = false;
      for (let i = 0; i < 6 && !seen; i++) {
        seen = s.select(0).some(([key]) => key.fd === r);
      }
      assert.ok(seen, "the registered, readable fd was never reported");
    } finally {
      s.close();
      for (const [a, b] of ps) closeAll(a, b);
      closeAll(r, w);
    }
  });

  it("loop: 300 sockets stop reading and wait to write in one callback; every writer runs", async () => {
    const loop = newLoop();
    const ps = pairs(300);
    let fired = 0;
    try {
      await loop.runUntilComplete(async () => {
        for (const [a] of ps) loop.addReader(a, () => {});
        await new Promise<void>((resolve) => {
          loop.callSoon(() => {
            for (const [a] of ps) {
              loop.addWriter(a, () => {
                loop.removeWriter(a);
                if (++fired === ps.length) resolve();
              });
              loop.removeReader(a); // READ -> WRITE: two queued changes
            }
          });
          loop.callLater(3000, resolve);
        });
      });
      assert.equal(fired, 300);
    } finally {
      loop.close();
      for (const [a, b] of ps) closeAll(a, b);
    }
  });
});

describe(
  "kqueue: the interrupt with no wait in flight",
  { skip: kqueueOnly },
  () => {
    for (const interrupt of ["user", "pipe"] as const) {
      it(`select(timeout) still waits its timeout after an interrupt (${interrupt})`, () => {
        const s = new KqueueSelector({ interrupt });
        const [r, w] = pipe();
        try {
          s.register(r, EVENT_READ, null);
          s.waitSet().native!.interrupt();
          const t0 = performance.now();
          for (let i = 0; i < 3; i++) assert.deepEqual(s.select(50), []);
          const ms = performance.now() - t0;
          assert.ok(ms >= 140, `3 x select(50) returned after ${ms} ms`);
        } finally {
          s.close();
          closeAll(r, w);
        }
      });
    }

    it("select(timeout) still waits after waitSet() interrupted for a failed change", () => {
      const s = new KqueueSelector();
      const [r, w] = pipe();
      try {
        s.register(r, EVENT_READ, null);
        closeAll(r);
        s.modify(r, EVENT_READ | EVENT_WRITE, null); // fails: EBADF
        s.waitSet(); // sends it, sees the failure, fires the interrupt
        assert.equal(s.select(0).length, 1); // EVENT_INVALID, once
        s.unregister(r);
        const t0 = performance.now();
        for (let i = 0; i < 3; i++) s.select(50);
        const ms = performance.now() - t0;
        assert.ok(ms >= 140, `3 x select(50) returned after ${ms} ms`);
      } finally {
        s.close();
        closeAll(w);
      }
    });
  },
);

describe("kqueue: a native wait", { skip: kqueueOnly }, () => {
  it("what it returned is not reported again once it was consumed", async () => {
    const runner = createRunner({ name: "aioloop-kq-test", threads: 1 });
    const s = new S() as Selector;
    const [a, b] = socketpair();
    try {
      s.register(a, EVENT_READ, "a");
      const native = s.waitSet().native!;
      const wait = runner.call(native, native.args(2000))
        .then((result) => native.finished?.(result));
      await hostSleep(20);
      assert.deepEqual(s.select(0), []); // the loop polls meanwhile
      writeStr(b, "hi");
      await wait; // the waiter saw `a` readable
      assert.equal(readStr(a), "hi"); // handled by the JS side already
      assert.deepEqual(s.select(0).map(([k, m]) => [k.data, m]), []);
    } finally {
      s.close();
      runner.close();
      closeAll(a, b);
    }
  });

  it("close() while it is in flight frees its buffers only once it returned", async () => {
    const runner = createRunner({ name: "aioloop-kq-test", threads: 1 });
    const s = new KqueueSelector();
    const [r, w] = pipe();
    const freed: number[] = [];
    const free = KeventArray.prototype.free;
    KeventArray.prototype.free = function (this: KeventArray) {
      freed.push(this.memory.address);
      free.call(this);
    };
    try {
      s.register(r, EVENT_READ, null);
      const native = s.waitSet().native!;
      const args = native.args(null); // kevent(kq, 0, 0, scratch, 1, NULL)
      const scratch = args[3];
      let returned = false;
      const wait = runner.call(native, args).then(
        (result) => native.finished?.(result),
        () => native.finished?.(-1),
      ).finally(() => returned = true);
      await hostSleep(30);
      assert.equal(returned, false, "the wait returned on its own");
      s.close();
      if (!returned) {
        assert.ok(
          !freed.includes(scratch),
          "freed while the kernel may write it",
        );
      }
      const done = await Promise.race([
        wait.then(() => true),
        hostSleep(2000).then(() => false),
      ]);
      assert.ok(done, "close() did not make the wait in flight return");
      assert.ok(freed.includes(scratch), "the scratch array was never freed");
    } finally {
      KeventArray.prototype.free = free;
      runner.close();
      closeAll(r, w);
    }
  });
});
