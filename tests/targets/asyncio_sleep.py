"""An asyncio program that blocks its loop with time.sleep in a coroutine.

Runs one short round first, so that the traced run does not page in code
for the first time (on a cold disk that blocked one iteration 50 ms).
Then prints "ready PID", waits for a line on stdin (the tracer attaches),
runs ROUNDS handlers that each block for SLEEP seconds, and exits."""

import asyncio
import os
import sys
import time

ROUNDS = 5
SLEEP = 0.2


async def handler(block):
    await asyncio.sleep(0.02)
    time.sleep(block)


async def main(rounds, block):
    for _ in range(rounds):
        await handler(block)


asyncio.run(main(1, 0.001))
print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()
asyncio.run(main(ROUNDS, SLEEP))
