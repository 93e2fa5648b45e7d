/**
 * Scheduling benchmarks for one runtime, picked by the first argument:
 *
 * - `chain-ours`, `chain-microtask`, `chain-immediate`: a chain of
 *   1,000,000 callbacks where each one schedules the next (aioloop's
 *   `callSoon`, `queueMicrotask`, `setImmediate`); reports millions of
 *   callbacks per second.
 * - `timers-ours`, `timers-native`: 200,000 timers with seeded random
 *   delays in [0, 50) ms, every other one cancelled right after it was
 *   scheduled (`callLater` + `cancel()`, or `setTimeout` + `clearTimeout`);
 *   reports the wall time in ms from the first schedule until the last
 *   timer ran.
 * - `idle-ours`, `idle-native`: process CPU time (all threads) while an
 *   idle loop (`runForever()` with only a `callLater(2000, stop)`) or a
 *   lone `setTimeout(2000)` waits; reports % of one core.
 *
 * Each mode does one untimed warm-up run, then `--reps=N` timed runs on
 * the same loop, and prints one JSON line (see `bench/run.mjs`).
 *
 *     deno run -A bench/scheduling.ts chain-ours
 *     bun bench/scheduling.ts timers-native --reps=5
 *
 * @module
 */
import { SelectorEventLoop } from "../mod.ts";
import {
  args,
  cpuMicros,
  emit,
  intOption,
  median,
  mulberry32,
} from "./common.ts";

const now: () => number = performance.now.bind(performance);

const CHAIN_LENGTH = intOption("chain", 1_000_000);
const TIMER_COUNT = intOption("timers", 200_000);
const MAX_DELAY_MS = 50;
const IDLE_MS = intOption("idle-ms", 2000);
const REPS = intOption("reps", 3);
const SEED = 12345;

// -- 1. callSoon chain --------------------------------------------------------

/** M callbacks/s of a callSoon chain on `loop`. */
async function chainOurs(loop: SelectorEventLoop, n: number): Promise<number> {
  let count = 0;
  let end = 0;
  const step = () => {
    if (++count < n) loop.callSoon(step);
    else {
      end = now();
      loop.stop();
    }
  };
  const start = now();
  loop.callSoon(step);
  await loop.runForever();
  return n / (end - start) / 1000;
}

/** M callbacks/s of a queueMicrotask chain. */
function chainMicrotask(n: number): Promise<number> {
  return new Promise((resolve) => {
    let count = 0;
    const start = now();
    const step = () => {
      if (++count < n) queueMicrotask(step);
      else resolve(n / (now() - start) / 1000);
    };
    queueMicrotask(step);
  });
}

/** M callbacks/s of a setImmediate chain. */
function chainImmediate(n: number): Promise<number> {
  return new Promise((resolve) => {
    let count = 0;
    const start = now();
    const step = () => {
      if (++count < n) setImmediate(step);
      else resolve(n / (now() - start) / 1000);
    };
    setImmediate(step);
  });
}

// -- 2. timers -----------------------------------------------------------------

/** The delays every implementation schedules (same seed, same order). */
function timerDelays(n: number): Float64Array {
  const random = mulberry32(SEED);
  const delays = new Float64Array(n);
  for (let i = 0; i < n; i++) delays[i] = random() * MAX_DELAY_MS;
  return delays;
}

/** ms from the first callLater until the last uncancelled timer ran. */
async function timersOurs(
  loop: SelectorEventLoop,
  delays: Float64Array,
): Promise<number> {
  const expected = Math.ceil(delays.length / 2);
  let fired = 0;
  let start = 0;
  let end = 0;
  const fire = () => {
    if (++fired === expected) {
      end = now();
      loop.stop();
    }
  };
  loop.callSoon(() => {
    start = now();
    for (let i = 0; i < delays.length; i++) {
      const handle = loop.callLater(delays[i], fire);
      if (i & 1) handle.cancel();
    }
  });
  await loop.runForever();
  return end - start;
}

/** ms from the first setTimeout until the last uncleared one ran. */
function timersNative(delays: Float64Array): Promise<number> {
  return new Promise((resolve) => {
    const expected = Math.ceil(delays.length / 2);
    let fired = 0;
    const start = now();
    const fire = () => {
      if (++fired === expected) resolve(now() - start);
    };
    for (let i = 0; i < delays.length; i++) {
      const timer = setTimeout(fire, delays[i]);
      if (i & 1) clearTimeout(timer);
    }
  });
}

// -- 4. idle CPU --------------------------------------------------------------

/** CPU % of one core over `wait()`, which should be idle for `ms`. */
async function idleCpu(wait: () => Promise<void>): Promise<number> {
  const cpu = cpuMicros();
  const start = now();
  await wait();
  const wallMicros = (now() - start) * 1000;
  return (100 * (cpuMicros() - cpu)) / wallMicros;
}

// -- driver -------------------------------------------------------------------

/** Warm-up run, then REPS timed runs; returns the timed results. */
async function repeat(run: () => Promise<number>): Promise<number[]> {
  await run();
  const samples: number[] = [];
  for (let i = 0; i < REPS; i++) samples.push(await run());
  return samples;
}

async function main(): Promise<void> {
  const mode = args()[0];
  const loop = new SelectorEventLoop();
  try {
    let samples: number[];
    let unit: string;
    switch (mode) {
      case "chain-ours":
        samples = await repeat(() => chainOurs(loop, CHAIN_LENGTH));
        unit = "M/s";
        break;
      case "chain-microtask":
        samples = await repeat(() => chainMicrotask(CHAIN_LENGTH));
        unit = "M/s";
        break;
      case "chain-immediate":
        samples = await repeat(() => chainImmediate(CHAIN_LENGTH));
        unit = "M/s";
        break;
      case "timers-ours": {
        const delays = timerDelays(TIMER_COUNT);
        samples = await repeat(() => timersOurs(loop, delays));
        unit = "ms";
        break;
      }
      case "timers-native": {
        const delays = timerDelays(TIMER_COUNT);
        samples = await repeat(() => timersNative(delays));
        unit = "ms";
        break;
      }
      case "idle-ours":
        // The warm-up starts the loop's waiter (a Worker in Bun).
        loop.callLater(5, () => loop.stop());
        await loop.runForever();
        samples = [
          await idleCpu(() => {
            loop.callLater(IDLE_MS, () => loop.stop());
            return loop.runForever();
          }),
        ];
        unit = "%";
        break;
      case "idle-native":
        await new Promise((resolve) => setTimeout(resolve, 5));
        samples = [
          await idleCpu(() =>
            new Promise((resolve) => setTimeout(resolve, IDLE_MS))
          ),
        ];
        unit = "%";
        break;
      default:
        throw new RangeError(`unknown mode ${String(mode)}`);
    }
    emit({
      mode,
      unit,
      value: median(samples),
      samples,
      selector: mode.endsWith("-ours") ? loop.selectorName : undefined,
    });
  } finally {
    loop.close();
  }
}

await main();
