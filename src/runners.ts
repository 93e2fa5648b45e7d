/**
 * `run()` (asyncio.run): run a main function on a new loop, then cancel
 * what is left and close the loop.
 *
 * @module
 */
import {
  _getRunningLoop,
  type AbstractEventLoop,
  type Coroutine,
  newEventLoop,
  setEventLoop,
} from "./events.ts";
import { RuntimeError } from "./exceptions.ts";
import { allTasks, gather, type Task } from "./tasks.ts";

/** Options of {@link run}. */
export interface RunOptions {
  /** Turn debug mode on or off (default: the loop's). */
  debug?: boolean;
  /** Makes the loop (asyncio 3.12's `loop_factory`); default: the policy. */
  loopFactory?: () => AbstractEventLoop;
}

/**
 * Runs `main` (an async function, or a promise) on a new loop until it
 * completes; then cancels the remaining tasks, waits for them, and closes
 * the loop. Resolves with main's result.
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
  const loop = options.loopFactory ? options.loopFactory() : newEventLoop();
  const usePolicy = options.loopFactory === undefined;
  if (usePolicy) setEventLoop(loop);
  if (options.debug !== undefined) loop.setDebug(options.debug);
  try {
    return await loop.runUntilComplete(main);
  } finally {
    try {
      await cancelAllTasks(loop);
      await loop.runUntilComplete(loop.shutdownAsyncgens());
      await loop.runUntilComplete(loop.shutdownDefaultExecutor());
    } finally {
      if (usePolicy) setEventLoop(null);
      loop.close();
    }
  }
}

async function cancelAllTasks(loop: AbstractEventLoop): Promise<void> {
  const tasks = [...allTasks(loop)] as Task<unknown>[];
  if (tasks.length === 0) return;
  for (const task of tasks) task.cancel();
  await loop.runUntilComplete(() => gather(tasks, { returnExceptions: true }));
  for (const task of tasks) {
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
