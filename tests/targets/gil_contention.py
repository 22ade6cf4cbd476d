"""An asyncio loop beside a thread that competes with it, in one of three
ways (argv[1]):

- cruncher: a pure-Python CPU loop in a thread named "cruncher"; the loop
  thread waits for the GIL (the interpreter's switch interval) each time
  it wakes.
- lock: a thread named "locker" holds a threading.Lock for 200 ms at a
  time, sleeping (GIL released); the loop's coroutine waits for that lock.
- regex: a thread named "matcher" runs a regular expression that
  backtracks for a few hundred ms inside one C call, which keeps the GIL.

Prints "ready PID" and "thread NAME TID", waits for a line on stdin, runs
for argv[2] seconds (the loop ticking every 10 ms), then exits. The names
are the threads' OS names (comm), as a service names its threads."""

import asyncio
import ctypes
import os
import re
import sys
import threading
import time

mode, seconds = sys.argv[1], float(sys.argv[2])
go = threading.Event()
stop = threading.Event()
lock = threading.Lock()
started = []


def name_this_thread(name):
    """Names the OS thread (its comm), as a service's named threads are."""
    ctypes.CDLL(None).prctl(15, name.encode())  # PR_SET_NAME
    started.append(threading.get_native_id())


def cruncher():
    name_this_thread("cruncher")
    go.wait()
    total = 0
    while not stop.is_set():
        for i in range(10_000):
            total += i * i


def locker():
    name_this_thread("locker")
    go.wait()
    while not stop.is_set():
        with lock:
            time.sleep(0.2)
        time.sleep(0.05)


def backtrack(text):
    # (a+)+b on "aaa...c" tries every split of the a's: exponential, and
    # all of it inside one call of the C matcher.
    return re.match(r"(a+)+b", text)


def matcher():
    name_this_thread("matcher")
    go.wait()
    time.sleep(0.3)
    while not stop.is_set():
        backtrack("a" * 22 + "c")
        time.sleep(0.3)


async def tick():
    while not stop.is_set():
        await asyncio.sleep(0.01)


async def wait_for_lock():
    while not stop.is_set():
        await asyncio.sleep(0.03)
        with lock:
            pass


async def main():
    coroutines = [tick()] + ([wait_for_lock()] if mode == "lock" else [])
    work = [asyncio.ensure_future(c) for c in coroutines]
    # Stopped from the loop: a timer thread would wait in a futex of its own.
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*work)


worker = {"cruncher": cruncher, "lock": locker, "regex": matcher}[mode]
thread = threading.Thread(target=worker, name=worker.__name__, daemon=True)
thread.start()
while not started:
    time.sleep(0.001)
print(f"ready {os.getpid()}", flush=True)
print(f"thread {thread.name} {started[0]}", flush=True)
sys.stdin.readline()
go.set()
asyncio.run(main())
thread.join()
