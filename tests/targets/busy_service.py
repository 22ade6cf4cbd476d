"""A busy asyncio service for the size test of report.html: a JSON-over-TCP
server on one event loop, hammered by 16 clients on a second event loop (in
another thread), with a stall planted on the server's loop every 200 ms (in
turn: time.sleep, pure-Python CPU work, a file written and fsynced) and
small blocking reads handed to a thread pool. Stdlib only.

Usage: busy_service.py SECONDS
Prints "ready PID", waits for a line on stdin, serves for SECONDS, prints
"requests N stalls N" (the stalls planted that took 12 ms or more, over
tracer's default threshold with room to spare) and exits."""

import asyncio
import hashlib
import json
import os
import sys
import tempfile
import threading
import time

CLIENTS = 16
STALL_EVERY = 0.2


def checksum(payload):
    digest = hashlib.sha256(payload.encode())
    for _ in range(20):
        digest = hashlib.sha256(digest.digest())
    return digest.hexdigest()


def sleep_stall():
    time.sleep(0.03)  # blocks the loop


def cpu_stall():
    deadline = time.perf_counter() + 0.03
    total = 0
    while time.perf_counter() < deadline:
        total += sum(i * i for i in range(100))
    return total


def fsync_stall(path):
    with open(path, "wb") as f:
        f.write(os.urandom(4 << 20))
        f.flush()
        os.fsync(f.fileno())


def read_config(path):
    time.sleep(0.005)  # a slow disk, in the thread pool
    with open(path, "rb") as f:
        return len(f.read())


async def handle(reader, writer):
    loop = asyncio.get_running_loop()
    while line := await reader.readline():
        request = json.loads(line)
        if request["n"] % 50 == 0:
            await loop.run_in_executor(None, read_config, __file__)
        reply = {"n": request["n"], "sum": checksum(request["body"])}
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
    writer.close()


async def plant_stalls(seconds, scratch):
    kinds = [sleep_stall, cpu_stall, lambda: fsync_stall(scratch)]
    turn = planted = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(STALL_EVERY)
        start = time.perf_counter()
        kinds[turn % len(kinds)]()
        turn += 1
        planted += time.perf_counter() - start >= 0.012
    return planted


async def client(port, stop, counts):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    while not stop.is_set():
        body = json.dumps({"user": n, "items": list(range(n % 40))})
        writer.write(json.dumps({"n": n, "body": body}).encode() + b"\n")
        await writer.drain()
        json.loads(await reader.readline())
        n += 1
    counts.append(n)
    writer.close()


def clients(port, stop, counts):
    async def run():
        await asyncio.gather(*(client(port, stop, counts) for _ in range(CLIENTS)))

    asyncio.run(run())


async def main(seconds):
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"ready {os.getpid()}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    stop, counts = threading.Event(), []
    load = threading.Thread(target=clients, args=(port, stop, counts), name="clients")
    load.start()
    with tempfile.TemporaryDirectory() as scratch:
        planted = await plant_stalls(seconds, os.path.join(scratch, "state"))
    stop.set()
    await asyncio.get_running_loop().run_in_executor(None, load.join)
    server.close()
    print(f"requests {sum(counts)} stalls {planted}", flush=True)


asyncio.run(main(float(sys.argv[1])))
