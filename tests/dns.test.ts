// Name resolution: getaddrinfo/getnameinfo argument checks (the same error
// classes on Deno and Bun, before any resolver call), errors carried back
// from Bun's resolver Workers, and lookups that do not wait behind others.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  AF_INET,
  AI_NUMERICSERV,
  CancelledError,
  ConnectionRefusedError,
  GaiError,
  IPPROTO_TCP,
  NI_NUMERICHOST,
  NI_NUMERICSERV,
  OSError,
  Protocol,
  type SelectorEventLoop,
  SOCK_STREAM,
} from "../mod.ts";
import {
  _holdNextLookup,
  EAI_NONAME,
  errorFromWire,
  errorToWire,
  RESOLVER_WORKERS,
} from "../ffi/dns.ts";
import { runtime } from "../ffi/runtime.ts";
import { assertRejects, runNet } from "./net_helpers.ts";
import { eventually, threadNames } from "./helpers.ts";

/** How many threads named aioloop-dns (Bun's resolver Workers) run. */
function resolverThreads(): number {
  return threadNames().filter((name) => name === "aioloop-dns").length;
}

/** Whether the loop has made its resolver (a Worker in Bun) yet. */
function resolverStarted(loop: SelectorEventLoop): boolean {
  return (loop as unknown as { _resolver: unknown })._resolver !== null;
}

function rejectsWith(
  kind: typeof RangeError | typeof TypeError,
  pattern: RegExp,
): (e: unknown) => void {
  return (e) => {
    assert.ok(
      e instanceof kind && e.constructor === kind,
      `expected ${kind.name}, got ${String(e)}`,
    );
    assert.match((e as Error).message, pattern);
  };
}

describe("getaddrinfo arguments", () => {
  it("a port number outside 0..65535 is a RangeError naming port, not a wrapped port", async () => {
    await runNet(async (loop) => {
      const bad = [
        70000,
        65536,
        -1,
        1.5,
        NaN,
        Infinity,
        "70000",
        "+70000",
        " 70000",
        "-1",
        "99999999999999999999",
      ];
      for (const port of bad) {
        for (const type of [0, SOCK_STREAM]) {
          await assertRejects(
            loop.getaddrinfo("127.0.0.1", port, { type }),
            rejectsWith(RangeError, /^port must be an integer in 0\.\.65535/),
          );
        }
      }
      await assertRejects(
        loop.getaddrinfo("127.0.0.1", 70000),
        rejectsWith(RangeError, /got 70000$/),
      );
    });
  });

  it("service names, numeric strings and null stay allowed", async () => {
    await runNet(async (loop) => {
      const cases: [string | number | null, number][] = [
        ["http", 80],
        ["8080", 8080],
        ["+80", 80],
        ["0080", 80],
        [null, 0],
        [0, 0],
        [65535, 65535],
      ];
      for (const [port, expected] of cases) {
        const infos = await loop.getaddrinfo("127.0.0.1", port, {
          type: SOCK_STREAM,
        });
        assert.deepEqual(infos, [[AF_INET, SOCK_STREAM, IPPROTO_TCP, "", [
          "127.0.0.1",
          expected,
        ]]], `port ${String(port)}`);
      }
    });
  });

  it("a port of another type is a TypeError naming port", async () => {
    await runNet(async (loop) => {
      for (const port of [true, {}, [80], 80n, undefined]) {
        await assertRejects(
          loop.getaddrinfo("127.0.0.1", port as unknown as number),
          rejectsWith(TypeError, /^port must be/),
        );
      }
    });
  });

  it("createServer and createConnection reject port 70000 instead of using port 4464", async () => {
    await runNet(async (loop) => {
      await assertRejects(
        loop.createServer(() => new Protocol(), "127.0.0.1", 70000),
        rejectsWith(RangeError, /port/),
      );
      await assertRejects(
        loop.createConnection(() => new Protocol(), "127.0.0.1", 70000),
        rejectsWith(RangeError, /port/),
      );
    });
  });

  it("a host that is not a string or null is a TypeError naming host", async () => {
    await runNet(async (loop) => {
      for (const host of [42, undefined, {}, ["127.0.0.1"]]) {
        await assertRejects(
          loop.getaddrinfo(host as unknown as string, 80),
          rejectsWith(TypeError, /^host must be a string or null/),
        );
      }
    });
  });

  it("a NUL byte in host or service is a RangeError, before any resolver call", async () => {
    await runNet(async (loop) => {
      for (const host of ["local\0host", "127.0.0.1\0.evil", "\0"]) {
        await assertRejects(
          loop.getaddrinfo(host, 80),
          rejectsWith(RangeError, /^host must not contain NUL bytes/),
        );
      }
      await assertRejects(
        loop.getaddrinfo("127.0.0.1", "ht\0tp"),
        rejectsWith(RangeError, /^port must not contain NUL bytes/),
      );
      assert.equal(resolverStarted(loop), false, "the resolver was started");
    });
  });

  it("family, type, proto and flags must be int32 integers, options an object", async () => {
    await runNet(async (loop) => {
      const cases: [object, typeof RangeError | typeof TypeError, RegExp][] = [
        [{ family: 1.5 }, RangeError, /^family must be an integer in/],
        [{ family: "2" }, TypeError, /^family must be an integer/],
        [{ type: 2 ** 31 }, RangeError, /^type must be an integer in/],
        [{ type: true }, TypeError, /^type must be an integer/],
        [{ proto: -(2 ** 31) - 1 }, RangeError, /^proto must be/],
        [{ flags: NaN }, RangeError, /^flags must be an integer in/],
        [{ flags: {} }, TypeError, /^flags must be an integer/],
      ];
      for (const [options, kind, pattern] of cases) {
        await assertRejects(
          loop.getaddrinfo("localhost", 80, options),
          rejectsWith(kind, pattern),
        );
      }
      await assertRejects(
        loop.getaddrinfo("localhost", 80, null as unknown as object),
        rejectsWith(TypeError, /^options must be an object/),
      );
      assert.equal(resolverStarted(loop), false, "the resolver was started");
      // Absent and null options are 0, as before.
      const infos = await loop.getaddrinfo("127.0.0.1", 80, {
        type: SOCK_STREAM,
        family: undefined,
        proto: null as unknown as number,
      });
      assert.equal(infos.length, 1);
    });
  });
});

