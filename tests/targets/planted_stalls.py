"""An asyncio service that plants event-loop stalls when told to, for the
metrics and rotation tests. One event loop for the whole run; commands come
as lines on stdin, read by the loop itself (a pipe, not a blocking read):

  stalls N MS   block the loop N times for MS ms (time.sleep in a coroutine,
                20 ms of awaits between), then print "planted N"
  pace S MS     for S seconds, block the loop for MS ms every 500 ms; print
                "stall START END" (wall clock, ms since the epoch) after each
                and "paced" at the end

Each stall is followed by an await, so the loop has polled (and the stall
ended) before its line is printed. Prints "ready PID" first; exits at EOF."""

import asyncio
import os
import sys
import time


def now_ms():
    return int(time.time() * 1000)


async def stall(ms):
    start = now_ms()
    time.sleep(ms / 1000)  # blocks the loop
    end = now_ms()
    await asyncio.sleep(0.02)
    return start, end


async def stalls(count, ms):
    for _ in range(count):
        await stall(ms)
    print(f"planted {count}", flush=True)


async def pace(seconds, ms):
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while next_at < deadline:
        await asyncio.sleep(max(0, next_at - time.monotonic()))
        start, end = await stall(ms)
        print(f"stall {start} {end}", flush=True)
        next_at += 0.5
    print("paced", flush=True)


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(f"ready {os.getpid()}", flush=True)
    while line := await reader.readline():
        command, *args = line.split()
        if command == b"stalls":
            await stalls(int(args[0]), int(args[1]))
        elif command == b"pace":
            await pace(float(args[0]), int(args[1]))


asyncio.run(main())
