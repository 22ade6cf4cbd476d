"""An asyncio program that blocks its loop with time.sleep in a coroutine.

Prints "ready PID", waits for a line on stdin (the tracer attaches), then
runs ROUNDS handlers that each block for SLEEP seconds, and exits."""

import asyncio
import os
import sys
import time

ROUNDS = 5
SLEEP = 0.2


async def handler():
    await asyncio.sleep(0.02)
    time.sleep(SLEEP)


async def main():
    for _ in range(ROUNDS):
        await handler()


print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()
asyncio.run(main())
