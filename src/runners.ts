/**
 * `run()` (asyncio.run): run a main function on a new loop, then cancel
 * what is left and close the loop.
 *
 * Shutdown never hangs: after cancelling the remaining tasks, run() waits
 * for them at most {@link RunOptions.shutdownTimeout} ms. A task that has
 * not finished by then (it awaits a native promise that does not settle,
 * or it ignores the cancel) is reported to the loop's exception handler
 * and abandoned; the loop is closed anyway, and whatever the abandoned
 * task does later is dropped.
 *
 * @module
 */
import {
  _getRunningLoop,
  type AbstractEventLoop,
  type Coroutine,
  type ExceptionContext,
  newEventLoop,
  setEventLoop,
} from "./events.ts";
import { RuntimeError } from "./exceptions.ts";
import type { Future } from "./futures.ts";
import { allTasks, type Task } from "./tasks.ts";

/** How long run() waits for cancelled tasks at shutdown by default, in ms. */
export const DEFAULT_SHUTDOWN_TIMEOUT = 3000;

/** Options of {@link run}. */
export interface RunOptions {
  /** Turn debug mode on or off (default: the loop's). */
  debug?: boolean;
  /** Makes the loop (asyncio 3.12's `loop_factory`); default: the policy. */
  loopFactory?: () => AbstractEventLoop;
  /**
   * At shutdown, how long to wait (ms) for the tasks run() cancelled before
   * reporting the unfinished ones and closing the loop; null waits forever.
   * Default {@link DEFAULT_SHUTDOWN_TIMEOUT}.
   */
  shutdownTimeout?: number | null;
}

/** The shutdown timeout of `options`: ms, or null for no limit. */
function shutdownTimeoutOf(options: RunOptions): number | null {
  const value = options.shutdownTimeout;
  if (value === undefined) return DEFAULT_SHUTDOWN_TIMEOUT;
  if (value === null) return null;
  if (typeof value !== "number") {
    throw new TypeError(
      `shutdownTimeout must be a number of ms or null, got ${
        typeof value === "string" ? `'${value}'` : String(value)
      }`,
    );
  }
  if (Number.isNaN(value) || value < 0) {
    throw new RangeError(
      `shutdownTimeout must be a non-negative number of ms, got ${value}`,
    );
  }
  return value === Infinity ? null : value;
}

/**
 * Runs `main` (an async function, or a promise) on a new loop until it
 * completes; then cancels the remaining tasks, waits for them at most
 * `options.shutdownTimeout` ms, reports those that did not finish to the
 * exception handler, and closes the loop. Resolves with main's result.
 */
export async function run<T>(
  main: Coroutine<T>,
  options: RunOptions = {},
): Promise<T> {
  if (_getRunningLoop() !== null) {
    throw new RuntimeError(
      "run() cannot be called from a running event loop",
    );
  }
  const shutdownTimeout = shutdownTimeoutOf(options);
  const loop = options.loopFactory ? options.loopFactory() : newEventLoop();
  const usePolicy = options.loopFactory === undefined;
  if (usePolicy) setEventLoop(loop);
  if (options.debug !== undefined) loop.setDebug(options.debug);
  try {
    return await loop.runUntilComplete(main);
  } finally {
    try {
      await cancelAllTasks(loop, shutdownTimeout);
      await loop.runUntilComplete(loop.shutdownAsyncgens());
      await loop.runUntilComplete(loop.shutdownDefaultExecutor());
    } finally {
      if (usePolicy) setEventLoop(null);
      loop.close();
    }
  }
}

/**
 * Cancels every task of `loop`, waits until they are done or `timeout` ms
 * passed, and reports the unfinished ones and the failed ones.
 */
async function cancelAllTasks(
  loop: AbstractEventLoop,
  timeout: number | null,
): Promise<void> {
  const tasks = [...allTasks(loop)] as Task<unknown>[];
  if (tasks.length === 0) return;
  for (const task of tasks) task.cancel();
  await loop.runUntilComplete(allDoneOrTimeout(loop, tasks, timeout));
  for (const task of tasks) {
    if (!task.done()) {
      reportUnfinished(loop, task, timeout!);
      continue;
    }
    if (task.cancelled()) continue;
    const exception = task.exception();
    if (exception !== null) {
      loop.callExceptionHandler({
        message: "unhandled exception during run() shutdown",
        exception,
        task,
      });
    }
  }
}

/** A future done when every task is, or after `timeout` ms (null: never). */
function allDoneOrTimeout(
  loop: AbstractEventLoop,
  tasks: Task<unknown>[],
  timeout: number | null,
): Future<void> {
  const all = loop.createFuture<void>();
  const finish = () => {
    if (!all.done()) all.setResult(undefined);
  };
  const timer = timeout === null ? null : loop.callLater(timeout, finish);
  let pending = tasks.length;
  const onDone = () => {
    if (--pending > 0) return;
    timer?.cancel();
    finish();
  };
  for (const task of tasks) task.addDoneCallback(onDone);
  return all;
}

/** Tells the exception handler that `task` did not finish and is abandoned. */
function reportUnfinished(
  loop: AbstractEventLoop,
  task: Task<unknown>,
  timeout: number,
): void {
  // The repr names the task and, when it awaits a loop Future, shows it
  // (wait_for=...).
  const where = task._futWaiter
    ? ""
    : "; it awaits a native promise (a cancel lands only at its next await of a loop Future)";
  const context: ExceptionContext = {
    message: `run() shutdown: ${task} did not finish within ${timeout} ms ` +
      `after it was cancelled${where}; it is abandoned`,
    task,
  };
  if (task._sourceTraceback) context.sourceTraceback = task._sourceTraceback;
  loop.callExceptionHandler(context);
}
