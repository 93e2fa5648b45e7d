// The kqueue backend (ffi/sys/bsd/kqueue.ts). On Linux it runs over
// libkqueue when AIOLOOP_LIBKQUEUE names the built library
// (scripts/build-libkqueue.sh); otherwise these tests skip, saying so.
// `struct kevent` and the constants are checked against libkqueue's
// <sys/event.h> (from AIOLOOP_LIBKQUEUE_INCLUDE, else the include/ folder
// next to the library, where the build leaves it).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  DefaultEventLoopPolicy,
  OSError,
  SelectorEventLoop,
  sleep,
  Socket,
} from "../mod.ts";
import {
  availableSelectors,
  DefaultSelector,
  KqueueSelector,
  selectorClass,
} from "../ffi/selectors.ts";
import {
  EV_ADD,
  EV_CLEAR,
  EV_DELETE,
  EV_EOF,
  EV_ERROR,
  EV_RECEIPT,
  KEVENT_LAYOUT_32,
  KEVENT_LAYOUT_FREEBSD,
  KEVENT_LAYOUT_NETBSD100,
  KEVENT_LAYOUT_NETBSD50,
  kqueueAbi,
  kqueueAvailable,
  LIBKQUEUE_ENV,
  NOTE_TRIGGER,
  takeKqueueSocketError,
  TIMESPEC_SIZE,
} from "../ffi/sys/bsd/kevent.ts";
import { EVENT_INVALID, EVENT_READ, EVENT_WRITE } from "../ffi/selector.ts";
import { createRunner } from "../ffi/offthread.ts";
import { platform, readEnv } from "../ffi/runtime.ts";
import {
  AF_INET,
  SO_ERROR,
  SOCK_DGRAM,
  SOL_SOCKET,
} from "../ffi/sys/sockaddr.ts";
import { hostTable } from "../ffi/sys/platform.ts";
import { closeAll, pipe, readStr, socketpair, writeStr } from "./sys.ts";

const libkqueue = readEnv(LIBKQUEUE_ENV) || undefined;
const skip = kqueueAvailable
  ? false
  : `no kqueue here: set ${LIBKQUEUE_ENV} to a libkqueue built with scripts/build-libkqueue.sh`;
const onLibkqueue = platform === "linux" && kqueueAvailable;