describe("getnameinfo arguments", () => {
  it("a host name is GaiError EAI_NONAME, as in asyncio", async () => {
    await runNet(async (loop) => {
      for (
        const sockaddr of [
          ["localhost", 8080],
          ["", 80],
          ["example.invalid", 80, 0, 0],
        ] as const
      ) {
        await assertRejects(loop.getnameinfo(sockaddr), (e) => {
          assert.ok(e instanceof GaiError, `got ${String(e)}`);
          assert.equal(e.code, "EAI_NONAME");
          assert.equal(e.errno, EAI_NONAME); // -2 with glibc, 8 on macOS
          assert.equal(e.syscall, "getnameinfo");
        });
      }
    });
  });

  it("a bad port or flowinfo is a RangeError, a bad flags value a TypeError/RangeError, on both runtimes", async () => {
    await runNet(async (loop) => {
      for (const port of [70000, -1, 1.5, NaN]) {
        await assertRejects(
          loop.getnameinfo(["127.0.0.1", port]),
          rejectsWith(RangeError, /^port must be an integer in 0\.\.65535/),
        );
      }
      await assertRejects(
        loop.getnameinfo(["::1", 80, -1, 0]),
        rejectsWith(RangeError, /^flowinfo must be an integer in/),
      );
      await assertRejects(
        loop.getnameinfo(["127.0.0.1", 80], 1.5),
        rejectsWith(RangeError, /^flags must be an integer in/),
      );
      await assertRejects(
        loop.getnameinfo(["127.0.0.1", 80], "1" as unknown as number),
        rejectsWith(TypeError, /^flags must be an integer/),
      );
      await assertRejects(
        loop.getnameinfo(["127.0.0.1", "80" as unknown as number]),
        rejectsWith(TypeError, /^port must be an integer/),
      );
      await assertRejects(
        loop.getnameinfo(["127.0.0\0.1", 80]),
        rejectsWith(RangeError, /NUL/),
      );
      assert.equal(resolverStarted(loop), false, "the resolver was started");
    });
  });

  it("a sockaddr that is not [host, port] or [host, port, flowinfo, scopeId] stays a TypeError", async () => {
    await runNet(async (loop) => {
      const bad = [
        42,
        "127.0.0.1",
        [],
        [80, "127.0.0.1"],
        ["127.0.0.1"],
        ["127.0.0.1", 80, 0],
        ["127.0.0.1", 80, 0, 0], // an IPv4 address has no flowinfo
        null,
      ];
      for (const sockaddr of bad) {
        await assertRejects(
          loop.getnameinfo(sockaddr as unknown as [string, number]),
          rejectsWith(TypeError, /address must be|sockaddr must be/),
        );
      }
    });
  });

  it("numeric addresses still resolve", async () => {
    await runNet(async (loop) => {
      assert.deepEqual(
        await loop.getnameinfo(
          ["127.0.0.1", 8080],
          NI_NUMERICHOST | NI_NUMERICSERV,
        ),
        ["127.0.0.1", "8080"],
      );
      assert.deepEqual(
        await loop.getnameinfo(
          ["::1", 443, 0, 0],
          NI_NUMERICHOST | NI_NUMERICSERV,
        ),
        ["::1", "443"],
      );
    });
  });
});

