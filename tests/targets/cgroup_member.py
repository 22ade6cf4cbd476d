"""A member of a traced cgroup: an asyncio loop that plants STALLS stalls,
each a time.sleep of MS milliseconds in a coroutine, 100 ms apart, then
exits.

Prints "ready PID" first. With "now" it starts at once (a program started
in the cgroup while traced); otherwise it waits for a line on stdin."""

import asyncio
import os
import sys
import time


async def planted_stall(ms):
    time.sleep(ms / 1000)


async def main(stalls, ms):
    for _ in range(stalls):
        await asyncio.sleep(0.1)
        await planted_stall(ms)
    await asyncio.sleep(0.1)


stalls, ms, when = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
print(f"ready {os.getpid()}", flush=True)
if when != "now":
    sys.stdin.readline()
asyncio.run(main(stalls, ms))
