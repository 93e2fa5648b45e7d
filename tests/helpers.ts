// Shared test helpers: a loop on the selector chosen by AIOLOOP_SELECTOR,
// fd counting, and a log capture.
import {
  DefaultEventLoopPolicy,
  type Logger,
  SelectorEventLoop,
  setLogger,
} from "../mod.ts";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";

/** The selector class every test uses (AIOLOOP_SELECTOR or the default). */
export const policy: DefaultEventLoopPolicy = new DefaultEventLoopPolicy();

// libkqueue (kqueue on Linux) opens fds on its first kqueue() that stay for
// the life of the process (its global epoll and eventfd): open them now,
// before any test counts fds. Real kqueue has no such state.
if (policy.selectorClass.backend === "kqueue") {
  new policy.selectorClass().close();
}

/** A new loop over the selector under test. */
export function newLoop(): SelectorEventLoop {
  return new SelectorEventLoop(new policy.selectorClass());
}

/** Runs `main` on a new loop until complete, then closes the loop. */
export async function runLoop<T>(
  main: () => PromiseLike<T> | T,
  loop: SelectorEventLoop = newLoop(),
): Promise<T> {
  try {
    return await loop.runUntilComplete(main);
  } finally {
    loop.close();
  }
}

/** The open fds of this process (/proc/self/fd on Linux, else /dev/fd). */
export function openFds(): Set<string> {
  // /dev/fd on macOS and the BSDs.
  const dir = existsSync("/proc/self/fd") ? "/proc/self/fd" : "/dev/fd";
  // The listing holds the descriptor readdir itself had open, closed again
  // when it returns: it is left out by asking each entry again (stat fails
  // on a closed one). It is the lowest free number, so after an earlier
  // test's fd closed it would show up as a new fd in every later listing.
  return new Set(
    readdirSync(dir).filter((fd) => {
      try {
        statSync(`${dir}/${fd}`);
        return true;
      } catch {
        return false;
      }
    }),
  );
}

/** Captures what the loop logs while `fn` runs. */
export async function captureLog<T>(
  fn: () => Promise<T> | T,
): Promise<{ result: T; errors: [string, unknown][]; warnings: string[] }> {
  const errors: [string, unknown][] = [];
  const warnings: string[] = [];
  const capture: Logger = {
    error: (m, e) => errors.push([m, e]),
    warning: (m) => warnings.push(m),
  };
  const old = setLogger(capture);
  try {
    const result = await fn();
    return { result, errors, warnings };
  } finally {
    setLogger(old);
  }
}

/**
 * Asserts that no fd is open now that was not open in `before` (fds that
 * the runtime closed meanwhile are fine). Retries for up to `ms`, since
 * runtimes release Worker resources asynchronously.
 */
export async function assertNoNewFds(
  before: Set<string>,
  ms = 2000,
): Promise<void> {
  const deadline = performance.now() + ms;
  let extra: string[] = [];
  for (;;) {
    const now = openFds();
    extra = [...now].filter((fd) => !before.has(fd));
    if (extra.length === 0 || performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  if (extra.length > 0) {
    // Name what is still open; an fd that closed since the last listing
    // (the runtime ending a Worker of an earlier test) is no leak.
    const { readlinkSync } = await import("node:fs");
    const dir = existsSync("/proc/self/fd") ? "/proc/self/fd" : "/dev/fd";
    const what = extra.flatMap((fd) => {
      try {
        return [`${fd} -> ${readlinkSync(`${dir}/${fd}`)}`];
      } catch {
        return openFds().has(fd) ? [fd] : [];
      }
    });
    if (what.length > 0) throw new Error(`leaked fds: ${what.join(", ")}`);
  }
}

/**
 * The names (comm) of this process's threads (Linux /proc; Bun names its
 * Workers, e.g. aioloop-waiter, aioloop-dns). A thread that ended while
 * being listed is left out.
 */
export function threadNames(): string[] {
  return readdirSync("/proc/self/task").flatMap((t) => {
    try {
      return [readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim()];
    } catch {
      return []; // the thread ended meanwhile
    }
  });
}

/** Waits (up to `ms`) until `done()`; returns whether it became true. */
export async function eventually(
  done: () => boolean,
  ms = 3000,
): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!done() && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  return done();
}
