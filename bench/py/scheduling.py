"""Scheduling benchmarks for CPython asyncio and uvloop (the Python side of
bench/scheduling.ts), picked by the arguments: MODE LOOP [--reps=N].

- chain: a chain of 1,000,000 loop.call_soon callbacks where each one
  schedules the next; reports millions of callbacks per second.
- timers: 200,000 loop.call_later timers with the same seeded delays in
  [0, 50) ms as the TypeScript side (mulberry32), every other one cancelled
  right after scheduling; reports ms from the first schedule until the last
  timer ran.
- idle: process CPU time (all threads) while the loop runs
  asyncio.sleep(2); reports % of one core.

LOOP is "asyncio" or "uvloop". Each mode does one untimed warm-up run, then
--reps timed runs on the same loop, and prints one JSON line.
"""
import asyncio
import json
import resource
import statistics
import sys
import time

CHAIN_LENGTH = 1_000_000
TIMER_COUNT = 200_000
MAX_DELAY_MS = 50
IDLE_SECONDS = 2.0
SEED = 12345


def option(name, fallback):
    prefix = f"--{name}="
    for arg in sys.argv[3:]:
        if arg.startswith(prefix):
            return int(arg[len(prefix):])
    return fallback


def imul(a, b):
    return (a * b) & 0xFFFFFFFF


def mulberry32(seed):
    """The same generator as bench/common.ts: floats in [0, 1)."""
    state = seed & 0xFFFFFFFF

    def next_float():
        nonlocal state
        state = (state + 0x6D2B79F5) & 0xFFFFFFFF
        t = state
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    return next_float


def new_loop(kind):
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if kind == "asyncio":
        return asyncio.new_event_loop()
    raise SystemExit(f"unknown loop {kind!r}")


def chain(loop, n):
    count = 0
    end = 0.0

    def step():
        nonlocal count, end
        count += 1
        if count < n:
            loop.call_soon(step)
        else:
            end = time.perf_counter()
            loop.stop()

    start = time.perf_counter()
    loop.call_soon(step)
    loop.run_forever()
    return n / (end - start) / 1e6


def timers(loop, delays):
    expected = (len(delays) + 1) // 2
    fired = 0
    start = end = 0.0

    def fire():
        nonlocal fired, end
        fired += 1
        if fired == expected:
            end = time.perf_counter()
            loop.stop()

    def schedule():
        nonlocal start
        start = time.perf_counter()
        call_later = loop.call_later
        for i, delay in enumerate(delays):
            handle = call_later(delay, fire)
            if i & 1:
                handle.cancel()

    loop.call_soon(schedule)
    loop.run_forever()
    return (end - start) * 1000


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def idle(loop):
    loop.run_until_complete(asyncio.sleep(0.005))
    cpu = cpu_seconds()
    start = time.perf_counter()
    loop.run_until_complete(asyncio.sleep(IDLE_SECONDS))
    wall = time.perf_counter() - start
    return 100 * (cpu_seconds() - cpu) / wall


def main():
    mode, kind = sys.argv[1], sys.argv[2]
    reps = option("reps", 3)
    loop = new_loop(kind)
    try:
        if mode == "chain":
            n = option("chain", CHAIN_LENGTH)
            run, unit = (lambda: chain(loop, n)), "M/s"
        elif mode == "timers":
            random = mulberry32(SEED)
            count = option("timers", TIMER_COUNT)
            delays = [random() * MAX_DELAY_MS / 1000 for _ in range(count)]
            run, unit = (lambda: timers(loop, delays)), "ms"
        elif mode == "idle":
            run, unit, reps = (lambda: idle(loop)), "%", 1
        else:
            raise SystemExit(f"unknown mode {mode!r}")
        if mode != "idle":
            run()
        samples = [run() for _ in range(reps)]
    finally:
        loop.close()
    print(json.dumps({
        "runtime": "python",
        "loop": kind,
        "mode": f"{mode}-{kind}",
        "unit": unit,
        "value": statistics.median(samples),
        "samples": samples,
    }))


if __name__ == "__main__":
    main()
