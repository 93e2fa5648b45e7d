// addReader/addWriter on pipes, socketpairs and eventfds; bad descriptors.
// Ports test_reader_callback, test_writer_callback, test_add_fds_after_closing,
// test_remove_fds_after_closing and the add/remove_reader matrix.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  assertNoNewFds,
  captureLog,
  newLoop,
  openFds,
  policy,
} from "./helpers.ts";
import {
  closeAll,
  eventfd,
  pipe,
  readStr,
  socketpair,
  writeStr,
} from "./sys.ts";
import { EVENT_READ, EVENT_WRITE, OSError, RuntimeError } from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { closeSync, openSync } from "node:fs";

describe("fd watching", () => {
  it("reader gets all bytes and removeReader is true at EOF (test_reader_callback)", async () => {
    const loop = newLoop();
    const [r, w] = socketpair();
    const bytes: string[] = [];
    let removed: boolean | null = null;
    loop.addReader(r, () => {
      const data = readStr(r);
      if (data === null) return;
      if (data !== "") {
        bytes.push(data);
        return;
      }
      removed = loop.removeReader(r);
      loop.stop();
    });
    loop.callSoon(() => writeStr(w, "abc"));
    loop.callLater(5, () => writeStr(w, "def"));
    loop.callLater(10, () => libc.close(w));
    await loop.runForever();
    assert.equal(bytes.join(""), "abcdef");
    assert.equal(removed, true);
    closeAll(r);
    loop.close();
  });

  it("writer callback; removeWriter true then false (test_writer_callback)", async () => {
    const loop = newLoop();
    const [r, w] = socketpair();
    let writes = 0;
    loop.addWriter(w, () => {
      writeStr(w, "x".repeat(100));
      if (++writes === 3) loop.stop();
    });
    await loop.runForever();
    assert.equal(loop.removeWriter(w), true);
    assert.equal(loop.removeWriter(w), false);
    assert.equal(readStr(r), "x".repeat(300));
    closeAll(r, w);
    loop.close();
  });

  it("reader on a pipe wakes an idle loop when a host timer writes", async () => {
    const loop = newLoop();
    const [r, w] = pipe();
    let got = "";
    loop.addReader(r, () => {
      got += readStr(r) ?? "";
      loop.stop();
    });
    setTimeout(() => writeStr(w, "ping"), 20);
    await loop.runForever();
    assert.equal(got, "ping");
    loop.removeReader(r);
    closeAll(r, w);
    loop.close();
  });

  it("an eventfd is watchable", async () => {
    const loop = newLoop();
    const fd = eventfd();
    let fired = 0;
    loop.addReader(fd, () => {
      readStr(fd, 8);
      fired++;
      loop.stop();
    });
    loop.callLater(
      5,
      () => libc.write(fd, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]), 8),
    );
    await loop.runForever();
    assert.equal(fired, 1);
    loop.removeReader(fd);
    closeAll(fd);
    loop.close();
  });

  it("watching is level-triggered: unread data fires again", async () => {
    const loop = newLoop();
    const [r, w] = pipe();
    writeStr(w, "data");
    let calls = 0;
    loop.addReader(r, () => {
      if (++calls === 3) loop.stop();
    });
    await loop.runForever();
    assert.equal(calls, 3);
    loop.removeReader(r);
    closeAll(r, w);
    loop.close();
  });

  it("reader and writer on one fd share one registration", () => {
    const loop = newLoop();
    const [a, b] = socketpair();
    const base = loop._selector.getMap().size;
    loop.addReader(a, () => {});
    loop.addWriter(a, () => {});
    assert.equal(loop._selector.getMap().size, base + 1);
    assert.equal(loop._selector.get(a)?.events, EVENT_READ | EVENT_WRITE);
    assert.equal(loop.removeReader(a), true);
    assert.equal(loop._selector.get(a)?.events, EVENT_WRITE);
    assert.equal(loop.removeWriter(a), true);
    assert.equal(loop._selector.get(a), undefined);
    assert.equal(loop.removeReader(a), false);
    closeAll(a, b);
    loop.close();
  });

  it("re-adding a reader replaces the callback and cancels the old handle", async () => {
    const loop = newLoop();
    const [r, w] = pipe();
    const calls: string[] = [];
    loop.addReader(r, () => calls.push("old"));
    const oldHandle = loop._selector.get(r)!.data[0]!;
    loop.addReader(r, () => {
      calls.push("new");
      loop.stop();
    });
    assert.equal(oldHandle.cancelled(), true);
    writeStr(w, "x");
    await loop.runForever();
    assert.deepEqual(calls, ["new"]);
    loop.removeReader(r);
    closeAll(r, w);
    loop.close();
  });

  it("accepts objects with fileno()", async () => {
    const loop = newLoop();
    const [r, w] = pipe();
    const file = { fileno: () => r };
    let got = "";
    loop.addReader(file, () => {
      got = readStr(r) ?? "";
      loop.stop();
    });
    writeStr(w, "obj");
    await loop.runForever();
    assert.equal(got, "obj");
    assert.equal(loop.removeReader(file), true);
    closeAll(r, w);
    loop.close();
  });

  it("bad descriptors get clear errors and the loop keeps working", async () => {
    const before = openFds();
    const loop = newLoop();
    assert.throws(() => loop.addReader(-1, () => {}), {
      name: "RangeError",
      message: "Invalid file descriptor: -1",
    });
    assert.throws(
      () => loop.addReader("x" as unknown as number, () => {}),
      { name: "TypeError", message: "Invalid file object: 'x'" },
    );
    assert.throws(
      () => loop.addReader({ fileno: () => 1.5 }, () => {}),
      { name: "RangeError" },
    );
    // An fd number that is not open.
    const [r, w] = pipe();
    closeAll(r, w);
    assert.throws(() => loop.addReader(r, () => {}), (e: unknown) => {
      assert.ok(e instanceof OSError);
      assert.equal(e.code, "EBADF");
      assert.match(e.message, /Bad file descriptor/);
      return true;
    });
    assert.throws(() => loop.addWriter(r, () => {}), { name: "OSError" });
    assert.throws(
      () => loop.addReader(3 as number, 42 as unknown as () => void),
      {
        name: "TypeError",
        message: /a callable object was expected by addReader/,
      },
    );
    assert.equal(loop.removeReader(r), false);
    // The loop still runs.
    let ran = false;
    loop.callSoon(() => {
      ran = true;
      loop.stop();
    });
    await loop.runForever();
    assert.equal(ran, true);
    loop.close();
    await assertNoNewFds(before);
  });

  it("epoll refuses regular files with EPERM", {
    skip: policy.selectorClass.backend !== "epoll",
  }, () => {
    const loop = newLoop();
    const fd = openSync("deno.json", "r");
    try {
      assert.throws(() => loop.addReader(fd, () => {}), (e: unknown) => {
        assert.ok(e instanceof OSError);
        assert.equal(e.code, "EPERM");
        return true;
      });
    } finally {
      closeSync(fd);
      loop.close();
    }
  });

  it("an fd closed while watched is dropped, not a crash", async () => {
    const loop = newLoop();
    // Let the loop make its waiter first, so that the fd numbers closed
    // below are not reused by the loop itself.
    loop.callLater(1, () => loop.stop());
    await loop.runForever();
    const [r, w] = pipe();
    let readerCalls = 0;
    loop.addReader(r, () => readerCalls++);
    closeAll(r, w);
    const { errors } = await captureLog(async () => {
      loop.callLater(30, () => loop.stop());
      await loop.runForever();
    });
    if (policy.selectorClass.backend === "poll") {
      // poll reports POLLNVAL: the loop drops the fd and says so.
      assert.equal(loop._selector.get(r), undefined);
      assert.equal(errors.length, 1);
      assert.match(
        errors[0][0],
        /File descriptor \d+ was closed while the loop watched it/,
      );
    } else {
      // epoll forgets a closed fd by itself; removeReader still works.
      assert.equal(loop.removeReader(r), true);
    }
    assert.ok(readerCalls <= 1);
    loop.close();
  });

  it("add on a closed loop throws, remove returns false (test_add/remove_fds_after_closing)", () => {
    const loop = newLoop();
    const [a, b] = socketpair();
    loop.addReader(a, () => {});
    loop.addWriter(a, () => {});
    loop.close();
    assert.throws(() => loop.addReader(a, () => {}), RuntimeError);
    assert.throws(() => loop.addWriter(a, () => {}), RuntimeError);
    assert.equal(loop.removeReader(a), false);
    assert.equal(loop.removeWriter(a), false);
    closeAll(a, b);
  });

  it("addReader from a host timer while the loop waits is picked up", async () => {
    const loop = newLoop();
    const [r, w] = pipe();
    let got = "";
    setTimeout(() => {
      loop.addReader(r, () => {
        got = readStr(r) ?? "";
        loop.stop();
      });
      setTimeout(() => writeStr(w, "late"), 10);
    }, 10);
    await loop.runForever();
    assert.equal(got, "late");
    loop.removeReader(r);
    closeAll(r, w);
    loop.close();
  });
});