/** The C layouts and constants of libkqueue's <sys/event.h>, or why not. */
function headerFacts(): Record<string, number> | string {
  if (!libkqueue) return `${LIBKQUEUE_ENV} is not set`;
  const include = readEnv("AIOLOOP_LIBKQUEUE_INCLUDE") ||
    join(dirname(libkqueue), "include");
  if (!existsSync(join(include, "sys", "event.h"))) {
    return `no sys/event.h under ${include} (set AIOLOOP_LIBKQUEUE_INCLUDE)`;
  }
  const dir = mkdtempSync(join(tmpdir(), "aioloop-kevent-"));
  try {
    const src = join(dir, "kevent.c");
    writeFileSync(
      src,
      `#include <stddef.h>
#include <stdio.h>
#include <time.h>
#include <sys/event.h>
int main(void) {
  printf("{\\"size\\":%zu,\\"ident\\":%zu,\\"filter\\":%zu,\\"filterSize\\":%zu,"
         "\\"flags\\":%zu,\\"flagsSize\\":%zu,\\"fflags\\":%zu,\\"data\\":%zu,"
         "\\"udata\\":%zu,\\"timespec\\":%zu,\\"EVFILT_READ\\":%d,"
         "\\"EVFILT_WRITE\\":%d,\\"EVFILT_USER\\":%d,\\"EV_ADD\\":%d,"
         "\\"EV_DELETE\\":%d,\\"EV_CLEAR\\":%d,\\"EV_RECEIPT\\":%d,"
         "\\"EV_EOF\\":%d,\\"EV_ERROR\\":%d,\\"NOTE_TRIGGER\\":%u}\\n",
         sizeof(struct kevent), offsetof(struct kevent, ident),
         offsetof(struct kevent, filter), sizeof(((struct kevent *)0)->filter),
         offsetof(struct kevent, flags), sizeof(((struct kevent *)0)->flags),
         offsetof(struct kevent, fflags), offsetof(struct kevent, data),
         offsetof(struct kevent, udata), sizeof(struct timespec),
         EVFILT_READ, EVFILT_WRITE, EVFILT_USER, EV_ADD, EV_DELETE, EV_CLEAR,
         EV_RECEIPT, EV_EOF, EV_ERROR, (unsigned) NOTE_TRIGGER);
  return 0;
}
`,
    );
    const exe = join(dir, "kevent");
    execFileSync("cc", ["-O0", "-I", include, "-o", exe, src], {
      stdio: "pipe",
    });
    return JSON.parse(execFileSync(exe, { encoding: "utf8" }));
  } catch (error) {
    return `cannot compile against ${include}: ${String(error).slice(0, 200)}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const c = headerFacts();
const skipHeader = typeof c === "string" ? c : false;

describe("kqueue: struct kevent and constants per OS", () => {
  it("libkqueue's <sys/event.h> matches the layout and numbers we use", {
    skip: skipHeader,
  }, () => {
    const h = c as Record<string, number>;
    const abi = kqueueAbi("linux", libkqueue)!;
    const L = abi.layout;
    assert.deepEqual(
      [L.size, L.ident, L.filter, L.shortWidth, L.flags, L.shortWidth],
      [h.size, h.ident, h.filter, h.filterSize, h.flags, h.flagsSize],
    );
    assert.deepEqual([L.fflags, L.data, L.udata], [h.fflags, h.data, h.udata]);
    assert.equal(TIMESPEC_SIZE, h.timespec);
    assert.deepEqual(
      [abi.EVFILT_READ, abi.EVFILT_WRITE, abi.EVFILT_USER],
      [h.EVFILT_READ, h.EVFILT_WRITE, h.EVFILT_USER],
    );
    assert.deepEqual(
      [EV_ADD, EV_DELETE, EV_CLEAR, EV_RECEIPT, EV_EOF, EV_ERROR, NOTE_TRIGGER],
      [
        h.EV_ADD,
        h.EV_DELETE,
        h.EV_CLEAR,
        h.EV_RECEIPT,
        h.EV_EOF,
        h.EV_ERROR,
        h.NOTE_TRIGGER,
      ],
    );
  });

  it("each OS gets its own layout, filter numbers, library and symbol", () => {
    // From the headers named in ffi/sys/bsd/kevent.ts (xnu, FreeBSD,
    // OpenBSD, NetBSD, libkqueue); they cannot be compiled here.
    const darwin = kqueueAbi("darwin", undefined)!;
    assert.equal(darwin.layout, KEVENT_LAYOUT_32);
    assert.equal(darwin.EVFILT_USER, -10);
    assert.match(darwin.library, /libSystem/);
    const freebsd = kqueueAbi("freebsd", undefined)!;
    assert.equal(freebsd.layout.size, 64);
    assert.equal(freebsd.layout, KEVENT_LAYOUT_FREEBSD);
    assert.equal(freebsd.EVFILT_USER, -11);
    const openbsd = kqueueAbi("openbsd", undefined)!;
    assert.equal(openbsd.layout, KEVENT_LAYOUT_32);
    const netbsd = kqueueAbi("netbsd", undefined)!;
    assert.deepEqual(
      [netbsd.EVFILT_READ, netbsd.EVFILT_WRITE, netbsd.EVFILT_USER],
      [0, 1, 8],
    );
    assert.equal(netbsd.symbol, "__kevent100");
    assert.equal(netbsd.countType, "u64"); // size_t nchanges, nevents
    assert.equal(netbsd.layout, KEVENT_LAYOUT_NETBSD100);
    assert.deepEqual(
      [KEVENT_LAYOUT_NETBSD50.size, KEVENT_LAYOUT_NETBSD50.data],
      [40, 24],
    );
    assert.equal(KEVENT_LAYOUT_NETBSD100.size, 72);
    const lk = kqueueAbi("linux", "/x/libkqueue.so.0")!;
    assert.deepEqual(
      [lk.flavor, lk.library, lk.layout, lk.EVFILT_USER],
      ["libkqueue", "/x/libkqueue.so.0", KEVENT_LAYOUT_32, -11],
    );
    // No libkqueue, no kqueue on Linux; none on Windows.
    assert.equal(kqueueAbi("linux", undefined), undefined);
    assert.equal(kqueueAbi("win32", "/x/libkqueue.so.0"), undefined);
  });
});

describe("kqueue: selector registry and policy", () => {
  it("kqueue is listed where it exists, after epoll; epoll stays the default on Linux", () => {
    const names = Object.keys(availableSelectors);
    assert.equal(names.includes("kqueue"), kqueueAvailable);
    if (platform === "linux") {
      assert.equal(DefaultSelector.backend, "epoll");
      if (kqueueAvailable) assert.deepEqual(names, ["epoll", "kqueue", "poll"]);
    } else if (kqueueAvailable) {
      assert.equal(DefaultSelector.backend, "kqueue");
    }
  });

  it("policy option 'kqueue' makes kqueue loops, or says how to get one", () => {
    if (kqueueAvailable) {
      const policy = new DefaultEventLoopPolicy({ selector: "kqueue" });
      const loop = policy.newEventLoop() as SelectorEventLoop;
      assert.equal(loop.selectorName, "kqueue");
      loop.close();
      assert.equal(selectorClass("kqueue"), KqueueSelector);
    } else {
      assert.throws(
        () => new DefaultEventLoopPolicy({ selector: "kqueue" }),
        (e: unknown) =>
          e instanceof RangeError && e.message.includes(LIBKQUEUE_ENV),
      );
    }
  });

  it("run-tests --selector kqueue without libkqueue skips, with a how-to, 0 passed 0 failed", () => {
    if (platform !== "linux") return;
    const root = fileURLToPath(new URL("..", import.meta.url));
    // Empty is unset (Deno's child_process adds the parent's variables).
    const env: Record<string, string> = { [LIBKQUEUE_ENV]: "" };
    for (const k of ["PATH", "HOME"]) env[k] = readEnv(k) ?? "";
    let out: string;
    try {
      out = execFileSync(
        "node",
        ["scripts/run-tests.mjs", "--selector", "kqueue", "tests/none.ts"],
        { cwd: root, env, encoding: "utf8" },
      );
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      assert.fail(`run-tests failed without libkqueue: ${stdout}${stderr}`);
    }
    assert.match(out, /SKIPPED/);
    assert.match(out, /build-libkqueue\.sh/);
    assert.match(out, /^0 passed, 0 failed$/m);
  });
});

/** A pipe's write end made readable at the read end. */
function fill(w: number): void {
  assert.ok(writeStr(w, "x") > 0);
}

/** A host timer (no loop runs in the selector tests). */
function hostSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `promise` settles within `ms` (the timer is cleared). */
async function settlesWithin(
  promise: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(r, ms, false)));
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

function fds(): number {
  return readdirSync("/proc/self/fd").length;
}

describe("kqueue: selector", { skip }, () => {
  it("level-triggered reads: reported on every select until drained", () => {
    const s = new KqueueSelector();
    const [r, w] = pipe();
    try {
      s.register(r, EVENT_READ, "r");
      assert.deepEqual(s.select(0), []);
      fill(w);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(
          s.select(0).map(([k, m]) => [k.fd, k.data, m]),
          [[r, "r", EVENT_READ]],
        );
      }
      readStr(r);
      assert.deepEqual(s.select(0), []);
    } finally {
      s.close();
      closeAll(r, w);
    }
  });

  it("a reader and a writer on one fd are separate filters, changed one at a time", () => {
    const s = new KqueueSelector();
    const [a, b] = socketpair();
    const masks = () =>
      s.select(0).filter(([k]) => k.fd === a).map(([, m]) => m);
    try {
      s.register(a, EVENT_WRITE, null);
      assert.deepEqual(masks(), [EVENT_WRITE]);
      s.modify(a, EVENT_READ | EVENT_WRITE, null);
      assert.deepEqual(masks(), [EVENT_WRITE]);
      writeStr(b, "hi");
      assert.deepEqual(masks(), [EVENT_READ | EVENT_WRITE]);
      s.modify(a, EVENT_READ, null);
      assert.deepEqual(masks(), [EVENT_READ]);
      // Off and on again before a select: nothing is lost.
      s.modify(a, EVENT_WRITE, null);
      s.modify(a, EVENT_READ, null);
      assert.deepEqual(masks(), [EVENT_READ]);
      s.unregister(a);
      assert.deepEqual(masks(), []);
    } finally {
      s.close();
      closeAll(a, b);
    }
  });

  it("select(timeout) waits that long when nothing is ready", () => {
    const s = new KqueueSelector();
    const [r, w] = pipe();
    try {
      s.register(r, EVENT_READ, null);
      const t0 = performance.now();
      assert.deepEqual(s.select(40), []);
      assert.ok(performance.now() - t0 >= 35, "returned early");
    } finally {
      s.close();
      closeAll(r, w);
    }
  });

  it("register() of a closed fd throws EBADF at once; the selector stays usable", () => {
    const s = new KqueueSelector();
    const [r, w] = pipe();
    closeAll(r);
    try {
      assert.throws(() => s.register(r, EVENT_READ, null), (e: unknown) => {
        assert.ok(e instanceof OSError);
        assert.equal(e.code, "EBADF");
        return true;
      });
      assert.equal(s.get(r), undefined);
      const [r2, w2] = pipe();
      s.register(r2, EVENT_READ, null);
      fill(w2);
      assert.equal(s.select(0).length, 1);
      closeAll(r2, w2);
    } finally {
      s.close();
      closeAll(w);
    }
  });

  it("a modify batched for an fd closed behind our back comes back as EVENT_INVALID, once", () => {
    const s = new KqueueSelector();
    const [r, w] = pipe();
    try {
      s.register(r, EVENT_READ, "r");
      closeAll(r);
      // Batched: no error here; the kernel answers with EV_ERROR later.
      s.modify(r, EVENT_READ | EVENT_WRITE, "r");
      assert.deepEqual(
        s.select(0).map(([k, m]) => [k.fd, m]),
        [[r, EVENT_INVALID]],
      );
      assert.deepEqual(s.select(0), []);
      s.unregister(r); // still fine
    } finally {
      s.close();
      closeAll(w);
    }
  });

  it("unregister() takes effect before a reused fd number is registered", () => {
    const s = new KqueueSelector();
    try {
      for (let i = 0; i < 5; i++) {
        const [r, w] = pipe();
        s.register(r, EVENT_READ | EVENT_WRITE, i);
        s.modify(r, EVENT_READ, i);
        s.unregister(r);
        closeAll(r, w);
        const [r2, w2] = pipe(); // likely the same numbers
        s.register(r2, EVENT_READ, `new ${i}`);
        assert.deepEqual(s.select(0), []);
        fill(w2);
        assert.deepEqual(
          s.select(0).map(([k, m]) => [k.data, m]),
          [[`new ${i}`, EVENT_READ]],
        );
        s.unregister(r2);
        closeAll(r2, w2);
      }
    } finally {
      s.close();
    }
  });

  it("close() releases the kqueue's descriptors at once (libkqueue too)", {
    skip: platform === "linux" ? false : "counts /proc/self/fd",
  }, () => {
    new KqueueSelector().close(); // libkqueue's process-wide fds exist now
    const before = fds();
    for (let i = 0; i < 10; i++) {
      const s = new KqueueSelector();
      const [r, w] = pipe();
      s.register(r, EVENT_READ, null);
      s.close();
      closeAll(r, w);
    }
    assert.equal(fds(), before);
  });
});

describe(
  "kqueue: the native wait (WaitSet.native) on another thread",
  { skip },
  () => {
    /** Runs `body` with a runner thread for native calls. */
    async function withRunner(
      body: (
        call: (s: KqueueSelector, ms: number | null) => Promise<number>,
      ) => Promise<void>,
    ): Promise<void> {
      const runner = createRunner({ name: "aioloop-kqueue-test", threads: 1 });
      try {
        await body(async (s, ms) => {
          // As the loop's waiter does: finished() once the call returned.
          const native = s.waitSet().native!;
          let result = -1;
          try {
            return result = await runner.call(native, native.args(ms));
          } finally {
            native.finished?.(result);
          }
        });
      } finally {
        runner.close();
      }
    }

    it("names kevent() in this OS's library with its C types", () => {
      const s = new KqueueSelector();
      try {
        const native = s.waitSet().native!;
        const abi = kqueueAbi(platform, libkqueue)!;
        assert.equal(native.library, abi.library);
        assert.match(native.symbol, /kevent/);
        assert.deepEqual(native.parameters, [
          "i32",
          "pointer",
          abi.countType,
          "pointer",
          abi.countType,
          "pointer",
        ]);
        const args = native.args(null);
        assert.deepEqual(
          [args[0], args[1], args[2], args[4], args[5]],
          [s.kq, 0, 0, 1, 0],
        );
        assert.notEqual(
          native.args(10)[5],
          0,
          "a timeout is a timespec pointer",
        );
      } finally {
        s.close();
      }
    });

    it("returns when a watched fd becomes ready, or at its timeout", async () => {
      const s = new KqueueSelector();
      const [r, w] = pipe();
      s.register(r, EVENT_READ, null);
      try {
        await withRunner(async (call) => {
          const t0 = performance.now();
          const pending = call(s, 5000);
          setTimeout(() => fill(w), 30);
          assert.equal(await pending, 1);
          assert.ok(performance.now() - t0 < 2000);
          // Level-triggered: the JS thread's select(0) still sees it.
          assert.equal(s.select(0).length, 1);
          readStr(r);
          const t1 = performance.now();
          assert.equal(await call(s, 40), 0);
          assert.ok(performance.now() - t1 >= 35);
        });
      } finally {
        s.close();
        closeAll(r, w);
      }
    });

    for (const interrupt of ["user", "pipe"] as const) {
      it(`interrupt() ends a wait with no timeout, even if select(0) runs first (${interrupt})`, async () => {
        const s = new KqueueSelector({ interrupt });
        assert.equal(s.userEvents, interrupt === "user");
        try {
          await withRunner(async (call) => {
            for (let i = 0; i < 10; i++) {
              const pending = call(s, null);
              await hostSleep(5);
              s.waitSet().native!.interrupt();
              // The loop keeps selecting while a wait it was woken from is
              // in flight: that must not take the interrupt from the wait.
              s.select(0);
              s.select(0);
              assert.ok(
                await settlesWithin(pending, 3000),
                `wait ${i} was not interrupted`,
              );
            }
            // The next wait blocks again (the interrupt was reset).
            const t0 = performance.now();
            assert.equal(await call(s, 30), 0);
            assert.ok(performance.now() - t0 >= 25, "interrupt not reset");
          });
        } finally {
          s.close();
        }
      });
    }

    it("an event the wait took for an earlier registration of the fd number is dropped", async () => {
      const s = new KqueueSelector();
      try {
        await withRunner(async (call) => {
          const [r, w] = pipe();
          s.register(r, EVENT_READ, "old");
          fill(w);
          assert.equal(await call(s, 1000), 1); // the wait saw `r` readable
          s.unregister(r);
          closeAll(r, w);
          const [r2, w2] = pipe();
          s.register(r2, EVENT_READ, "new");
          try {
            assert.deepEqual(s.select(0), [], "the old event was reported");
          } finally {
            s.unregister(r2);
            closeAll(r2, w2);
          }
        });
      } finally {
        s.close();
      }
    });

    it(
      "libkqueue: a socket error the wait took from SO_ERROR still reaches select() and the socket layer",
      {
        skip: onLibkqueue ? false : "libkqueue only",
      },
      async () => {
        const s = new KqueueSelector();
        const dead = new Socket(AF_INET, SOCK_DGRAM);
        dead.bind(["127.0.0.1", 0]);
        const deadAddr = dead.getsockname();
        dead.close();
        const udp = new Socket(AF_INET, SOCK_DGRAM);
        try {
          udp.connectEx(deadAddr);
          s.register(udp.fileno(), EVENT_READ, null);
          await withRunner(async (call) => {
            const pending = call(s, 3000);
            udp.send(new TextEncoder().encode("anyone?")); // ICMP: refused
            assert.equal(await pending, 1);
          });
          // libkqueue read (and cleared) SO_ERROR on the waiter thread.
          assert.equal(udp.getsockopt(SOL_SOCKET, SO_ERROR), 0);
          assert.deepEqual(s.select(0).map(([, m]) => m), [EVENT_READ]);
          assert.equal(
            takeKqueueSocketError(udp.fileno()),
            hostTable.errno.ECONNREFUSED,
          );
          assert.equal(takeKqueueSocketError(udp.fileno()), 0);
        } finally {
          s.close();
          udp.close();
        }
      },
    );
  },
);

describe("kqueue: a loop over it", { skip }, () => {
  it("waits in the native kevent() call and wakes for an fd, a timer and callSoonThreadsafe", async () => {
    const selector = new KqueueSelector();
    const native = selector.waitSet().native!;
    let nativeWaits = 0;
    const args = native.args;
    (native as { args: typeof args }).args = (ms) => {
      nativeWaits++;
      return args(ms);
    };
    const loop = new SelectorEventLoop(selector);
    const [r, w] = pipe();
    try {
      const got: string[] = [];
      await loop.runUntilComplete(async () => {
        const read = loop.createFuture<void>();
        loop.addReader(r, () => {
          got.push(`read ${readStr(r)}`);
          loop.removeReader(r);
          read.setResult();
        });
        setTimeout(() => writeStr(w, "ping"), 20); // host timer, not the loop
        await read;
        await sleep(15);
        got.push("slept");
        const woke = loop.createFuture<void>();
        setTimeout(() => loop.callSoonThreadsafe(() => woke.setResult()), 20);
        await woke;
        got.push("woke");
      });
      assert.deepEqual(got, ["read ping", "slept", "woke"]);
      assert.ok(nativeWaits >= 2, `native waits: ${nativeWaits}`);
    } finally {
      loop.close();
      closeAll(r, w);
    }
  });
});