describe("errors from the resolver thread", () => {
  it("cross the Worker boundary with their class, message, errno, code and syscall", () => {
    const errors: Error[] = [
      new GaiError(-2, "EAI_NONAME", "Name or service not known", "x", "h:1"),
      new ConnectionRefusedError(111, "ECONNREFUSED", "refused", "connect"),
      new OSError(9, "EBADF", "Bad file descriptor", "close"),
      new RangeError("port must be an integer in 0..65535, got 70000"),
      new TypeError("host must be a string or null, got 42"),
      new Error("plain"),
    ];
    for (const error of errors) {
      // structuredClone: what postMessage does to the description.
      const back = errorFromWire(structuredClone(errorToWire(error)));
      assert.equal(back.constructor, error.constructor);
      assert.equal(back.name, error.name);
      assert.equal(back.message, error.message);
      if (error instanceof OSError) {
        const os = back as OSError;
        assert.equal(os.errno, error.errno);
        assert.equal(os.code, error.code);
        assert.equal(os.syscall, error.syscall);
      }
    }
  });

  it("libc's own failure is the same GaiError on both runtimes", async () => {
    await runNet(async (loop) => {
      await assertRejects(
        loop.getaddrinfo("127.0.0.1", "http", { flags: AI_NUMERICSERV }),
        (e) => {
          assert.ok(e instanceof GaiError, `got ${String(e)}`);
          assert.equal(e.code, "EAI_NONAME");
          assert.equal(e.errno, EAI_NONAME); // -2 with glibc, 8 on macOS
          assert.equal(e.syscall, "getaddrinfo");
          assert.match(e.message, /127\.0\.0\.1:http/);
        },
      );
    });
  });
});

describe("lookups side by side", () => {
  it("a lookup that does not answer holds up no other lookup", async () => {
    await runNet(async (loop) => {
      // The next lookup of "localhost" blocks its resolver thread.
      const release = _holdNextLookup("localhost");
      try {
        const held = loop.getaddrinfo("localhost", 80);
        // No type: the resolver is asked, not answered here.
        const infos = await loop.getaddrinfo("127.0.0.1", 80);
        assert.ok(infos.length > 0);
        assert.equal(held.done(), false, "the held lookup answered");
        release();
        assert.ok((await held).length > 0);
      } finally {
        release();
      }
    }, { timeout: 5000 });
  });
});

describe("lookups side by side, cancelled", () => {
  it("a cancelled lookup that has not started gives up its turn", async () => {
    await runNet(async (loop) => {
      const releases: (() => void)[] = [];
      try {
        // Every resolver Worker (Bun) busy with a lookup that does not answer.
        const busy = [];
        for (let i = 0; i < RESOLVER_WORKERS; i++) {
          const host = `127.0.0.${10 + i}`;
          releases.push(_holdNextLookup(host));
          busy.push(loop.getaddrinfo(host, 80));
        }
        // Queued behind them, and itself held: cancelled before it starts.
        releases.push(_holdNextLookup("127.0.0.50"));
        const queued = loop.getaddrinfo("127.0.0.50", 80);
        assert.equal(queued.cancel(), true);
        await assertRejects(
          queued,
          (e) => assert.ok(e instanceof CancelledError),
        );
        // One Worker comes free: the next lookup gets it, not the cancelled
        // one (which would hold it for good).
        releases[0]();
        assert.ok((await busy[0]).length > 0);
        const infos = await loop.getaddrinfo("127.0.0.60", 80);
        assert.deepEqual(infos[0][4], ["127.0.0.60", 80]);
        for (const release of releases) release();
        for (const fut of busy) assert.ok((await fut).length > 0);
      } finally {
        for (const release of releases) release();
      }
    }, { timeout: 5000 });
  });

  it(
    "Bun runs at most RESOLVER_WORKERS resolver threads, and none outlives close()",
    {
      skip: runtime === "bun"
        ? false
        : "Deno resolves on its own blocking pool",
    },
    async () => {
      // Workers of earlier tests' loops may still be ending.
      assert.ok(await eventually(() => resolverThreads() === 0), "old threads");
      const releases: (() => void)[] = [];
      await runNet(async (loop) => {
        try {
          const held = [];
          for (let i = 0; i < RESOLVER_WORKERS + 2; i++) {
            const host = `127.0.1.${i + 1}`;
            releases.push(_holdNextLookup(host));
            held.push(loop.getaddrinfo(host, 80));
          }
          assert.ok(
            await eventually(() => resolverThreads() >= RESOLVER_WORKERS),
            `${resolverThreads()} resolver threads for ${held.length} lookups`,
          );
          assert.equal(resolverThreads(), RESOLVER_WORKERS);
          for (const release of releases) release();
          for (const fut of held) assert.ok((await fut).length > 0);
        } finally {
          for (const release of releases) release();
        }
      });
      assert.ok(
        await eventually(() => resolverThreads() === 0),
        `${resolverThreads()} resolver threads after close()`,
      );
    },
  );
});
