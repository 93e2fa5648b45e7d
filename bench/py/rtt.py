"""Thread wake round trip for CPython asyncio and uvloop (the Python side of
bench/worker_rtt.ts): arguments LOOP [--iterations=5000] [--warmup=500]
[--gap=200].

The main thread runs the loop idle (run_forever, nothing scheduled). A
second thread calls loop.call_soon_threadsafe(queue.put, i) and blocks in
queue.get() until the loop ran that callback; it measures that round trip
with perf_counter_ns and sleeps --gap microseconds before the next one.
Prints one JSON line with percentiles in microseconds.
"""
import asyncio
import json
import queue
import sys
import threading
import time


def option(name, fallback):
    prefix = f"--{name}="
    for arg in sys.argv[2:]:
        if arg.startswith(prefix):
            return int(arg[len(prefix):])
    return fallback


def percentile(values, p):
    ordered = sorted(values)
    rank = -(-p * len(ordered) // 100)
    return ordered[min(len(ordered) - 1, max(0, rank - 1))]


def main():
    kind = sys.argv[1]
    if kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    elif kind == "asyncio":
        loop = asyncio.new_event_loop()
    else:
        raise SystemExit(f"unknown loop {kind!r}")
    warmup = option("warmup", 500)
    iterations = option("iterations", 5000)
    gap = option("gap", 200) / 1e6
    replies = queue.SimpleQueue()
    samples = []

    def worker():
        try:
            for i in range(1, warmup + iterations + 1):
                start = time.perf_counter_ns()
                loop.call_soon_threadsafe(replies.put, i)
                got = replies.get()
                took = time.perf_counter_ns() - start
                if got != i:
                    raise RuntimeError(f"expected {i}, got {got}")
                if i > warmup:
                    samples.append(took / 1000)
                if gap > 0:
                    time.sleep(gap)
        finally:
            loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        loop.run_forever()
    finally:
        thread.join()
        loop.close()
    print(json.dumps({
        "runtime": "python",
        "loop": kind,
        "mode": f"rtt-{kind}",
        "unit": "us",
        "iterations": len(samples),
        "gapMicros": int(gap * 1e6),
        "p50": percentile(samples, 50),
        "p90": percentile(samples, 90),
        "p99": percentile(samples, 99),
        "min": min(samples),
        "max": max(samples),
        "under30": sum(1 for us in samples if us < 30) / len(samples),
    }))


if __name__ == "__main__":
    main()
