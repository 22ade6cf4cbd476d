"""Named asyncio Tasks that each block the loop in their own way, among many
short tasks: `slow-sleep` sleeps (time.sleep), `slow-recv` waits in a
blocking recv on a socket another thread answers STALL later, `slow-cpu`
spins; then a plain callback (call_soon, no task) sleeps. Each stall lasts
STALL seconds. The slow tasks are awaited by the task `serve`, itself awaited by
`main` (the awaited-by chain 3.14 can show).

Usage: asyncio_tasks.py [asyncio|uvloop]. Runs one quick round first (so
the traced round pages in no code), prints "ready PID", waits for a line
on stdin (the tracer attaches), runs the traced round and exits.
$TASKS_STALL sets STALL (seconds); with $TASKS_ANNOUNCE, "stalling NAME"
is printed as each task's stall starts (for a look from outside during
it); with $TASKS_HOLD, "held" is printed after the traced round, and the
process exits at the next line on stdin (for a look from outside after
it)."""

import asyncio
import os
import queue
import socket
import sys
import threading
import time

STALL = float(os.environ.get("TASKS_STALL", "0.15"))
ANNOUNCE = "TASKS_ANNOUNCE" in os.environ
WORKERS = 20


def announce(name):
    if ANNOUNCE:
        print(f"stalling {name}", flush=True)


def spin(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


async def slow_sleep(stall):
    await asyncio.sleep(0)
    announce("slow-sleep")
    time.sleep(stall)


# Answers each (socket, delay) put here that much later: one thread,
# started before the loop runs (starting one in a task blocks the loop until
# it runs: 60 ms on a busy machine).
answers = queue.SimpleQueue()


def answer_late():
    while True:
        sock, stall = answers.get()
        time.sleep(stall)
        sock.send(b"x")


async def slow_recv(stall):
    ours, theirs = socket.socketpair()
    await asyncio.sleep(0)
    answers.put((theirs, stall))
    ours.recv(1)
    ours.close()
    theirs.close()


async def slow_cpu(stall):
    await asyncio.sleep(0)
    spin(stall)


def blocking_callback(stall):
    time.sleep(stall)


async def short_work():
    for _ in range(5):
        await asyncio.sleep(0.002)


async def serve(stall):
    for name, slow in (
        ("slow-sleep", slow_sleep),
        ("slow-recv", slow_recv),
        ("slow-cpu", slow_cpu),
    ):
        others = [
            asyncio.create_task(short_work(), name=f"worker-{i}") for i in range(WORKERS)
        ]
        await asyncio.sleep(0.005)
        await asyncio.create_task(slow(stall), name=name)
        await asyncio.gather(*others)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.call_soon(blocking_callback, stall)
    loop.call_soon(done.set_result, None)
    await done


async def main(stall):
    asyncio.current_task().set_name("main")
    await asyncio.create_task(serve(stall), name="serve")


def run(stall):
    if sys.argv[1:] == ["uvloop"]:
        import uvloop

        uvloop.run(main(stall))
    else:
        asyncio.run(main(stall))


threading.Thread(target=answer_late, daemon=True).start()
run(0.001)
print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()
run(STALL)
if "TASKS_HOLD" in os.environ:
    print("held", flush=True)
    sys.stdin.readline()
